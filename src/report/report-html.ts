// report.html: one self-contained page (inline CSS and SVG, no scripts, no external requests):
// the timeline of the run, its legend and RDS events, then the summary table.
import { ERROR_CLASS_DESCRIPTIONS, ERROR_CLASSES, type ErrorClass } from '../analysis/error-class.ts';
import type { EndpointResult, Results } from '../analysis/results.ts';
import type { Sample } from '../analysis/sample.ts';
import { CLASS_COLORS, MARKER_COLORS, PHASE_COLORS } from './class-colors.ts';
import { escapeXml, formatDowntime, formatErrorCounts, formatOffset, formatSeconds } from './format.ts';
import { phaseText, SUMMARY_HEADERS, summaryRows } from './table.ts';
import { type Lane, renderTimelineSvg, reportLanes } from './timeline-svg.ts';

const PAGE_STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1c2833; margin: 24px; max-width: 1340px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
.meta { color: #566573; margin: 0 0 12px; }
.verdict { display: inline-block; padding: 3px 10px; border-radius: 4px; font-weight: 700; color: #fff; }
.verdict.Pass { background: #1e7b34; }
.verdict.Fail { background: #b03a2e; }
.verdict.Inconclusive { background: #9a6700; }
.reasons { margin: 6px 0 0; color: #b03a2e; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 8px 0; font-size: 12px; }
.legend span { display: inline-flex; align-items: center; gap: 5px; }
.swatch { width: 14px; height: 12px; display: inline-block; border-radius: 2px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #d5dbdb; padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #f4f6f6; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
ol.events { margin: 4px 0; padding-left: 22px; font-size: 13px; }
.note { color: #566573; font-size: 12px; max-width: 1000px; }
`;

/** The classes of the run's attempts, ok always. */
function presentClasses(lanes: readonly Lane[]): ErrorClass[] {
  const present = new Set<ErrorClass>(['ok']);
  for (const lane of lanes) for (const errorClass of lane.classes) present.add(errorClass);
  return ERROR_CLASSES.filter((name) => present.has(name));
}

function legend(lanes: readonly Lane[]): string {
  const classes = presentClasses(lanes).map(
    (name) =>
      `<span title="${escapeXml(ERROR_CLASS_DESCRIPTIONS[name])}"><i class="swatch" style="background:${CLASS_COLORS[name]}"></i>${name}</span>`,
  );
  const symbol = (svg: string, label: string) =>
    `<span><svg width="14" height="14" viewBox="-7 -7 14 14" aria-hidden="true">${svg}</svg>${label}</span>`;
  const markers = [
    symbol(
      `<line x1="0" y1="-7" x2="0" y2="7" stroke="${MARKER_COLORS.trigger}" stroke-width="2"/>`,
      'T0 (failover call)',
    ),
    symbol(`<circle r="6" fill="${MARKER_COLORS.rdsEvent}"/>`, 'RDS event (numbered below)'),
    symbol(`<polygon points="-6,-5 6,-5 0,6" fill="${MARKER_COLORS.dnsFlip}"/>`, 'DNS flip'),
    symbol(`<polygon points="0,-6 6,0 0,6 -6,0" fill="${MARKER_COLORS.roleFlip}"/>`, 'role flip'),
    symbol(
      `<circle r="4.5" fill="none" stroke="${MARKER_COLORS.recovered}" stroke-width="2.5"/>`,
      'recovered',
    ),
    `<span><i class="swatch" style="background:${MARKER_COLORS.window};opacity:.25;border:1px solid ${MARKER_COLORS.window}"></i>outage window</span>`,
    '<span title="no attempts: the prober was not measuring (lost, evicted, restarted); missing data, not downtime"><i class="swatch" style="background:#ffffff;border:1.5px dashed #7f8c8d"></i>coverage gap (no data)</span>',
  ];
  return `<div class="legend">${classes.join('')}</div><div class="legend">${markers.join('')}</div>`;
}

function events(results: Results): string {
  if (results.trigger.events.length === 0) return '<p class="note">No RDS events were recorded.</p>';
  const items = results.trigger.events.map(
    (event) =>
      `<li><b>${formatOffset(event.seconds)}</b> ${escapeXml(event.time)} ${event.source ? `<i>${escapeXml(event.source)}</i> ` : ''}${escapeXml(event.message)}</li>`,
  );
  return `<ol class="events">${items.join('')}</ol>`;
}

/** The summary table (SUMMARY_HEADERS, one row per endpoint), numbers right-aligned. */
export function summaryTable(results: Results): string {
  const headers = SUMMARY_HEADERS;
  const rows = summaryRows(results).map(
    (cells) =>
      `<tr>${cells.map((cell, index) => `<td${index === 0 || index === 3 ? '' : ' class="num"'}>${escapeXml(cell)}</td>`).join('')}</tr>`,
  );
  return `<table><thead><tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function detailRows(endpoint: EndpointResult): string[] {
  const rows: string[] = [];
  for (const [kind, result] of [
    ['write', endpoint.write],
    ['read', endpoint.read],
  ] as const) {
    if (!result) continue;
    const latency = result.latency
      ? `p50 ${result.latency.p50Ms.toFixed(1)} / p99 ${result.latency.p99Ms.toFixed(1)} / max ${result.latency.maxMs.toFixed(1)} ms`
      : '-';
    const windows = result.windows
      .map((w) => `${formatOffset(w.start.seconds)} .. ${w.end ? formatOffset(w.end.seconds) : 'open'}`)
      .join(', ');
    rows.push(
      `<tr><td>${escapeXml(endpoint.name)}</td><td>${kind}</td><td class="num">${escapeXml(formatDowntime(result))}</td><td>${escapeXml(windows || 'none')}</td><td>${escapeXml(formatErrorCounts(result.errors))}</td><td class="num">${result.attempts}</td><td class="num">${latency}</td></tr>`,
    );
  }
  return rows;
}

function detailTable(results: Results): string {
  const headers = [
    'endpoint',
    'kind',
    'downtime (lower-upper)',
    'outage windows',
    'errors',
    'attempts',
    'ok latency',
  ];
  const rows = results.endpoints.flatMap(detailRows);
  const gaps = results.endpoints
    .filter((endpoint) => endpoint.serverSideGapSeconds !== null)
    .map((endpoint) => `${escapeXml(endpoint.name)} ${formatSeconds(endpoint.serverSideGapSeconds)}`);
  return [
    `<table><thead><tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`,
    gaps.length
      ? `<p class="note">Server-side gap (largest gap between committed rows): ${gaps.join(', ')}.</p>`
      : '',
  ].join('');
}

const PHASE_LABELS = {
  detection: 'detection: the client is down, the database still reports its writer',
  promotion: 'promotion: no instance reports itself the writer',
  dns: "DNS: the new writer is there, the endpoint's name still points at the old one",
  recovery: 'recovery: the client finds its way back',
} as const;

/**
 * "Failover phases": for each endpoint whose outage could be split (phases.ts), one bar from
 * its outage start to its end on a shared axis, cut into detection, promotion, DNS and recovery.
 */
export function phaseSection(results: Results): string {
  const split = results.endpoints.filter((endpoint) => endpoint.phases);
  if (split.length === 0) return '';
  const from = Math.min(0, ...split.map((e) => e.phases!.window.start.seconds));
  const to = Math.max(...split.map((e) => e.phases!.window.end.seconds));
  const left = 200;
  const width = 900;
  const rowHeight = 22;
  const x = (seconds: number) => left + ((seconds - from) / Math.max(to - from, 0.001)) * width;
  const rows = split.map((endpoint, row) => {
    const p = endpoint.phases!;
    const y = 8 + row * rowHeight;
    const parts: string[] = [
      `<text x="${left - 8}" y="${y + 13}" text-anchor="end" font-size="12">${escapeXml(endpoint.name)}</text>`,
    ];
    let at = p.window.start.seconds;
    for (const phase of ['detection', 'promotion', 'dns', 'recovery'] as const) {
      const seconds = p[`${phase}Seconds`];
      if (seconds === null || seconds <= 0) continue;
      const x0 = x(at);
      const w = Math.max(x(at + seconds) - x0, 1);
      parts.push(
        `<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="16" fill="${PHASE_COLORS[phase]}"><title>${escapeXml(`${endpoint.name}: ${phase} ${seconds}s (${formatOffset(at)} .. ${formatOffset(at + seconds)})`)}</title></rect>`,
      );
      if (w > 34)
        parts.push(
          `<text x="${(x0 + w / 2).toFixed(1)}" y="${y + 12}" text-anchor="middle" font-size="11" fill="#fff">${seconds}s</text>`,
        );
      at += seconds;
    }
    return parts.join('');
  });
  const height = 16 + split.length * rowHeight;
  const t0 = x(0);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 20}" height="${height}" role="img" aria-label="failover phases per endpoint">${rows.join('')}<line x1="${t0.toFixed(1)}" y1="0" x2="${t0.toFixed(1)}" y2="${height}" stroke="${MARKER_COLORS.trigger}" stroke-width="1.5"/></svg>`;
  const legendItems = Object.entries(PHASE_LABELS).map(
    ([phase, label]) =>
      `<span><i class="swatch" style="background:${PHASE_COLORS[phase as keyof typeof PHASE_COLORS]}"></i>${escapeXml(label)}</span>`,
  );
  const table = split.map(
    (endpoint) =>
      `<tr><td>${escapeXml(endpoint.name)}</td><td class="num">${formatOffset(endpoint.phases!.window.start.seconds)} .. ${formatOffset(endpoint.phases!.window.end.seconds)}</td><td>${escapeXml(phaseText(endpoint.phases!))}</td><td>${escapeXml(`${endpoint.phases!.writerBefore ?? '?'} -> ${endpoint.phases!.writerAfter ?? '?'}, no writer ${formatOffset(endpoint.phases!.writerLost.seconds)} .. ${formatOffset(endpoint.phases!.writerFound.seconds)} (topology of ${endpoint.phases!.topologyFrom})`)}</td></tr>`,
  );
  return `<h2>Failover phases</h2>
<div class="legend">${legendItems.join('')}</div>
${svg}
<table><thead><tr><th>endpoint</th><th>outage</th><th>phases (s)</th><th>writer, as the database reported it</th></tr></thead><tbody>${table.join('')}</tbody></table>`;
}

/** The whole report page for one run. */
export function renderReportHtml(results: Results, samples: readonly Sample[]): string {
  return renderReportHtmlOfLanes(results, reportLanes(results, samples));
}

/** The report page from lanes already drawn (reportLane), e.g. one endpoint's at a time. */
export function renderReportHtmlOfLanes(results: Results, lanes: readonly Lane[]): string {
  const { experiment, trigger, verdict } = results;
  const title = `failwatch: ${experiment.namespace ? `${experiment.namespace}/` : ''}${experiment.name}`;
  const reasons = verdict.reasons.length
    ? `<ul class="reasons">${verdict.reasons.map((reason) => `<li>${escapeXml(reason)}</li>`).join('')}</ul>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<h1>${escapeXml(title)} <span class="verdict ${verdict.result}">${verdict.result.toUpperCase()}</span></h1>
<p class="meta">run ${escapeXml(experiment.runId)} · T0 ${escapeXml(trigger.time)} · ${escapeXml(trigger.type)}${trigger.action ? ` ${escapeXml(trigger.action)}` : ''}${trigger.target ? ` on ${escapeXml(trigger.target)}${trigger.targetKind ? ` (${escapeXml(trigger.targetKind)})` : ''}` : ''} · observed until ${formatOffset(results.observation.end.seconds)}</p>
${reasons}
<h2>Timeline</h2>
${legend(lanes)}
${renderTimelineSvg(results, lanes)}
${events(results)}
${phaseSection(results)}
<h2>Summary</h2>
${summaryTable(results)}
<p class="note">Times are seconds relative to T0, the failover API call. Downtime is the total length of the outage windows that overlap the observation; an outage window runs from the end of the last good attempt before a run of bad attempts to the end of the first good attempt after it (lower bound: first bad start to last bad end); ~ marks the point estimate (docs/results.md). Slow attempts count as unavailable. Lost: acknowledged writes missing after recovery.</p>
<h2>Details</h2>
${detailTable(results)}
</body>
</html>
`;
}
