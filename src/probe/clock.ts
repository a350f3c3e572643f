// One time base for the probes: durations come from the monotonic clock, and wall-clock
// times are derived from it (timeOrigin + now) so that start/end pairs never run backwards
// when NTP steps the system clock mid-run.
import { performance } from 'node:perf_hooks';

/** Monotonic milliseconds (fractional). */
export type MonotonicNow = () => number;

export const monotonicNow: MonotonicNow = () => performance.now();

/** Epoch milliseconds (UTC) for a monotonic reading. */
export function wallClockMs(monotonicMs: number): number {
  return performance.timeOrigin + monotonicMs;
}
