import { type ErrorClass, isGoodClass } from './error-class.ts';
import { byStart } from './outage-windows.ts';
import type { Sample } from './sample.ts';

export type ClassCounts = Partial<Record<ErrorClass, number>>;

/** Attempts per class, every class except `ok` (zero counts omitted). */
export function errorCounts(samples: readonly Sample[]): ClassCounts {
  const counts: ClassCounts = {};
  for (const sample of samples) {
    if (isGoodClass(sample.class)) continue;
    counts[sample.class] = (counts[sample.class] ?? 0) + 1;
  }
  return counts;
}

export interface ErrorAt {
  /** First error: the attempt's start; last error: the attempt's end. Epoch ms. */
  atMs: number;
  class: ErrorClass;
  code?: string;
  message?: string;
}

/** The first bad attempt (by start) and the last bad attempt (by end), or null when none. */
export function firstAndLastError(samples: readonly Sample[]): { first: ErrorAt; last: ErrorAt } | null {
  const bad = samples.filter((sample) => !isGoodClass(sample.class)).sort(byStart);
  const first = bad[0];
  if (!first) return null;
  let last = first;
  for (const sample of bad) if (sample.endMs >= last.endMs) last = sample;
  return { first: errorAt(first, first.startMs), last: errorAt(last, last.endMs) };
}

/** Messages in results.json are cut at this length: a lane has up to 16 of them. */
export const MESSAGE_MAX = 512;

export function capMessage(message: string): string {
  return message.length > MESSAGE_MAX ? `${message.slice(0, MESSAGE_MAX - 3)}...` : message;
}

export type ErrorExamples = Partial<Record<ErrorClass, ErrorAt>>;

/**
 * One example per bad class: its earliest attempt by start (ties: the first to arrive), with
 * the code and message it failed with. `other` above all needs its message to be understood.
 */
export function errorExamples(samples: readonly Sample[]): ErrorExamples {
  const examples: ErrorExamples = {};
  for (const sample of samples) {
    if (isGoodClass(sample.class)) continue;
    const seen = examples[sample.class];
    if (!seen || sample.startMs < seen.atMs) examples[sample.class] = errorAt(sample, sample.startMs);
  }
  return examples;
}

function errorAt(sample: Sample, atMs: number): ErrorAt {
  const result: ErrorAt = { atMs, class: sample.class };
  if (sample.code !== undefined) result.code = sample.code;
  if (sample.message !== undefined) result.message = capMessage(sample.message);
  return result;
}
