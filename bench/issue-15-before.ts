// The figures issue 15 measured before its work (a fresh clone, load average under 0.9), printed
// by each bench section next to the run's own, with the run's load: the issue's "before and
// after, side by side".
import { loadavg } from 'node:os';

export const ISSUE_15_BEFORE = {
  /** `--only accuracy`: cases within interval + 10 ms of the injected window (no reference then). */
  accuracy: { within: 111, cases: 128 },
  /** A prober process, one endpoint, write + read at 10 ms and DNS at 100 ms. */
  proberMemory: { rssMiB: 276, atSeconds: 80, limitMiB: 256 },
  /** `--only efficiency`: CPU ms per pooled probe against node-postgres `SELECT 1`. */
  efficiency: { pooledMs: 0.972, floorMs: 0.65 },
} as const;

/** Load average over a section: the 1-minute figure when it started and when it ended. */
export class LoadSpan {
  readonly #start = loadavg()[0]!;
  toString(): string {
    return `load ${this.#start.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}`;
  }
}

export function accuracyBeforeAfter(
  now: { within: number; withinReference: number; cases: number },
  load: LoadSpan,
): string {
  const b = ISSUE_15_BEFORE.accuracy;
  if (now.cases !== b.cases)
    return `issue 15 measured ${b.within}/${b.cases} over the whole matrix; this run has ${now.cases} cases (${load})`;
  return (
    `issue 15, before -> now: ${b.within}/${b.cases} -> ${now.within}/${now.cases} within interval + 10 ms of the injected window; ` +
    `of the reference: none then -> ${now.withinReference}/${now.cases} (this run: ${load})`
  );
}

export function proberMemoryBeforeAfter(
  now: { peakRssMiB: number; durationSeconds: number; limitMiB: number },
  load: LoadSpan,
): string {
  const b = ISSUE_15_BEFORE.proberMemory;
  return (
    `issue 15, before -> now: RSS ${b.rssMiB} MiB after ${b.atSeconds} s (limit then ${b.limitMiB} MiB) -> ` +
    `peak ${now.peakRssMiB.toFixed(1)} MiB over ${now.durationSeconds.toFixed(0)} s (limit ${now.limitMiB} MiB; this run: ${load})`
  );
}

export function efficiencyBeforeAfter(now: { pooledMs: number; floorMs: number }, load: LoadSpan): string {
  const b = ISSUE_15_BEFORE.efficiency;
  const ratio = (pooled: number, floor: number) => `${(pooled / floor).toFixed(2)}x`;
  return (
    `issue 15, before -> now: pooled ${b.pooledMs.toFixed(3)} ms vs floor ${b.floorMs.toFixed(3)} ms (${ratio(b.pooledMs, b.floorMs)}) -> ` +
    `${now.pooledMs.toFixed(3)} ms vs ${now.floorMs.toFixed(3)} ms (${ratio(now.pooledMs, now.floorMs)}; this run: ${load})`
  );
}
