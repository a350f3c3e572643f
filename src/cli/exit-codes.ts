// What `failwatch`'s exit code means: one thing each, documented in README.md and `--help`.
import type { VerdictResult } from '../analysis/verdict.ts';
import { DRY_RUN } from '../engine/dry-run.ts';
import type { RunOutcome } from '../engine/run-experiment.ts';

export const EXIT = {
  /** verdict Pass (and a dry run that reached the trigger with a healthy baseline) */
  pass: 0,
  /** verdict Fail: an SLO was missed */
  fail: 1,
  /** invalid manifest, unreadable file, unknown or malformed option */
  usage: 2,
  /** the run (or a lab command) failed: preflight, baseline, trigger, lab start */
  runFailed: 3,
  /** a failwatch bug: an error nobody expected (printed with its stack) */
  internal: 4,
  /** verdict Inconclusive: the data cannot show the SLOs held (never a pass) */
  inconclusive: 5,
  /** Ctrl-C */
  interrupted: 130,
} as const;

/**
 * Every verdict's exit code: the one place to extend when a verdict is added (the Record makes
 * the type check fail until the new verdict is mapped here).
 */
export const VERDICT_EXIT_CODES: Record<VerdictResult | typeof DRY_RUN, number> = {
  Pass: EXIT.pass,
  Fail: EXIT.fail,
  Inconclusive: EXIT.inconclusive,
  DryRun: EXIT.pass,
};

/** The exit code of `failwatch run` for how the run ended. */
export function runExitCode(outcome: Pick<RunOutcome, 'end' | 'reason' | 'results'>): number {
  if (outcome.end === 'Aborted') return EXIT.interrupted;
  // An exception nobody expected inside the run is a failwatch bug, not a failed run.
  if (outcome.end === 'Failed') return outcome.reason === 'InternalError' ? EXIT.internal : EXIT.runFailed;
  if (outcome.reason === DRY_RUN) return VERDICT_EXIT_CODES.DryRun;
  if (!outcome.results) return EXIT.internal; // Completed after a trigger always has results
  return VERDICT_EXIT_CODES[outcome.results.verdict.result];
}
