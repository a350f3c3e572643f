/** Seconds relative to T0 (the failover API call), rounded to the millisecond. */
export function secondsSinceT0(atMs: number, triggerMs: number): number {
  return roundSeconds((atMs - triggerMs) / 1000);
}

export function roundSeconds(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/** Absolute UTC ISO-8601 time with milliseconds. */
export function isoTime(atMs: number): string {
  return new Date(Math.round(atMs)).toISOString();
}
