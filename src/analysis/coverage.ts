// Coverage: do a lane's samples (one endpoint's probe kind) cover the run? Pure functions.
//
// A lane is covered when it has attempts from baseline start to the end of observation with no
// gap longer than maxGapMs(interval) between consecutive attempt starts, and its prober dropped
// no samples. Attempts are scheduled at a fixed rate, so starts arrive every interval whatever
// the database does (a hung attempt never delays the next start): missing starts mean the
// prober was not measuring (pod lost, evicted or restarted, event loop stalled, samples never
// pulled), never that the database was down. A gap is therefore missing data, not downtime:
// outage windows are cut at its edges (see splitAtGaps), and a run with a gap is Inconclusive.
import { byStart } from './outage-windows.ts';
import type { ProbeKind, Sample } from './sample.ts';

/** Gaps are measured between attempt starts; a gap this long or shorter is normal jitter. */
export const GAP_INTERVALS = 5;
/** ... but never less than this, so a GC pause or a busy node at 10 ms is not a gap. */
export const MIN_GAP_MS = 1000;

/** The longest normal time between consecutive attempt starts of a lane: max(5 x interval, 1 s). */
export function maxGapMs(intervalMs: number): number {
  return Math.max(GAP_INTERVALS * intervalMs, MIN_GAP_MS);
}

/**
 * Where one of the operator's lanes must have attempts up to (the end of its coverage span):
 * when the controller asked the probers to stop (`askedMs`, its clock), or, when earlier, when
 * the lane's own prober says the request reached it (`stopRequestedMs`, that prober's clock;
 * undefined when it did not answer). A prober whose clock is behind is held only to when it
 * stopped; one that got the request late (its node or process frozen, a slow network) is not
 * held to the time it lost. `recoveredThroughMs` (recoveredThroughAtDecision): observation
 * ended on fresh samples showing every lane recovered up to there, so nothing after it is owed.
 */
export function laneCoverageEnd(
  askedMs: number,
  stopRequestedMs: number | undefined,
  recoveredThroughMs?: number,
): number {
  let end = askedMs;
  if (stopRequestedMs !== undefined && Number.isFinite(stopRequestedMs)) end = Math.min(end, stopRequestedMs);
  if (recoveredThroughMs !== undefined && Number.isFinite(recoveredThroughMs))
    end = Math.min(end, recoveredThroughMs);
  return end;
}

/** How much older than its pass the newest sample may be and still count as fresh. */
export const FRESH_SAMPLES_MS = MIN_GAP_MS;

/**
 * What an observe pass that ended observation proved: with every lane recovered (the tracker's
 * allRecovered at the newest sample: the write, read and dns lanes; topology lanes are not
 * judged on recovery and raise no CoverageGap) on samples as new as the pass (the newest one
 * ending no more than FRESH_SAMPLES_MS before the pass began, on the controller's clock: pod
 * clocks ahead of it widen that by their lead), each of those lanes has attempts up to that
 * newest sample, and the decision needed nothing later. Undefined when
 * observation ended otherwise (observe.maxDuration, not recovered) or on stale samples (probers
 * unreachable while observation went on): then the probers owe samples up to their stop.
 */
export function recoveredThroughAtDecision(decision: {
  recovered: boolean;
  newestEndMs: number;
  passStartMs: number;
}): number | undefined {
  return decision.recovered && decision.newestEndMs >= decision.passStartMs - FRESH_SAMPLES_MS
    ? decision.newestEndMs
    : undefined;
}

export type GapCause =
  /** No attempt started for longer than maxGapMs between two attempts. */
  | 'gap'
  /** The lane's first attempt came more than maxGapMs after baseline start. */
  | 'start'
  /** The lane's last attempt came more than maxGapMs before observation ended. */
  | 'end'
  /** The lane has no attempts at all. */
  | 'no-samples';

export interface CoverageGap {
  /** Start of the last attempt before the gap (or baseline start). */
  fromMs: number;
  /** Start of the first attempt after the gap (or observation end). */
  toMs: number;
  cause: GapCause;
}

export interface LaneCoverage {
  endpoint: string;
  kind: ProbeKind;
  intervalMs: number;
  maxGapMs: number;
  attempts: number;
  firstStartMs: number | null;
  lastStartMs: number | null;
  /** In time order. */
  gaps: CoverageGap[];
  /** True when the lane has attempts up to the end of observation (no `end`/`no-samples` gap). */
  endCovered: boolean;
}

export interface CoverageSpan {
  /** Baseline start: every lane must have attempts from here... */
  fromMs: number;
  /** ...to the end of observation (when the probers were stopped). */
  toMs: number;
}

/**
 * Whether two consecutive attempt starts leave a gap in the run: further apart than the lane
 * allows, and ending inside the span (a gap that ended before it, in the probers' warm-up, is
 * not the run's). Both analysis paths (this file and lane-analysis.ts) ask this.
 */
export function isRunGap(aMs: number, bMs: number, limitMs: number, span: CoverageSpan): boolean {
  return bMs - aMs > limitMs && bMs > span.fromMs;
}

/** Coverage of ONE lane (pass that lane's samples only). */
export function laneCoverage(
  lane: { endpoint: string; kind: ProbeKind; intervalMs: number },
  samples: readonly Sample[],
  span: CoverageSpan,
): LaneCoverage {
  const limitMs = maxGapMs(lane.intervalMs);
  const starts = samples.map((sample) => sample.startMs).sort((a, b) => a - b);
  const gaps: CoverageGap[] = [];
  const first = starts[0];
  const last = starts.at(-1);
  if (first === undefined || last === undefined) {
    gaps.push({ fromMs: span.fromMs, toMs: span.toMs, cause: 'no-samples' });
  } else {
    if (first - span.fromMs > limitMs) gaps.push({ fromMs: span.fromMs, toMs: first, cause: 'start' });
    for (let i = 1; i < starts.length; i++) {
      if (isRunGap(starts[i - 1]!, starts[i]!, limitMs, span))
        gaps.push({ fromMs: starts[i - 1]!, toMs: starts[i]!, cause: 'gap' });
    }
    if (span.toMs - last > limitMs) gaps.push({ fromMs: last, toMs: span.toMs, cause: 'end' });
  }
  return {
    ...lane,
    maxGapMs: limitMs,
    attempts: samples.length,
    firstStartMs: first ?? null,
    lastStartMs: last ?? null,
    gaps,
    endCovered: !gaps.some((gap) => gap.cause === 'end' || gap.cause === 'no-samples'),
  };
}

/** A stretch of a lane's attempts with no inner gap. */
export interface CoveredSegment {
  samples: Sample[];
  /** A gap follows (inner gap, or the lane's data ends early): an outage open here was cut. */
  cutAtEnd: boolean;
  /** When the data of this segment ends: its attempts' latest end. */
  dataEndMs: number;
}

/**
 * Splits a lane's samples at its inner gaps. Outage windows are computed per segment so that
 * no window spans a gap: a window open at a segment's end is cut there (counted up to the
 * segment's last data), and the next segment starts without a "last good attempt before".
 */
export function splitAtGaps(samples: readonly Sample[], coverage: LaneCoverage): CoveredSegment[] {
  const sorted = [...samples].sort(byStart);
  const cuts = coverage.gaps.filter((gap) => gap.cause === 'gap').map((gap) => gap.toMs);
  const segments: CoveredSegment[] = [];
  let current: Sample[] = [];
  let cut = 0;
  const close = (cutAtEnd: boolean) => {
    if (current.length === 0) return;
    segments.push({ samples: current, cutAtEnd, dataEndMs: Math.max(...current.map((s) => s.endMs)) });
    current = [];
  };
  for (const sample of sorted) {
    while (cut < cuts.length && sample.startMs >= cuts[cut]!) {
      close(true);
      cut++;
    }
    current.push(sample);
  }
  close(!coverage.endCovered);
  return segments;
}

/** Total length of a lane's gaps, ms. */
export function gapTotalMs(coverage: LaneCoverage): number {
  return coverage.gaps.reduce((sum, gap) => sum + (gap.toMs - gap.fromMs), 0);
}
