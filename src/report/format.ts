// Number and text formatting shared by the terminal table and the HTML report.
import type { ClassCounts } from '../analysis/error-counts.ts';
import type { ProbeKindResult } from '../analysis/results.ts';

/** `6.1` -> `6.100s`; null -> `-`. */
export function formatSeconds(seconds: number | null | undefined): string {
  return seconds === null || seconds === undefined ? '-' : `${seconds.toFixed(3)}s`;
}

/** Relative to T0 with a sign: `+10.501s`, `-0.200s`. */
export function formatOffset(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  return `${seconds >= 0 ? '+' : ''}${seconds.toFixed(3)}s`;
}

/**
 * `6.100s (~6.012, 5.903-6.100)`: downtime (the upper bound), then the point estimate and the
 * bounds; `UNRECOVERED` when unrecovered, `-` when the kind was not probed.
 */
export function formatDowntime(kind: ProbeKindResult | null): string {
  if (!kind) return '-';
  const estimate = kind.estimateSeconds === undefined ? '' : `~${kind.estimateSeconds.toFixed(3)}, `;
  const bounds = `(${estimate}${kind.lowerBoundSeconds.toFixed(3)}-${kind.upperBoundSeconds.toFixed(3)})`;
  return `${formatSeconds(kind.downtimeSeconds)} ${bounds}${kind.recovered ? '' : ' UNRECOVERED'}`;
}

/** `read_only 30, starting_up 20`, largest first; `none` when empty. */
export function formatErrorCounts(counts: ClassCounts): string {
  const entries = Object.entries(counts).filter(([, count]) => (count ?? 0) > 0) as [string, number][];
  if (entries.length === 0) return 'none';
  return entries
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([name, count]) => `${name} ${count}`)
    .join(', ');
}

export function formatCount(value: number | null): string {
  return value === null ? '-' : String(value);
}

export function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}
