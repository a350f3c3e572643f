import type { Sample } from './sample.ts';

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Nearest-rank percentile of an ascending list (p in 0..100). */
export function percentile(sortedAscending: ArrayLike<number>, p: number): number {
  if (sortedAscending.length === 0) throw new RangeError('percentile of an empty list');
  const rank = Math.ceil((p / 100) * sortedAscending.length);
  return sortedAscending[Math.min(sortedAscending.length, Math.max(1, rank)) - 1]!;
}

/** Latency percentiles of the `ok` attempts; null when there are none. */
export function latencySummary(samples: readonly Sample[]): LatencySummary | null {
  const durations = samples
    .filter((sample) => sample.class === 'ok')
    .map((sample) => sample.endMs - sample.startMs)
    .sort((a, b) => a - b);
  if (durations.length === 0) return null;
  return {
    count: durations.length,
    p50Ms: percentile(durations, 50),
    p95Ms: percentile(durations, 95),
    p99Ms: percentile(durations, 99),
    maxMs: durations.at(-1)!,
  };
}
