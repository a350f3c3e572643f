// The figures of one lane computed in one pass over its compact columns in start order: the
// same definitions as outage-windows.ts, coverage.ts, error-counts.ts, latency.ts, dns-flip.ts,
// server-flip.ts and write-audit.ts (which take sample objects), without making an object per
// sample. analyze-streamed.test.ts checks that both give the same results.json.
import { type CoverageGap, isRunGap, type LaneCoverage, maxGapMs } from './coverage.ts';
import type { DnsFlip } from './dns-flip.ts';
import { ERROR_CLASSES, type ErrorClass, isAcknowledgedClass, isGoodClass } from './error-class.ts';
import { type ClassCounts, capMessage, type ErrorAt, type ErrorExamples } from './error-counts.ts';
import type { LaneColumns } from './lane-columns.ts';
import { type LatencySummary, percentile } from './latency.ts';
import { HUNG_ERROR_MS, mergeInto, type OutageWindow } from './outage-windows.ts';
import type { ServerFlip } from './server-flip.ts';
import { AUDIT_KEYS_LIMIT, emptyAudit, type WriteAudit } from './write-audit.ts';

const indexOf = (errorClass: ErrorClass) => ERROR_CLASSES.indexOf(errorClass);
const TIMEOUT_CLASS_INDEXES: ReadonlySet<number> = new Set([
  indexOf('connect_timeout'),
  indexOf('query_timeout'),
]);
const OK = indexOf('ok');
const SLOW = indexOf('slow');

/** Builds the outage windows of a lane from its attempts fed in start order (outageWindows). */
export class OutageWindowBuilder {
  readonly windows: OutageWindow[] = [];
  #previousGoodEndMs: number | undefined;
  #run:
    | {
        previousGoodEndMs: number | undefined;
        firstStartMs: number;
        lastBadEndMs: number;
        evidenceFromMs: number;
        evidenceToMs: number;
        badAttempts: number;
        classes: Partial<Record<ErrorClass, number>>;
      }
    | undefined;

  add(startMs: number, endMs: number, classIndex: number, errorClass: ErrorClass): void {
    if (classIndex === OK) {
      if (this.#run) this.#close(startMs, endMs);
      this.#previousGoodEndMs = endMs;
      return;
    }
    this.#run ??= {
      previousGoodEndMs: this.#previousGoodEndMs,
      firstStartMs: startMs,
      lastBadEndMs: endMs,
      evidenceFromMs: Number.POSITIVE_INFINITY,
      evidenceToMs: Number.NEGATIVE_INFINITY,
      badAttempts: 0,
      classes: {},
    };
    const run = this.#run;
    run.lastBadEndMs = Math.max(run.lastBadEndMs, endMs);
    run.classes[errorClass] = (run.classes[errorClass] ?? 0) + 1;
    run.badAttempts++;
    // unavailableEvidence (outage-windows.ts)
    let from: number;
    let to: number;
    if (TIMEOUT_CLASS_INDEXES.has(classIndex)) from = to = startMs;
    else if (classIndex === SLOW || endMs - startMs > HUNG_ERROR_MS) {
      from = startMs;
      to = endMs;
    } else from = to = endMs;
    run.evidenceFromMs = Math.min(run.evidenceFromMs, from);
    run.evidenceToMs = Math.max(run.evidenceToMs, to);
  }

  /** The windows, the last one open when the lane ended in a bad run. */
  finish(): OutageWindow[] {
    if (this.#run) this.#close(undefined, undefined);
    return this.windows;
  }

  #close(nextGoodStartMs: number | undefined, nextGoodEndMs: number | undefined): void {
    const run = this.#run!;
    this.#run = undefined;
    const endMs = nextGoodEndMs ?? null;
    const startMs =
      run.previousGoodEndMs !== undefined
        ? Math.min(run.previousGoodEndMs, run.firstStartMs)
        : run.firstStartMs;
    const estimateStartMs = Math.max(startMs, run.evidenceFromMs);
    const window: OutageWindow = {
      startMs,
      endMs,
      lowerStartMs: run.firstStartMs,
      lowerEndMs: endMs === null ? run.lastBadEndMs : Math.min(run.lastBadEndMs, endMs),
      estimateStartMs,
      estimateEndMs:
        endMs !== null
          ? Math.min(endMs, Math.max(nextGoodStartMs!, run.evidenceToMs, estimateStartMs))
          : null,
      open: endMs === null,
      startedWithFirstAttempt: run.previousGoodEndMs === undefined,
      badAttempts: run.badAttempts,
      classes: run.classes,
    };
    const last = this.windows.at(-1);
    if (last && (last.endMs === null || window.startMs < last.endMs)) mergeInto(last, window);
    else this.windows.push(window);
  }
}

/** A lane's windows per covered segment (splitAtGaps), each with whether a gap cut it. */
export interface SegmentWindows {
  windows: OutageWindow[];
  cutAtEnd: boolean;
}

export interface LaneFigures {
  attempts: number;
  okAttempts: number;
  /** Per segment when coverage is checked, else one segment of the whole lane (never cut). */
  segments: SegmentWindows[];
  coverage: LaneCoverage | undefined;
  errors: ClassCounts;
  errorExamples: ErrorExamples;
  firstError: ErrorAt | null;
  lastError: ErrorAt | null;
  latency: LatencySummary | null;
}

function errorAtOf(lane: LaneColumns, i: number, atMs: number): ErrorAt {
  const result: ErrorAt = { atMs, class: lane.classOf(i) };
  const detail = lane.detailOf(i);
  if (detail.code !== undefined) result.code = detail.code;
  if (detail.message !== undefined) result.message = capMessage(detail.message);
  return result;
}

/**
 * Coverage (laneCoverage) over the lane's starts in order, or undefined when the interval is not
 * known (not checked).
 */
function coverageOf(
  lane: LaneColumns,
  order: Uint32Array,
  intervalMs: number,
  span: { fromMs: number; toMs: number },
): LaneCoverage {
  const limitMs = maxGapMs(intervalMs);
  const gaps: CoverageGap[] = [];
  const n = order.length;
  const first = n > 0 ? lane.startMs[order[0]!]! : undefined;
  const last = n > 0 ? lane.startMs[order[n - 1]!]! : undefined;
  if (first === undefined || last === undefined) {
    gaps.push({ fromMs: span.fromMs, toMs: span.toMs, cause: 'no-samples' });
  } else {
    if (first - span.fromMs > limitMs) gaps.push({ fromMs: span.fromMs, toMs: first, cause: 'start' });
    for (let k = 1; k < n; k++) {
      const a = lane.startMs[order[k - 1]!]!;
      const b = lane.startMs[order[k]!]!;
      if (isRunGap(a, b, limitMs, span)) gaps.push({ fromMs: a, toMs: b, cause: 'gap' });
    }
    if (span.toMs - last > limitMs) gaps.push({ fromMs: last, toMs: span.toMs, cause: 'end' });
  }
  return {
    endpoint: lane.endpoint,
    kind: lane.kind,
    intervalMs,
    maxGapMs: limitMs,
    attempts: n,
    firstStartMs: first ?? null,
    lastStartMs: last ?? null,
    gaps,
    endCovered: !gaps.some((gap) => gap.cause === 'end' || gap.cause === 'no-samples'),
  };
}

/** Every figure of one lane (analyzeKind's inputs), `coverage` when its interval is given. */
export function laneFigures(
  lane: LaneColumns,
  coverageOpts: { intervalMs: number; span: { fromMs: number; toMs: number } } | undefined,
): LaneFigures {
  const order = lane.startOrder();
  const coverage = coverageOpts
    ? coverageOf(lane, order, coverageOpts.intervalMs, coverageOpts.span)
    : undefined;
  const cuts = coverage ? coverage.gaps.filter((gap) => gap.cause === 'gap').map((gap) => gap.toMs) : [];
  const segments: SegmentWindows[] = [];
  let builder = new OutageWindowBuilder();
  let inSegment = 0;
  let cut = 0;
  let firstBad = -1;
  let lastBad = -1;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    const startMs = lane.startMs[i]!;
    while (cut < cuts.length && startMs >= cuts[cut]!) {
      if (inSegment > 0) segments.push({ windows: builder.finish(), cutAtEnd: true });
      builder = new OutageWindowBuilder();
      inSegment = 0;
      cut++;
    }
    const classIndex = lane.classIndex[i]!;
    builder.add(startMs, lane.endMs[i]!, classIndex, lane.classOf(i));
    inSegment++;
    if (classIndex !== OK) {
      if (firstBad < 0) firstBad = i;
      if (lastBad < 0 || lane.endMs[i]! >= lane.endMs[lastBad]!) lastBad = i;
    }
  }
  if (inSegment > 0)
    segments.push({ windows: builder.finish(), cutAtEnd: coverage ? !coverage.endCovered : false });
  // Counts in arrival order (as errorCounts does), latencies of the ok attempts.
  const errors: ClassCounts = {};
  const exampleOf = new Map<ErrorClass, number>();
  let okAttempts = 0;
  for (let i = 0; i < lane.size; i++) {
    if (lane.classIndex[i] === OK) okAttempts++;
    else {
      const c = lane.classOf(i);
      errors[c] = (errors[c] ?? 0) + 1;
      const seen = exampleOf.get(c);
      if (seen === undefined || lane.startMs[i]! < lane.startMs[seen]!) exampleOf.set(c, i);
    }
  }
  const examples: ErrorExamples = {};
  for (const [c, i] of exampleOf) examples[c] = errorAtOf(lane, i, lane.startMs[i]!);
  const durations = new Float64Array(okAttempts);
  for (let i = 0, d = 0; i < lane.size; i++)
    if (lane.classIndex[i] === OK) durations[d++] = lane.endMs[i]! - lane.startMs[i]!;
  durations.sort();
  return {
    attempts: lane.size,
    okAttempts,
    segments,
    coverage,
    errors,
    errorExamples: examples,
    firstError: firstBad < 0 ? null : errorAtOf(lane, firstBad, lane.startMs[firstBad]!),
    lastError: lastBad < 0 ? null : errorAtOf(lane, lastBad, lane.endMs[lastBad]!),
    latency:
      okAttempts === 0
        ? null
        : {
            count: okAttempts,
            p50Ms: percentile(durations, 50),
            p95Ms: percentile(durations, 95),
            p99Ms: percentile(durations, 99),
            maxMs: durations[okAttempts - 1]!,
          },
  };
}

function answerKey(answer: readonly string[]): string {
  return answer.map((name) => name.toLowerCase().replace(/\.$/, '')).join(' ');
}

/**
 * First answer of `lane` that differs from the last one before the trigger (dnsFlip over a dns
 * lane, serverFlip over a write or read lane), by `answerOf` (undefined: the sample does not count).
 */
function firstChange<T>(
  lane: LaneColumns,
  triggerMs: number,
  answerOf: (i: number) => T | undefined,
  keyOf: (value: T) => string,
): { atMs: number; from: T; to: T } | null {
  const order = lane.startOrder();
  let before: T | undefined;
  for (const i of order) {
    if (lane.endMs[i]! > triggerMs) continue;
    const value = answerOf(i);
    if (value !== undefined) before = value;
  }
  if (before === undefined) return null;
  const beforeKey = keyOf(before);
  let flip: { atMs: number; from: T; to: T } | null = null;
  for (const i of order) {
    const endMs = lane.endMs[i]!;
    if (endMs <= triggerMs) continue;
    const value = answerOf(i);
    if (value === undefined || keyOf(value) === beforeKey) continue;
    if (!flip || endMs < flip.atMs) flip = { atMs: endMs, from: before, to: value };
  }
  return flip;
}

/** dnsFlip (dns-flip.ts) over a dns lane. */
export function laneDnsFlip(lane: LaneColumns | undefined, triggerMs: number): DnsFlip | null {
  if (!lane) return null;
  const flip = firstChange(
    lane,
    triggerMs,
    (i) => {
      const answer = lane.detailOf(i).dnsAnswer;
      return isGoodClass(lane.classOf(i)) && answer?.length ? answer : undefined;
    },
    answerKey,
  );
  return flip && { atMs: flip.atMs, from: flip.from, to: flip.to };
}

/** serverFlip (server-flip.ts) over a write or read lane. */
export function laneServerFlip(lane: LaneColumns | undefined, triggerMs: number): ServerFlip | null {
  if (!lane) return null;
  const flip = firstChange(
    lane,
    triggerMs,
    (i) => (isAcknowledgedClass(lane.classOf(i)) ? lane.detailOf(i).server?.id : undefined),
    (id) => id,
  );
  return flip && { atMs: flip.atMs, fromServer: flip.from, toServer: flip.to };
}

/** auditWrites (write-audit.ts) over a write lane, in arrival order. */
export function laneWriteAudit(lane: LaneColumns | undefined, present: ReadonlySet<string>): WriteAudit {
  const audit = emptyAudit();
  for (let i = 0; i < (lane?.size ?? 0); i++) {
    const key = lane!.writeKeyOf(i);
    if (key === undefined) continue;
    const exists = present.has(key);
    if (isAcknowledgedClass(lane!.classOf(i))) {
      if (exists) audit.confirmedWrites++;
      else if (audit.lostWrites++ < AUDIT_KEYS_LIMIT) audit.lostKeys.push(key);
    } else if (exists) {
      if (audit.ambiguousWrites++ < AUDIT_KEYS_LIMIT) audit.ambiguousKeys.push(key);
    } else {
      audit.failedWrites++;
    }
  }
  return audit;
}
