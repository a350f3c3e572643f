// Draws a lane at pixel resolution: attempts are rasterised into columns (worst class wins a
// column) and equal neighbours merge into one bar. The SVG stays small however many samples a
// run has (bounded by lanes x columns), which is the report's downsampling.
import { ERROR_CLASSES, type ErrorClass } from '../analysis/error-class.ts';
import type { Sample } from '../analysis/sample.ts';

/** A lane's attempts as columns (LaneColumns satisfies it), in any order. */
export interface LaneTimes {
  size: number;
  startMs: ArrayLike<number>;
  endMs: ArrayLike<number>;
  /** Index into ERROR_CLASSES. */
  classIndex: ArrayLike<number>;
}

/** Sample objects as columns. */
export function laneTimesOf(samples: readonly Sample[]): LaneTimes {
  return {
    size: samples.length,
    startMs: samples.map((sample) => sample.startMs),
    endMs: samples.map((sample) => sample.endMs),
    classIndex: samples.map((sample) => CLASS_INDEX.get(sample.class)!),
  };
}

export interface LaneSegment {
  /** First column (inclusive) and last column (exclusive). */
  startColumn: number;
  endColumn: number;
  class: ErrorClass;
  /** Attempts of this class that started inside the segment. */
  attempts: number;
  firstStartMs: number;
  lastEndMs: number;
}

export interface TimeDomain {
  startMs: number;
  endMs: number;
}

const CLASS_INDEX = new Map(ERROR_CLASSES.map((name, index) => [name, index]));
const EMPTY = -1;

function severity(classIndex: number): number {
  if (classIndex === EMPTY) return -1;
  if (classIndex === 0) return 0; // ok
  if (classIndex === 1) return 1; // slow
  return 2;
}

/**
 * Segments of one lane. `mergeGapColumns`: segments of one class separated by at most this many
 * empty columns merge (dense fixed-rate attempts read as one bar).
 */
export function laneSegments(
  samples: readonly Sample[],
  domain: TimeDomain,
  columns: number,
  mergeGapColumns = 3,
): LaneSegment[] {
  return laneSegmentsOf(laneTimesOf(samples), domain, columns, mergeGapColumns);
}

/** laneSegments over columns. */
export function laneSegmentsOf(
  lane: LaneTimes,
  domain: TimeDomain,
  columns: number,
  mergeGapColumns = 3,
): LaneSegment[] {
  const spanMs = domain.endMs - domain.startMs;
  const column = (ms: number) => Math.floor(((ms - domain.startMs) / spanMs) * columns);
  const classOf = new Int8Array(columns).fill(EMPTY);
  const outside = (i: number) => lane.endMs[i]! < domain.startMs || lane.startMs[i]! > domain.endMs;
  for (let i = 0; i < lane.size; i++) {
    if (outside(i)) continue;
    const index = lane.classIndex[i]!;
    const first = Math.max(0, column(lane.startMs[i]!));
    const last = Math.min(columns - 1, Math.max(first, column(lane.endMs[i]!)));
    for (let c = first; c <= last; c++) {
      if (severity(index) > severity(classOf[c]!)) classOf[c] = index;
    }
  }
  const segments: LaneSegment[] = [];
  for (let c = 0; c < columns; c++) {
    const index = classOf[c]!;
    if (index === EMPTY) continue;
    const previous = segments.at(-1);
    const errorClass = ERROR_CLASSES[index]!;
    if (previous && previous.class === errorClass && c - previous.endColumn <= mergeGapColumns) {
      previous.endColumn = c + 1;
    } else {
      segments.push({
        startColumn: c,
        endColumn: c + 1,
        class: errorClass,
        attempts: 0,
        firstStartMs: 0,
        lastEndMs: 0,
      });
    }
  }
  // Attribute each attempt to the segment of its class that holds its start column.
  const segmentAt = new Int32Array(columns).fill(EMPTY);
  segments.forEach((segment, index) => {
    segmentAt.fill(index, segment.startColumn, segment.endColumn);
  });
  for (let i = 0; i < lane.size; i++) {
    if (outside(i)) continue;
    const startMs = lane.startMs[i]!;
    const c = Math.min(columns - 1, Math.max(0, column(startMs)));
    const segment = segments[segmentAt[c]!];
    if (!segment || segment.class !== ERROR_CLASSES[lane.classIndex[i]!]) continue;
    // Attempts are taken in any order: the segment's first start is the earliest.
    if (segment.attempts === 0 || startMs < segment.firstStartMs) segment.firstStartMs = startMs;
    segment.attempts++;
    segment.lastEndMs = Math.max(segment.lastEndMs, lane.endMs[i]!);
  }
  return segments;
}
