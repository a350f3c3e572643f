// Kubernetes-style durations (`100ms`, `30s`, `2m`, `1h30m`): the Go time.ParseDuration syntax,
// restricted to the units an SRE uses here, so CEL's duration() accepts every value we accept.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** One or more `<number><unit>` parts, units ms, s, m, h; e.g. `100ms`, `1.5s`, `1m30s`. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

const DURATION_REGEX = new RegExp(DURATION_PATTERN);
const PART_REGEX = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g;

export function isDuration(text: string): boolean {
  return DURATION_REGEX.test(text);
}

/** Parses `100ms`, `30s`, `2m`, `1h30m` to milliseconds; throws a RangeError on anything else. */
export function parseDurationMs(text: string): number {
  if (!isDuration(text)) {
    throw new RangeError(
      `invalid duration \`${text}\`: use a number and a unit, like 100ms, 30s, 2m or 1h30m`,
    );
  }
  let totalMs = 0;
  for (const [, amount, unit] of text.matchAll(PART_REGEX)) {
    totalMs += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return totalMs;
}

/** Formats milliseconds as the shortest readable duration: 100ms, 1.5s, 2m, 1m30s. */
export function formatDurationMs(totalMs: number): string {
  if (totalMs < 1000) return `${Number(totalMs.toFixed(3))}ms`;
  if (totalMs < 60_000) return `${Number((totalMs / 1000).toFixed(3))}s`;
  const minutes = Math.floor(totalMs / 60_000);
  const rest = totalMs - minutes * 60_000;
  return rest === 0 ? `${minutes}m` : `${minutes}m${formatDurationMs(rest)}`;
}
