import { type ErrorClass, isGoodClass } from './error-class.ts';
import type { Sample } from './sample.ts';

/**
 * An outage window of one endpoint's probe kind: from the end of the last good attempt before
 * a run of bad attempts (`bad` = any class other than `ok`) to the end of the first good attempt
 * after it. Its lower bound runs from the first bad start to the last bad end. `slow` attempts
 * count as unavailable for their duration (a stall).
 *
 * Attempts are fixed-rate and may overlap, so they are taken in start order. Two refinements
 * keep lower <= upper when attempts overlap:
 * - a bad attempt still pending when a later attempt is acknowledged (a hung attempt waiting
 *   for its deadline) counts as unavailable only until that acknowledgement: the endpoint was
 *   demonstrably serving again;
 * - when the last good attempt before the run ends after the first bad one started, the window
 *   starts at the first bad start.
 * Windows that overlap in time are merged.
 *
 * Each window also carries a point estimate, the best single figure for the outage's length
 * (the bounds above are conservative): every attempt is evidence of the server's state at one
 * moment — an answered error at its end (the answer came then), a timed-out attempt at its start
 * (what it sent vanished then), a good attempt at its start (the connection or query was
 * accepted then; a slow start of a good attempt is most often a new connection opened after
 * the outage, not late availability) — and a `slow` attempt is evidence of a stall over its
 * whole duration. The
 * estimate runs from the earliest evidence of unavailability to the later of the first good
 * attempt's start and the latest evidence of unavailability, kept inside the window. Both of
 * its edges err by less than one interval in the same direction, so its length errs by less
 * than one interval (docs/accuracy.md measures it).
 */
export interface OutageWindow {
  /** End of the last good attempt before the run; the first bad start when none preceded it. */
  startMs: number;
  /** End of the first good attempt after the run; `null` while the outage is still open. */
  endMs: number | null;
  /** Lower bound: first bad attempt's start. */
  lowerStartMs: number;
  /** Lower bound: last bad attempt's end (capped at `endMs`). */
  lowerEndMs: number;
  /** Point estimate: earliest evidence of unavailability (see above). */
  estimateStartMs: number;
  /** Point estimate: recovery (see above); `null` while the outage is still open. */
  estimateEndMs: number | null;
  /** No good attempt followed: the endpoint had not recovered when observation ended. */
  open: boolean;
  /** No good attempt preceded the run (it began with the first attempt). */
  startedWithFirstAttempt: boolean;
  badAttempts: number;
  classes: Partial<Record<ErrorClass, number>>;
}

/** Sorts attempts by start time (then seq): fixed-rate attempts may finish out of order. */
export function byStart(a: Sample, b: Sample): number {
  return a.startMs - b.startMs || a.seq - b.seq;
}

interface Run {
  previousGood: Sample | undefined;
  bad: Sample[];
  nextGood: Sample | undefined;
}

function badRuns(sorted: readonly Sample[]): Run[] {
  const runs: Run[] = [];
  let previousGood: Sample | undefined;
  let current: Run | undefined;
  for (const sample of sorted) {
    if (isGoodClass(sample.class)) {
      if (current) {
        current.nextGood = sample;
        runs.push(current);
        current = undefined;
      }
      previousGood = sample;
    } else {
      current ??= { previousGood, bad: [], nextGood: undefined };
      current.bad.push(sample);
    }
  }
  if (current) runs.push(current);
  return runs;
}

const TIMEOUT_CLASSES: ReadonlySet<ErrorClass> = new Set(['connect_timeout', 'query_timeout']);
/** An error that took longer than this was left hanging before it came (see unavailableEvidence). */
export const HUNG_ERROR_MS = 100;

/**
 * When a bad attempt saw the endpoint unavailable, [from, to]:
 * - `slow`: its whole duration (a stall);
 * - a timeout: its start (what it sent then was never answered; the deadline says nothing of
 *   the end);
 * - an error that came after hanging longer than HUNG_ERROR_MS (a connection closed under a
 *   held attempt): its whole duration;
 * - any other error: its end, when the answer came (an attempt in flight when the outage began
 *   fails then, though it started before).
 */
export function unavailableEvidence(sample: Sample): [number, number] {
  if (TIMEOUT_CLASSES.has(sample.class)) return [sample.startMs, sample.startMs];
  if (sample.class === 'slow' || sample.endMs - sample.startMs > HUNG_ERROR_MS)
    return [sample.startMs, sample.endMs];
  return [sample.endMs, sample.endMs];
}

function windowOfRun(run: Run): OutageWindow {
  const first = run.bad[0]!;
  let lastBadEndMs = first.endMs;
  let evidenceFromMs = Number.POSITIVE_INFINITY;
  let evidenceToMs = Number.NEGATIVE_INFINITY;
  const classes: Partial<Record<ErrorClass, number>> = {};
  for (const sample of run.bad) {
    lastBadEndMs = Math.max(lastBadEndMs, sample.endMs);
    classes[sample.class] = (classes[sample.class] ?? 0) + 1;
    const [from, to] = unavailableEvidence(sample);
    evidenceFromMs = Math.min(evidenceFromMs, from);
    evidenceToMs = Math.max(evidenceToMs, to);
  }
  const endMs = run.nextGood ? run.nextGood.endMs : null;
  const startMs = run.previousGood ? Math.min(run.previousGood.endMs, first.startMs) : first.startMs;
  const estimateStartMs = Math.max(startMs, evidenceFromMs);
  const estimateEndMs =
    run.nextGood && endMs !== null
      ? Math.min(endMs, Math.max(run.nextGood.startMs, evidenceToMs, estimateStartMs))
      : null;
  return {
    startMs,
    endMs,
    lowerStartMs: first.startMs,
    lowerEndMs: endMs === null ? lastBadEndMs : Math.min(lastBadEndMs, endMs),
    estimateStartMs,
    estimateEndMs,
    open: endMs === null,
    startedWithFirstAttempt: run.previousGood === undefined,
    badAttempts: run.bad.length,
    classes,
  };
}

/** Merges `next` into `target` (windows that overlap in time are one). */
export function mergeInto(target: OutageWindow, next: OutageWindow): void {
  target.endMs = next.endMs === null || target.endMs === null ? null : Math.max(target.endMs, next.endMs);
  target.open = target.endMs === null;
  target.startMs = Math.min(target.startMs, next.startMs);
  target.lowerStartMs = Math.min(target.lowerStartMs, next.lowerStartMs);
  target.lowerEndMs = Math.max(target.lowerEndMs, next.lowerEndMs);
  target.estimateStartMs = Math.min(target.estimateStartMs, next.estimateStartMs);
  target.estimateEndMs =
    next.estimateEndMs === null || target.estimateEndMs === null
      ? null
      : Math.max(target.estimateEndMs, next.estimateEndMs);
  target.badAttempts += next.badAttempts;
  for (const [errorClass, count] of Object.entries(next.classes) as [ErrorClass, number][]) {
    target.classes[errorClass] = (target.classes[errorClass] ?? 0) + count;
  }
}

/** Outage windows of ONE endpoint's probe kind (pass that lane's samples only). */
export function outageWindows(samples: readonly Sample[]): OutageWindow[] {
  const windows: OutageWindow[] = [];
  for (const run of badRuns([...samples].sort(byStart))) {
    const window = windowOfRun(run);
    const last = windows.at(-1);
    if (last && (last.endMs === null || window.startMs < last.endMs)) mergeInto(last, window);
    else windows.push(window);
  }
  return windows;
}

/** The window's length (the upper bound); an open window counts until `observationEndMs`. */
export function windowUpperMs(window: OutageWindow, observationEndMs: number): number {
  const endMs = window.endMs ?? Math.max(observationEndMs, window.lowerEndMs);
  return endMs - window.startMs;
}

/** The window's point estimate; an open window counts until `observationEndMs`. */
export function windowEstimateMs(window: OutageWindow, observationEndMs: number): number {
  const endMs = window.estimateEndMs ?? Math.max(observationEndMs, window.estimateStartMs);
  return endMs - window.estimateStartMs;
}

/** The window's lower bound: first bad start to last bad end. */
export function windowLowerMs(window: OutageWindow): number {
  return window.lowerEndMs - window.lowerStartMs;
}
