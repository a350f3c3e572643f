// The runs a schedule keeps: which finished children to delete (oldest first, never a running
// one), how each run is summarised in status, and the regression signal.

export type RunOutcome = 'Running' | 'Succeeded' | 'Failed';

export interface RunRecord {
  name: string;
  /** The tick the run was created for (ms). */
  scheduledMs: number;
  outcome: RunOutcome;
  /** Pass / Fail from the experiment, or its phase (Failed, Aborted) when it has no verdict. */
  verdict?: string;
  worstDowntimeSeconds?: number;
  completedMs?: number;
}

export interface HistoryLimits {
  successfulRunsHistoryLimit: number;
  failedRunsHistoryLimit: number;
}

/** Names of finished runs beyond the limits, oldest first. Running runs are never returned. */
export function runsToPrune(runs: readonly RunRecord[], limits: HistoryLimits): string[] {
  const prune: RunRecord[] = [];
  for (const [outcome, limit] of [
    ['Succeeded', limits.successfulRunsHistoryLimit],
    ['Failed', limits.failedRunsHistoryLimit],
  ] as const) {
    const finished = runs.filter((r) => r.outcome === outcome).sort(byScheduled);
    prune.push(...finished.slice(0, Math.max(0, finished.length - limit)));
  }
  return prune.sort(byScheduled).map((r) => r.name);
}

const byScheduled = (a: RunRecord, b: RunRecord) =>
  a.scheduledMs - b.scheduledMs || (a.name < b.name ? -1 : 1);

export function sortRuns<R extends RunRecord>(runs: readonly R[]): R[] {
  return [...runs].sort(byScheduled);
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface RegressionSignal {
  detected: boolean;
  latestSeconds?: number;
  medianSeconds?: number;
  marginPercent: number;
  /** How many earlier runs the median is over. */
  comparedRuns: number;
}

/**
 * The latest finished run's worst downtime against the median of the earlier finished runs in
 * history: a regression when it is more than `marginPercent` above it. Needs one earlier run.
 */
export function regressionSignal(runs: readonly RunRecord[], marginPercent: number): RegressionSignal {
  const measured = sortRuns(runs).filter(
    (r) => r.outcome !== 'Running' && r.worstDowntimeSeconds !== undefined,
  );
  const latest = measured.at(-1);
  const earlier = measured.slice(0, -1).map((r) => r.worstDowntimeSeconds!);
  const med = median(earlier);
  if (!latest || med === undefined) return { detected: false, marginPercent, comparedRuns: earlier.length };
  const latestSeconds = latest.worstDowntimeSeconds!;
  return {
    detected: latestSeconds > med * (1 + marginPercent / 100),
    latestSeconds,
    medianSeconds: med,
    marginPercent,
    comparedRuns: earlier.length,
  };
}

/** `<schedule>-<unix minutes>`, as CronJob names its Jobs: unique per tick, sortable. */
export function childName(scheduleName: string, tickMs: number): string {
  return `${scheduleName}-${Math.floor(tickMs / 60_000)}`;
}
