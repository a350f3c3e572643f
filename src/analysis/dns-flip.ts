import { isGoodClass } from './error-class.ts';
import { byStart } from './outage-windows.ts';
import type { Sample } from './sample.ts';

export interface DnsFlip {
  /** When the first answer naming a different target arrived (the attempt's end), epoch ms. */
  atMs: number;
  from: string[];
  to: string[];
}

function answerKey(answer: readonly string[]): string {
  return answer.map((name) => name.toLowerCase().replace(/\.$/, '')).join(' ');
}

/**
 * DNS flip: the first DNS answer naming a different target (CNAME chain and addresses) than
 * the last answer before the trigger (T0). Null without a pre-trigger answer or a change.
 */
export function dnsFlip(samples: readonly Sample[], triggerMs: number): DnsFlip | null {
  const answers = samples
    .filter((sample) => sample.kind === 'dns' && isGoodClass(sample.class) && sample.dnsAnswer?.length)
    .sort(byStart);
  let before: string[] | undefined;
  for (const sample of answers) if (sample.endMs <= triggerMs) before = sample.dnsAnswer!;
  if (!before) return null;
  const beforeKey = answerKey(before);
  let flip: DnsFlip | null = null;
  for (const sample of answers) {
    if (sample.endMs <= triggerMs || answerKey(sample.dnsAnswer!) === beforeKey) continue;
    if (!flip || sample.endMs < flip.atMs) flip = { atMs: sample.endMs, from: before, to: sample.dnsAnswer! };
  }
  return flip;
}
