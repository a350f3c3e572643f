// The one-page picture of a run: a lane per endpoint and probe kind on one time axis around T0,
// every attempt coloured by class, markers for T0, RDS events, DNS flip, role flip, recovery.

import { ERROR_CLASSES, type ErrorClass } from '../analysis/error-class.ts';
import type {
  CoverageGapResult,
  EndpointResult,
  OutageWindowResult,
  ProbeKindResult,
  Results,
} from '../analysis/results.ts';
import { PROBE_KINDS, type ProbeKind, type Sample } from '../analysis/sample.ts';
import { CLASS_COLORS, MARKER_COLORS } from './class-colors.ts';
import { escapeXml, formatOffset } from './format.ts';
import {
  type LaneSegment,
  type LaneTimes,
  laneSegmentsOf,
  laneTimesOf,
  type TimeDomain,
} from './lane-segments.ts';
import { axisTicksSeconds, reportDomain } from './time-axis.ts';

export const LAYOUT = {
  width: 1320,
  plotLeft: 200,
  plotWidth: 1080,
  top: 34,
  laneHeight: 20,
  laneGap: 6,
  groupHeader: 18,
  groupGap: 14,
  axisHeight: 30,
} as const;

export interface Lane {
  endpoint: string;
  kind: ProbeKind;
  /** Attempts of the lane. */
  attempts: number;
  /** The lane drawn at pixel resolution over reportDomain(results) (lane-segments.ts). */
  segments: LaneSegment[];
  /** Classes of its attempts (the legend lists them). */
  classes: ReadonlySet<ErrorClass>;
  result: ProbeKindResult | null;
}

/** Whether the report draws a lane: every probed kind, and any kind with attempts. */
export function drawsLane(endpoint: EndpointResult, kind: ProbeKind, attempts: number): boolean {
  return attempts > 0 || endpoint.probes.includes(kind);
}

/** A lane of the report from its attempts as columns (compact lanes or sample objects). */
export function reportLane(
  results: Results,
  endpoint: EndpointResult,
  kind: ProbeKind,
  times: LaneTimes,
): Lane {
  const classes = new Set<ErrorClass>();
  for (let i = 0; i < times.size; i++) classes.add(ERROR_CLASSES[times.classIndex[i]!]!);
  return {
    classes,
    endpoint: endpoint.name,
    kind,
    attempts: times.size,
    segments: laneSegmentsOf(times, reportDomain(results), LAYOUT.plotWidth),
    result:
      kind === 'write'
        ? endpoint.write
        : kind === 'read'
          ? endpoint.read
          : kind === 'topology'
            ? (endpoint.topology ?? null)
            : null,
  };
}

/** Lanes in results order: every probed kind of every endpoint (write, read, dns). */
export function reportLanes(results: Results, samples: readonly Sample[]): Lane[] {
  const byLane = new Map<string, Sample[]>();
  for (const sample of samples) {
    const key = `${sample.endpoint}\n${sample.kind}`;
    const list = byLane.get(key);
    if (list) list.push(sample);
    else byLane.set(key, [sample]);
  }
  const lanes: Lane[] = [];
  for (const endpoint of results.endpoints) {
    for (const kind of PROBE_KINDS) {
      const laneSamples = byLane.get(`${endpoint.name}\n${kind}`) ?? [];
      if (!drawsLane(endpoint, kind, laneSamples.length)) continue;
      lanes.push(reportLane(results, endpoint, kind, laneTimesOf(laneSamples)));
    }
  }
  return lanes;
}

interface Geometry {
  domain: TimeDomain;
  t0Ms: number;
  x: (ms: number) => number;
}

const num = (value: number) => Number(value.toFixed(1));

function segmentRect(segment: LaneSegment, y: number, lane: Lane, geometry: Geometry): string {
  const x = LAYOUT.plotLeft + segment.startColumn;
  const width = segment.endColumn - segment.startColumn;
  const rect = `<rect x="${x}" y="${y}" width="${width}" height="${LAYOUT.laneHeight}" fill="${CLASS_COLORS[segment.class]}"`;
  if (segment.class === 'ok') return `${rect}/>`;
  const from = formatOffset((segment.firstStartMs - geometry.t0Ms) / 1000);
  const to = formatOffset((segment.lastEndMs - geometry.t0Ms) / 1000);
  const title = `${lane.endpoint} ${lane.kind}: ${segment.class} x${segment.attempts}, ${from} .. ${to}`;
  return `${rect}><title>${escapeXml(title)}</title></rect>`;
}

function windowSpan(window: OutageWindowResult, geometry: Geometry): { startX: number; width: number } {
  const startX = Math.max(LAYOUT.plotLeft, geometry.x(geometry.t0Ms + window.start.seconds * 1000));
  const endX = window.end
    ? Math.min(LAYOUT.plotLeft + LAYOUT.plotWidth, geometry.x(geometry.t0Ms + window.end.seconds * 1000))
    : LAYOUT.plotLeft + LAYOUT.plotWidth;
  return { startX, width: Math.max(1, endX - startX) };
}

/** The outage window behind the lane's attempts. */
function windowBand(window: OutageWindowResult, y: number, geometry: Geometry): string {
  const { startX, width } = windowSpan(window, geometry);
  return `<rect class="window" x="${num(startX)}" y="${y - 3}" width="${num(width)}" height="${LAYOUT.laneHeight + 6}"/>`;
}

/** The window's length, over the attempts (only where it fits). */
function windowLabel(window: OutageWindowResult, y: number, geometry: Geometry): string {
  const { startX, width } = windowSpan(window, geometry);
  const label = window.open
    ? `${window.durationSeconds.toFixed(3)}s open`
    : `${window.durationSeconds.toFixed(3)}s`;
  if (width < label.length * 6.5) return '';
  return `<text class="window-label" x="${num(startX + width / 2)}" y="${y + LAYOUT.laneHeight / 2 + 4}">${label}</text>`;
}

/** A coverage gap: no attempts, so no data (hatched; never drawn as an outage). */
function gapBand(gap: CoverageGapResult, y: number, lane: Lane, geometry: Geometry): string {
  const startX = Math.max(LAYOUT.plotLeft, geometry.x(geometry.t0Ms + gap.start.seconds * 1000));
  const endX = Math.min(
    LAYOUT.plotLeft + LAYOUT.plotWidth,
    geometry.x(geometry.t0Ms + gap.end.seconds * 1000),
  );
  const title = `${lane.endpoint} ${lane.kind}: no data ${formatOffset(gap.start.seconds)} .. ${formatOffset(gap.end.seconds)} (${gap.seconds}s, ${gap.cause}): the prober was not measuring; not counted as downtime`;
  const width = Math.max(1, endX - startX);
  const label =
    width >= 50
      ? `<text class="gap-label" x="${num(startX + width / 2)}" y="${y + LAYOUT.laneHeight / 2 + 4}">no data</text>`
      : '';
  return `<g><rect class="gap" x="${num(startX)}" y="${y}" width="${num(width)}" height="${LAYOUT.laneHeight}"/>${label}<title>${escapeXml(title)}</title></g>`;
}

function diamond(x: number, y: number, color: string, title: string): string {
  return `<polygon points="${num(x)},${y - 6} ${num(x + 6)},${y} ${num(x)},${y + 6} ${num(x - 6)},${y}" fill="${color}"><title>${escapeXml(title)}</title></polygon>`;
}

function triangle(x: number, y: number, color: string, title: string): string {
  return `<polygon points="${num(x - 6)},${y - 5} ${num(x + 6)},${y - 5} ${num(x)},${y + 6}" fill="${color}"><title>${escapeXml(title)}</title></polygon>`;
}

function circle(x: number, y: number, color: string, title: string): string {
  return `<circle cx="${num(x)}" cy="${y}" r="5" fill="none" stroke="${color}" stroke-width="2.5"><title>${escapeXml(title)}</title></circle>`;
}

function recoveredSeconds(endpoint: EndpointResult): number | null {
  const times = [endpoint.write, endpoint.read].flatMap((kind) =>
    kind?.recoveredAt ? [kind.recoveredAt.seconds] : [],
  );
  return times.length === 0 ? null : Math.max(...times);
}

/** Markers of one endpoint group: symbols on the header row and thin lines through its lanes. */
function groupMarkers(
  endpoint: EndpointResult,
  headerY: number,
  bottomY: number,
  geometry: Geometry,
): string {
  const parts: string[] = [];
  const at = (seconds: number) => geometry.x(geometry.t0Ms + seconds * 1000);
  // Symbols closer than 13 px shift sideways so each stays visible; the lines stay exact.
  const placed: number[] = [];
  const place = (x: number) => {
    let symbolX = x;
    while (placed.some((other) => Math.abs(other - symbolX) < 13)) symbolX += 13;
    placed.push(symbolX);
    return symbolX;
  };
  const line = (x: number, color: string) =>
    `<line x1="${num(x)}" y1="${headerY + 6}" x2="${num(x)}" y2="${bottomY}" stroke="${color}" stroke-width="1.5" stroke-dasharray="2 2"/>`;
  const recovered = recoveredSeconds(endpoint);
  if (recovered !== null) {
    parts.push(line(at(recovered), MARKER_COLORS.recovered));
    parts.push(
      circle(
        place(at(recovered)),
        headerY,
        MARKER_COLORS.recovered,
        `${endpoint.name}: recovered ${formatOffset(recovered)}`,
      ),
    );
  }
  if (endpoint.dnsFlip) {
    const x = at(endpoint.dnsFlip.seconds);
    parts.push(line(x, MARKER_COLORS.dnsFlip));
    parts.push(
      triangle(
        place(x),
        headerY,
        MARKER_COLORS.dnsFlip,
        `${endpoint.name}: DNS flip ${formatOffset(endpoint.dnsFlip.seconds)} -> ${endpoint.dnsFlip.to.join(' ')}`,
      ),
    );
  }
  if (endpoint.roleFlip) {
    const x = at(endpoint.roleFlip.seconds);
    parts.push(line(x, MARKER_COLORS.roleFlip));
    parts.push(
      diamond(
        place(x),
        headerY,
        MARKER_COLORS.roleFlip,
        `${endpoint.name}: role flip ${formatOffset(endpoint.roleFlip.seconds)} ${endpoint.roleFlip.fromServer} -> ${endpoint.roleFlip.toServer}`,
      ),
    );
  }
  return parts.join('');
}

function axis(y: number, geometry: Geometry, topY: number): string {
  const parts: string[] = [];
  for (const tick of axisTicksSeconds(geometry.domain, geometry.t0Ms)) {
    const x = num(geometry.x(geometry.t0Ms + tick * 1000));
    const label = tick === 0 ? 'T0' : `${tick > 0 ? '+' : ''}${tick}s`;
    parts.push(`<line class="grid" x1="${x}" y1="${topY}" x2="${x}" y2="${y}"/>`);
    parts.push(`<text class="tick" x="${x}" y="${y + 16}">${label}</text>`);
  }
  parts.push(
    `<line class="axis" x1="${LAYOUT.plotLeft}" y1="${y}" x2="${LAYOUT.plotLeft + LAYOUT.plotWidth}" y2="${y}"/>`,
  );
  return parts.join('');
}

function triggerMarkers(results: Results, geometry: Geometry, topY: number, bottomY: number): string {
  const parts: string[] = [];
  const t0X = num(geometry.x(geometry.t0Ms));
  parts.push(`<line class="t0" x1="${t0X}" y1="${topY - 14}" x2="${t0X}" y2="${bottomY}"/>`);
  parts.push(
    `<text class="t0-label" x="${t0X}" y="${topY - 18}">T0 ${escapeXml(results.trigger.action ?? results.trigger.type)}</text>`,
  );
  results.trigger.events.forEach((event, index) => {
    const ms = geometry.t0Ms + event.seconds * 1000;
    if (ms < geometry.domain.startMs || ms > geometry.domain.endMs) return;
    const x = num(geometry.x(ms));
    const title = escapeXml(`${formatOffset(event.seconds)} ${event.message}`);
    parts.push(
      `<line class="event" x1="${x}" y1="${topY - 8}" x2="${x}" y2="${bottomY}"><title>${title}</title></line>`,
    );
    parts.push(
      `<g class="badge"><circle cx="${x}" cy="${topY - 10}" r="8"/><text x="${x}" y="${topY - 6}">${index + 1}</text><title>${title}</title></g>`,
    );
  });
  return parts.join('');
}

const STYLE = `
text { font: 12px system-ui, -apple-system, "Segoe UI", sans-serif; fill: #1c2833; }
.endpoint { font-weight: 600; }
.kind { fill: #566573; }
.tick { text-anchor: middle; fill: #566573; font-size: 11px; }
.grid { stroke: #e5e8e8; stroke-width: 1; }
.axis { stroke: #839192; stroke-width: 1; }
.lane-bg { fill: #f4f6f6; }
.gap { fill: #ffffff; stroke: #7f8c8d; stroke-width: 1.5; stroke-dasharray: 4 3; }
.gap-label { font-size: 11px; fill: #7f8c8d; text-anchor: middle; }
.window { fill: ${MARKER_COLORS.window}; fill-opacity: 0.13; stroke: ${MARKER_COLORS.window}; stroke-opacity: 0.5; stroke-width: 1; }
.window-label { text-anchor: middle; font-size: 11px; font-weight: 600; fill: #1c2833; paint-order: stroke; stroke: #ffffff; stroke-width: 3px; }
.t0 { stroke: ${MARKER_COLORS.trigger}; stroke-width: 2; }
.t0-label { font-weight: 600; text-anchor: start; }
.event { stroke: ${MARKER_COLORS.rdsEvent}; stroke-width: 1.2; stroke-dasharray: 5 3; }
.badge circle { fill: ${MARKER_COLORS.rdsEvent}; }
.badge text { fill: #ffffff; font-size: 10px; font-weight: 700; text-anchor: middle; }
`;

/** The timeline as an inline SVG element (no external references). */
export function renderTimelineSvg(results: Results, lanes: readonly Lane[]): string {
  const domain = reportDomain(results);
  const t0Ms = Date.parse(results.trigger.time);
  const spanMs = domain.endMs - domain.startMs;
  const geometry: Geometry = {
    domain,
    t0Ms,
    x: (ms) => LAYOUT.plotLeft + ((ms - domain.startMs) / spanMs) * LAYOUT.plotWidth,
  };
  const body: string[] = [];
  const markers: string[] = [];
  let y = LAYOUT.top + 8;
  for (const endpoint of results.endpoints) {
    const endpointLanes = lanes.filter((lane) => lane.endpoint === endpoint.name);
    if (endpointLanes.length === 0) continue;
    const headerY = y + LAYOUT.groupHeader / 2;
    y += LAYOUT.groupHeader;
    body.push(`<text class="endpoint" x="8" y="${headerY + 4}">${escapeXml(endpoint.name)}</text>`);
    for (const lane of endpointLanes) {
      body.push(`<g class="lane" data-endpoint="${escapeXml(lane.endpoint)}" data-kind="${lane.kind}">`);
      body.push(`<text class="kind" x="20" y="${y + LAYOUT.laneHeight / 2 + 4}">${lane.kind}</text>`);
      body.push(
        `<rect class="lane-bg" x="${LAYOUT.plotLeft}" y="${y}" width="${LAYOUT.plotWidth}" height="${LAYOUT.laneHeight}"/>`,
      );
      for (const window of lane.result?.windows ?? []) body.push(windowBand(window, y, geometry));
      for (const segment of lane.segments) {
        body.push(segmentRect(segment, y, lane, geometry));
      }
      for (const window of lane.result?.windows ?? []) body.push(windowLabel(window, y, geometry));
      const coverage = endpoint.coverage?.lanes.find((c) => c.kind === lane.kind);
      for (const gap of coverage?.gaps ?? []) body.push(gapBand(gap, y, lane, geometry));
      if (lane.attempts === 0) {
        body.push(
          `<text class="kind" x="${LAYOUT.plotLeft + 8}" y="${y + LAYOUT.laneHeight / 2 + 4}">no samples</text>`,
        );
      }
      body.push('</g>');
      y += LAYOUT.laneHeight + LAYOUT.laneGap;
    }
    markers.push(groupMarkers(endpoint, headerY, y - LAYOUT.laneGap, geometry));
    y += LAYOUT.groupGap;
  }
  const axisY = y;
  const height = axisY + LAYOUT.axisHeight;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${LAYOUT.width}" height="${height}" viewBox="0 0 ${LAYOUT.width} ${height}" role="img" aria-label="failover timeline">`,
    `<style>${STYLE}</style>`,
    axis(axisY, geometry, LAYOUT.top),
    ...body,
    triggerMarkers(results, geometry, LAYOUT.top, axisY),
    ...markers,
    '</svg>',
  ].join('\n');
}
