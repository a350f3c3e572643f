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

function windowOfRun(run: Run): OutageWindow {
  const first = run.bad[0]!;
  let lastBadEndMs = first.endMs;
  const classes: Partial<Record<ErrorClass, number>> = {};
  for (const sample of run.bad) {
    lastBadEndMs = Math.max(lastBadEndMs, sample.endMs);
    classes[sample.class] = (classes[sample.class] ?? 0) + 1;
  }
  const endMs = run.nextGood ? run.nextGood.endMs : null;
  const startMs = run.previousGood ? Math.min(run.previousGood.endMs, first.startMs) : first.startMs;
  return {
    startMs,
    endMs,
    lowerStartMs: first.startMs,
    lowerEndMs: endMs === null ? lastBadEndMs : Math.min(lastBadEndMs, endMs),
    open: endMs === null,
    startedWithFirstAttempt: run.previousGood === undefined,
    badAttempts: run.bad.length,
    classes,
  };
}

function mergeInto(target: OutageWindow, next: OutageWindow): void {
  target.endMs = next.endMs === null || target.endMs === null ? null : Math.max(target.endMs, next.endMs);
  target.open = target.endMs === null;
  target.startMs = Math.min(target.startMs, next.startMs);
  target.lowerStartMs = Math.min(target.lowerStartMs, next.lowerStartMs);
  target.lowerEndMs = Math.max(target.lowerEndMs, next.lowerEndMs);
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

/** The window's lower bound: first bad start to last bad end. */
export function windowLowerMs(window: OutageWindow): number {
  return window.lowerEndMs - window.lowerStartMs;
}
