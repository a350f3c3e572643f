import { isAcknowledgedClass } from './error-class.ts';
import { byStart } from './outage-windows.ts';
import type { ProbeKind, Sample } from './sample.ts';

export interface ServerFlip {
  /** When the first attempt answered by a different server was acknowledged (its end), epoch ms. */
  atMs: number;
  fromServer: string;
  toServer: string;
}

/**
 * First attempt of `kind` acknowledged (ok or slow) by a different server than the last one
 * that acknowledged before the trigger. Null when there is no pre-trigger server or no change.
 */
export function serverFlip(
  samples: readonly Sample[],
  kind: ProbeKind,
  triggerMs: number,
): ServerFlip | null {
  const answered = samples
    .filter((sample) => sample.kind === kind && isAcknowledgedClass(sample.class) && sample.server)
    .sort(byStart);
  let before: string | undefined;
  for (const sample of answered) {
    if (sample.endMs <= triggerMs) before = sample.server!.id;
  }
  if (before === undefined) return null;
  let flip: ServerFlip | null = null;
  for (const sample of answered) {
    if (sample.endMs <= triggerMs || sample.server!.id === before) continue;
    if (!flip || sample.endMs < flip.atMs)
      flip = { atMs: sample.endMs, fromServer: before, toServer: sample.server!.id };
  }
  return flip;
}

/** Role flip: first write acknowledged by a different server than before the trigger (T0). */
export function roleFlip(samples: readonly Sample[], triggerMs: number): ServerFlip | null {
  return serverFlip(samples, 'write', triggerMs);
}
