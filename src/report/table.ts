import type { PhasesResult } from '../analysis/phases.ts';
import type { Results } from '../analysis/results.ts';
import { formatCount, formatDowntime, formatErrorCounts, formatOffset } from './format.ts';

/** Columns of the summary, shared by the terminal table and the HTML report. */
export const SUMMARY_HEADERS = [
  'endpoint',
  'write downtime',
  'read downtime',
  'errors by class',
  'DNS flip',
  'role flip',
  'lost',
  'verdict',
];

/** Rows of the summary, one per endpoint, as text cells. */
export function summaryRows(results: Results): string[][] {
  return results.endpoints.map((endpoint) => [
    endpoint.name,
    formatDowntime(endpoint.write),
    formatDowntime(endpoint.read),
    formatErrorCounts(endpoint.errors),
    formatOffset(endpoint.dnsFlipSeconds),
    formatOffset(endpoint.roleFlipSeconds),
    endpoint.ambiguousWrites
      ? `${formatCount(endpoint.lostWrites)} (+${endpoint.ambiguousWrites} ambiguous)`
      : formatCount(endpoint.lostWrites),
    endpoint.verdict.result,
  ]);
}

/**
 * The terminal summary: `endpoint | write downtime | read downtime | errors by class | DNS flip |
 * role flip | lost | verdict`, then the overall verdict and its reasons. Times are relative to T0.
 */
export function formatSummaryTable(results: Results): string {
  const rows = [SUMMARY_HEADERS, ...summaryRows(results)];
  const widths = SUMMARY_HEADERS.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join(' | ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('-+-');
  const lines = [line(rows[0]!), rule, ...rows.slice(1).map(line)];
  lines.push('');
  lines.push(
    `T0 ${results.trigger.time} (${results.trigger.action ?? results.trigger.type}); downtime = upper bound, (lower-upper) in seconds`,
  );
  lines.push(...phaseLines(results));
  lines.push(`verdict: ${results.verdict.result.toUpperCase()}`);
  for (const reason of results.verdict.reasons) lines.push(`  - ${reason}`);
  return `${lines.join('\n')}\n`;
}

/** `phases (s): endpoint detection d, promotion p, dns n, recovery r` for endpoints with a split. */
export function phaseLines(results: Results): string[] {
  const split = results.endpoints.filter((endpoint) => endpoint.phases);
  if (split.length === 0) return [];
  return [
    'failover phases of each outage, seconds (detection + promotion + dns + recovery = the outage window; dns -: recovered before DNS moved):',
    ...split.map((endpoint) => {
      const p = endpoint.phases!;
      return `  ${endpoint.name}: ${phaseText(p)}`;
    }),
  ];
}

export function phaseText(p: PhasesResult): string {
  const dns =
    p.dnsSeconds ?? (p.dnsWait === 'not-probed' ? '? (no dns probe; recovery includes any DNS wait)' : '-');
  return `detection ${p.detectionSeconds}, promotion ${p.promotionSeconds}, dns ${dns}, recovery ${p.recoverySeconds}`;
}
