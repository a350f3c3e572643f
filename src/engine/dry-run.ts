// Dry run (`spec.dryRun: true`, `failwatch run --dry-run`): everything up to the trigger —
// validation, credentials, TLS, preflight against the RDS API, a healthy baseline — and then
// stop with a verdict of its own, DryRun, without calling the failover.
import type { baselineHealth } from './recovery.ts';

/** The reason (condition, run summary) and the verdict of a dry run that reached the trigger. */
export const DRY_RUN = 'DryRun';

type LaneHealth = ReturnType<typeof baselineHealth>[number];

/** One line saying the baseline was healthy and nothing was triggered, with the counts per lane. */
export function dryRunMessage(lanes: readonly LaneHealth[]): string {
  const counts = [...lanes]
    .sort((a, b) => a.lane.localeCompare(b.lane))
    .map((l) => `${l.lane} ${l.attempts - l.bad}/${l.attempts} good`)
    .join(', ');
  return `dry run: the baseline was healthy${counts ? ` (${counts})` : ''}; the failover was not called`;
}
