// analyzeRun without holding the run's samples: the lanes of one endpoint at a time come from
// `lanesOf` (compact columns, lane-columns.ts), are reduced to their figures (lane-analysis.ts)
// and dropped before the next endpoint's are read. Memory is one endpoint's lanes (26 bytes a
// sample), however long the run. Gives the same results document as analyzeRun.
import {
  type AuditRow,
  assembleResults,
  auditRowsOf,
  coverageSpan,
  type EndpointInput,
  endpointResult,
  kindResult,
  laneDowntime,
  laneIntervalMs,
  type RunMeta,
  timePoints,
  uncheckedDowntime,
} from './analyze-run.ts';
import type { LaneCoverage } from './coverage.ts';
import type { ClassCounts } from './error-counts.ts';
import { laneDnsFlip, laneFigures, laneServerFlip, laneWriteAudit } from './lane-analysis.ts';
import { DetailTable, LaneColumns } from './lane-columns.ts';
import type { ProbeKindResult, Results } from './results.ts';
import { PROBE_KINDS, type ProbeKind } from './sample.ts';

/** One endpoint's lanes by kind (kinds without samples may be absent). */
export type EndpointLanes = ReadonlyMap<ProbeKind, LaneColumns>;

/**
 * `lanesOf` gives an endpoint's lanes; `auditOf`, when given, its read-back rows (undefined: its
 * audit did not run) instead of input.auditRows and input.auditMissing, so that only one
 * endpoint's rows are held at a time too.
 */
export async function analyzeRunStreamed(
  input: RunMeta,
  lanesOf: (endpoint: string) => Promise<EndpointLanes> | EndpointLanes,
  auditOf?: (endpoint: string) => Promise<readonly AuditRow[] | undefined>,
): Promise<Results> {
  const endpoints = [];
  for (const endpoint of input.endpoints) {
    const rows = auditOf ? await auditOf(endpoint.name) : auditRowsOf(endpoint.name, input);
    endpoints.push(analyzeEndpointLanes(endpoint, await lanesOf(endpoint.name), rows, input));
  }
  return assembleResults(input, endpoints);
}

function analyzeEndpointLanes(
  endpoint: EndpointInput,
  lanes: EndpointLanes,
  rows: readonly AuditRow[] | undefined,
  input: RunMeta,
) {
  const { phases } = input;
  const t0 = phases.triggerMs;
  const at = timePoints(t0);
  const span = coverageSpan(input, endpoint.name);
  const errors: ClassCounts = {};
  const coverage = new Map<ProbeKind, LaneCoverage>();
  const results = new Map<ProbeKind, ProbeKindResult>();
  for (const kind of PROBE_KINDS) {
    const probed = endpoint.probes.includes(kind);
    const lane = lanes.get(kind) ?? new LaneColumns(endpoint.name, kind, new DetailTable());
    if (lane.size === 0 && !probed) continue;
    const intervalMs = probed ? laneIntervalMs(endpoint, kind) : undefined;
    const figures = laneFigures(lane, intervalMs === undefined ? undefined : { intervalMs, span });
    if (figures.coverage) coverage.set(kind, figures.coverage);
    // What the clients met: the topology probe's answers are the database's, not a client's.
    if (kind !== 'topology')
      for (const [errorClass, count] of Object.entries(figures.errors) as [keyof ClassCounts, number][])
        errors[errorClass] = (errors[errorClass] ?? 0) + count;
    if (kind === 'dns') continue;
    const counted = figures.coverage
      ? laneDowntime(figures.segments, phases)
      : uncheckedDowntime(
          figures.segments.flatMap((segment) => segment.windows),
          phases,
        );
    results.set(kind, kindResult(counted, figures, phases, at));
  }
  return endpointResult(endpoint, input, {
    write: results.get('write') ?? null,
    read: results.get('read') ?? null,
    ...(results.has('topology')
      ? { topology: { result: results.get('topology')!, flip: laneServerFlip(lanes.get('topology'), t0) } }
      : {}),
    errors,
    dns: laneDnsFlip(lanes.get('dns'), t0),
    role: laneServerFlip(lanes.get('write'), t0),
    readFlip: laneServerFlip(lanes.get('read'), t0),
    audit: rows ? laneWriteAudit(lanes.get('write'), new Set(rows.map((row) => row.key))) : null,
    rows,
    coverage:
      endpoint.intervalMs === undefined ? undefined : endpoint.probes.map((kind) => coverage.get(kind)!),
  });
}
