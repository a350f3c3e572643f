import { gapTotalMs, type LaneCoverage, laneCoverage, splitAtGaps } from './coverage.ts';
import { type DnsFlip, dnsFlip } from './dns-flip.ts';
import { type Downtime, downtime } from './downtime.ts';
import {
  type ClassCounts,
  type ErrorAt,
  type ErrorExamples,
  errorCounts,
  errorExamples,
  firstAndLastError,
} from './error-counts.ts';
import { type LatencySummary, latencySummary } from './latency.ts';
import {
  type OutageWindow,
  outageWindows,
  windowEstimateMs,
  windowLowerMs,
  windowUpperMs,
} from './outage-windows.ts';
import { addPhases } from './phases.ts';
import {
  COVERAGE_GAPS_LIMIT,
  type CoverageResult,
  type EndpointResult,
  type ErrorMoment,
  type OutageWindowResult,
  type ProbeKindResult,
  RESULTS_API_VERSION,
  RESULTS_KIND,
  type Results,
  type TimePoint,
  WINDOWS_LIMIT,
} from './results.ts';
import type { ProbeKind, Sample } from './sample.ts';
import { type ServerFlip, serverFlip } from './server-flip.ts';
import { type CommittedRow, serverSideGap } from './server-side-gap.ts';
import { isoTime, roundSeconds, secondsSinceT0 } from './time-point.ts';
import {
  type EndpointMeasurement,
  findingsOf,
  type InconclusiveFinding,
  resultOf,
  type Slo,
  verdict,
} from './verdict.ts';
import { auditWrites, type WriteAudit } from './write-audit.ts';

export interface RunPhasesMs {
  baselineStartMs: number;
  /** T0: the failover API call (for an observe-only run: when observation started). */
  triggerMs: number;
  observeEndMs: number;
  /**
   * When the probers were stopped: every lane must have attempts up to here (coverage).
   * Default observeEndMs.
   */
  coverageEndMs?: number;
  /** Per endpoint (lane name): when its own prober stopped, where that differs; default coverageEndMs. */
  coverageEndByEndpointMs?: Record<string, number>;
}

export interface TriggerEventInput {
  atMs: number;
  source?: string;
  message: string;
}

export interface EndpointInput {
  name: string;
  role?: string;
  dialect?: string;
  connectionMode?: string;
  /** The client stack that probed (driver or aws-advanced-nodejs-wrapper). */
  client?: string;
  probes: ProbeKind[];
  /** Overrides the run's default SLO field by field. */
  slo?: Slo;
  /**
   * Time between attempt starts of the write and read probes, and of the dns probe (default
   * intervalMs). Coverage is checked only when given (docs/results.md, coverage).
   */
  intervalMs?: number;
  dnsIntervalMs?: number;
  /** Time between topology probe attempts (default intervalMs). */
  topologyIntervalMs?: number;
  /** Per-zone lanes (name `<endpoint>@<zone>`): the endpoint's name and the zone. */
  endpoint?: string;
  zone?: string;
}

/** A probe row found after recovery, read back from the new writer. */
export interface AuditRow extends Partial<CommittedRow> {
  endpoint: string;
  key: string;
}

/** Everything about a run but its samples (the streamed analysis reads those lane by lane). */
export type RunMeta = Omit<RunInput, 'samples'>;

export interface RunInput {
  experiment: { name: string; namespace?: string; runId: string };
  phases: RunPhasesMs;
  trigger: {
    type: string;
    action?: string | null;
    target?: string | null;
    targetKind?: string | null;
    events: TriggerEventInput[];
  };
  endpoints: EndpointInput[];
  samples: readonly Sample[];
  /** Rows read back after recovery; absent when no audit ran (lost writes are then null). */
  auditRows?: readonly AuditRow[];
  /** Endpoints whose read-back did not run although others' did (their lost writes are null). */
  auditMissing?: readonly string[];
  /** Samples each endpoint's prober could not store (its sample store was full), by endpoint. */
  droppedSamples?: Readonly<Record<string, number>>;
  defaultSlo?: Slo;
  /**
   * Reasons, found outside the samples, why the run cannot be decided (e.g. FailoverNotObserved);
   * they make the verdict Inconclusive unless a check fails on measured data.
   */
  inconclusive?: readonly InconclusiveFinding[];
}

/** A lane's outage windows per covered segment (see coverage.ts, splitAtGaps). */
export interface SegmentWindows {
  windows: readonly OutageWindow[];
  /** A gap follows (inner gap, or the lane's data ends early): an outage open here was cut. */
  cutAtEnd: boolean;
}

export type CountedDowntime = Downtime & { cut: Set<OutageWindow> };

/**
 * Downtime of a lane, segment by segment (coverage.ts): no window spans a coverage gap. A window
 * still open where the data stops is cut there: it counts until its last bad attempt's end,
 * never through the gap (a lost prober is not downtime), and it does not end observation open.
 */
export function laneDowntime(segments: readonly SegmentWindows[], phases: RunPhasesMs): CountedDowntime {
  const windows: OutageWindow[] = [];
  const cut = new Set<OutageWindow>();
  for (const segment of segments) {
    for (const window of segment.windows) {
      if (!(segment.cutAtEnd && window.open)) {
        windows.push(window);
        continue;
      }
      const endMs = window.lowerEndMs;
      const closed: OutageWindow = {
        ...window,
        endMs,
        estimateEndMs: Math.max(window.estimateStartMs, endMs),
        open: false,
      };
      cut.add(closed);
      windows.push(closed);
    }
  }
  const counted = downtime(windows, { startMs: phases.triggerMs, endMs: phases.observeEndMs });
  // Only data at the end of observation can show the lane recovered.
  const last = segments.at(-1);
  return { ...counted, recovered: counted.recovered && last !== undefined && !last.cutAtEnd, cut };
}

/** Downtime of a lane whose coverage is not checked: all of its windows, none cut. */
export function uncheckedDowntime(windows: readonly OutageWindow[], phases: RunPhasesMs): CountedDowntime {
  return {
    ...downtime(windows, { startMs: phases.triggerMs, endMs: phases.observeEndMs }),
    cut: new Set<OutageWindow>(),
  };
}

/** What a lane's result needs besides its downtime. */
export interface KindFigures {
  attempts: number;
  okAttempts: number;
  errors: ClassCounts;
  errorExamples: ErrorExamples;
  firstError: ErrorAt | null;
  lastError: ErrorAt | null;
  latency: LatencySummary | null;
}

function analyzeKind(
  samples: readonly Sample[],
  input: RunInput,
  at: (ms: number) => TimePoint,
  coverage: LaneCoverage | undefined,
): ProbeKindResult {
  const { phases } = input;
  const counted = coverage
    ? laneDowntime(
        splitAtGaps(samples, coverage).map((segment) => ({
          windows: outageWindows(segment.samples),
          cutAtEnd: segment.cutAtEnd,
        })),
        phases,
      )
    : uncheckedDowntime(outageWindows(samples), phases);
  const errors = firstAndLastError(samples);
  return kindResult(
    counted,
    {
      attempts: samples.length,
      okAttempts: samples.filter((sample) => sample.class === 'ok').length,
      errors: errorCounts(samples),
      errorExamples: errorExamples(samples),
      firstError: errors?.first ?? null,
      lastError: errors?.last ?? null,
      latency: latencySummary(samples),
    },
    phases,
    at,
  );
}

/** A lane's entry in results.json. */
export function kindResult(
  counted: CountedDowntime,
  figures: KindFigures,
  phases: RunPhasesMs,
  at: (ms: number) => TimePoint,
): ProbeKindResult {
  const moment = (e: ErrorAt): ErrorMoment => {
    const result: ErrorMoment = { ...at(e.atMs), class: e.class };
    if (e.code !== undefined) result.code = e.code;
    if (e.message !== undefined) result.message = e.message;
    return result;
  };
  const lastWindow = counted.windows.at(-1);
  return {
    attempts: figures.attempts,
    okAttempts: figures.okAttempts,
    downtimeSeconds: roundSeconds(counted.downtimeMs / 1000),
    lowerBoundSeconds: roundSeconds(counted.lowerBoundMs / 1000),
    upperBoundSeconds: roundSeconds(counted.upperBoundMs / 1000),
    estimateSeconds: roundSeconds(counted.estimateMs / 1000),
    recovered: counted.recovered,
    recoveredAt: lastWindow?.endMs != null ? at(lastWindow.endMs) : null,
    windows: counted.windows
      .slice(0, WINDOWS_LIMIT)
      .map((window) => windowResult(window, phases, at, counted.cut.has(window))),
    windowsOmitted: Math.max(0, counted.windows.length - WINDOWS_LIMIT),
    errors: figures.errors,
    errorExamples: Object.fromEntries(
      Object.entries(figures.errorExamples).map(([c, e]) => [c, moment(e)]),
    ) as ProbeKindResult['errorExamples'],
    firstError: figures.firstError ? moment(figures.firstError) : null,
    lastError: figures.lastError ? moment(figures.lastError) : null,
    latency: figures.latency,
  };
}

function windowResult(
  window: OutageWindow,
  phases: RunPhasesMs,
  at: (ms: number) => TimePoint,
  cutByGap: boolean,
): OutageWindowResult {
  const upperSeconds = roundSeconds(windowUpperMs(window, phases.observeEndMs) / 1000);
  return {
    start: at(window.startMs),
    end: window.endMs === null ? null : at(window.endMs),
    durationSeconds: upperSeconds,
    lowerBoundSeconds: roundSeconds(windowLowerMs(window) / 1000),
    upperBoundSeconds: upperSeconds,
    estimateSeconds: roundSeconds(windowEstimateMs(window, phases.observeEndMs) / 1000),
    open: window.open,
    ...(cutByGap ? { cutByGap: true } : {}),
    badAttempts: window.badAttempts,
    errors: window.classes,
  };
}

/** What an endpoint's entry in results.json is made of (analyzeRun and analyzeRunStreamed). */
export interface EndpointParts {
  write: ProbeKindResult | null;
  read: ProbeKindResult | null;
  /** Present when the endpoint has a topology lane. */
  topology?: { result: ProbeKindResult; flip: ServerFlip | null };
  errors: ClassCounts;
  dns: DnsFlip | null;
  role: ServerFlip | null;
  readFlip: ServerFlip | null;
  audit: WriteAudit | null;
  /** The rows read back (server-side gap); undefined when the endpoint's audit did not run. */
  rows: readonly AuditRow[] | undefined;
  coverage: LaneCoverage[] | undefined;
}

/** The read-back rows of the endpoint, undefined when its audit did not run. */
export function auditRowsOf(endpoint: string, input: RunMeta): AuditRow[] | undefined {
  return input.auditMissing?.includes(endpoint)
    ? undefined
    : input.auditRows?.filter((row) => row.endpoint === endpoint);
}

function analyzeEndpoint(
  endpoint: EndpointInput,
  samples: readonly Sample[],
  input: RunInput,
): EndpointResult {
  const t0 = input.phases.triggerMs;
  const at = timePoints(t0);
  const ofKind = (kind: ProbeKind) => samples.filter((sample) => sample.kind === kind);
  const hasKind = (kind: ProbeKind) => endpoint.probes.includes(kind) || samples.some((s) => s.kind === kind);
  const coverage = endpointCoverage(endpoint, samples, input);
  const laneOf = (kind: ProbeKind) => coverage?.find((lane) => lane.kind === kind);
  const rows = auditRowsOf(endpoint.name, input);
  return endpointResult(endpoint, input, {
    write: hasKind('write') ? analyzeKind(ofKind('write'), input, at, laneOf('write')) : null,
    read: hasKind('read') ? analyzeKind(ofKind('read'), input, at, laneOf('read')) : null,
    ...(hasKind('topology')
      ? {
          topology: {
            result: analyzeKind(ofKind('topology'), input, at, laneOf('topology')),
            flip: serverFlip(samples, 'topology', t0),
          },
        }
      : {}),
    // What the clients met: the topology probe's answers are the database's, not a client's.
    errors: errorCounts(samples.filter((sample) => sample.kind !== 'topology')),
    dns: dnsFlip(samples, t0),
    role: serverFlip(samples, 'write', t0),
    readFlip: serverFlip(samples, 'read', t0),
    audit: rows
      ? auditWrites(
          samples,
          rows.map((row) => row.key),
        )
      : null,
    rows,
    coverage,
  });
}

export function timePoints(t0: number): (ms: number) => TimePoint {
  return (ms) => ({ seconds: secondsSinceT0(ms, t0), time: isoTime(ms) });
}

/** An endpoint's entry in results.json (its verdict is set by assembleResults). */
export function endpointResult(
  endpoint: EndpointInput,
  input: RunMeta,
  parts: EndpointParts,
): EndpointResult {
  const t0 = input.phases.triggerMs;
  const at = timePoints(t0);
  const { write, dns, role, readFlip, audit, rows, coverage } = parts;
  const gap = rows
    ? serverSideGap(
        rows.flatMap((row) => (row.serverMs === undefined ? [] : [{ key: row.key, serverMs: row.serverMs }])),
      )
    : null;
  return {
    name: endpoint.name,
    ...(endpoint.zone !== undefined
      ? { endpoint: endpoint.endpoint ?? endpoint.name, zone: endpoint.zone }
      : {}),
    ...(endpoint.role !== undefined ? { role: endpoint.role } : {}),
    ...(endpoint.dialect !== undefined ? { dialect: endpoint.dialect } : {}),
    ...(endpoint.connectionMode !== undefined ? { connectionMode: endpoint.connectionMode } : {}),
    ...(endpoint.client !== undefined ? { client: endpoint.client } : {}),
    probes: endpoint.probes,
    write,
    read: parts.read,
    errors: parts.errors,
    dnsFlipSeconds: dns ? secondsSinceT0(dns.atMs, t0) : null,
    dnsFlip: dns ? { ...at(dns.atMs), from: dns.from, to: dns.to } : null,
    roleFlipSeconds: role ? secondsSinceT0(role.atMs, t0) : null,
    roleFlip: role ? { ...at(role.atMs), fromServer: role.fromServer, toServer: role.toServer } : null,
    readServerFlip: readFlip
      ? { ...at(readFlip.atMs), fromServer: readFlip.fromServer, toServer: readFlip.toServer }
      : null,
    ...(parts.topology
      ? {
          topology: parts.topology.result,
          writerFlip: parts.topology.flip && {
            ...at(parts.topology.flip.atMs),
            fromServer: parts.topology.flip.fromServer,
            toServer: parts.topology.flip.toServer,
          },
        }
      : {}),
    lostWrites: audit && write ? audit.lostWrites : null,
    ambiguousWrites: audit && write ? audit.ambiguousWrites : null,
    lostWriteKeys: audit?.lostKeys ?? [],
    ambiguousWriteKeys: audit?.ambiguousKeys ?? [],
    serverSideGapSeconds: gap ? roundSeconds(gap.gapMs / 1000) : null,
    serverSideGap: gap ? { from: at(gap.fromMs), to: at(gap.toMs) } : null,
    ...(coverage
      ? { coverage: coverageResult(coverage, input.droppedSamples?.[endpoint.name] ?? 0, at) }
      : {}),
    verdict: { result: 'Pass', reasons: [] },
  };
}

/** The span `endpoint`'s lanes must cover: baseline start to when its probers stopped. */
export function coverageSpan(input: RunMeta, endpoint: string): { fromMs: number; toMs: number } {
  const { phases } = input;
  return {
    fromMs: phases.baselineStartMs,
    toMs: phases.coverageEndByEndpointMs?.[endpoint] ?? phases.coverageEndMs ?? phases.observeEndMs,
  };
}

/** The interval a lane's coverage is checked against; undefined: not checked. */
export function laneIntervalMs(endpoint: EndpointInput, kind: ProbeKind): number | undefined {
  if (endpoint.intervalMs === undefined) return undefined;
  if (kind === 'dns') return endpoint.dnsIntervalMs ?? endpoint.intervalMs;
  if (kind === 'topology') return endpoint.topologyIntervalMs ?? endpoint.intervalMs;
  return endpoint.intervalMs;
}

/** Coverage of each of the endpoint's lanes, when its intervals are known. */
function endpointCoverage(
  endpoint: EndpointInput,
  samples: readonly Sample[],
  input: RunInput,
): LaneCoverage[] | undefined {
  if (endpoint.intervalMs === undefined) return undefined;
  return endpoint.probes.map((kind) =>
    laneCoverage(
      { endpoint: endpoint.name, kind, intervalMs: laneIntervalMs(endpoint, kind)! },
      samples.filter((sample) => sample.kind === kind),
      coverageSpan(input, endpoint.name),
    ),
  );
}

function coverageResult(
  lanes: readonly LaneCoverage[],
  droppedSamples: number,
  at: (ms: number) => TimePoint,
): CoverageResult {
  return {
    complete: droppedSamples === 0 && lanes.every((lane) => lane.gaps.length === 0),
    droppedSamples,
    lanes: lanes.map((lane) => ({
      kind: lane.kind,
      intervalSeconds: roundSeconds(lane.intervalMs / 1000),
      maxGapSeconds: roundSeconds(lane.maxGapMs / 1000),
      attempts: lane.attempts,
      firstAttempt: lane.firstStartMs === null ? null : at(lane.firstStartMs),
      lastAttempt: lane.lastStartMs === null ? null : at(lane.lastStartMs),
      gaps: lane.gaps.slice(0, COVERAGE_GAPS_LIMIT).map((gap) => ({
        start: at(gap.fromMs),
        end: at(gap.toMs),
        seconds: roundSeconds((gap.toMs - gap.fromMs) / 1000),
        cause: gap.cause,
      })),
      gapsOmitted: Math.max(0, lane.gaps.length - COVERAGE_GAPS_LIMIT),
      gapSeconds: roundSeconds(gapTotalMs(lane) / 1000),
      endCovered: lane.endCovered,
    })),
  };
}

/** A CoverageGap finding per endpoint whose samples do not cover the run. */
export function coverageFindings(endpoints: readonly EndpointResult[]): InconclusiveFinding[] {
  const findings: InconclusiveFinding[] = [];
  for (const endpoint of endpoints) {
    const coverage = endpoint.coverage;
    if (!coverage || coverage.complete) continue;
    // A gap in the topology lane leaves the phases out (phases.ts), not the clients' figures.
    const lanes = coverage.lanes.filter((lane) => lane.kind !== 'topology');
    if (coverage.droppedSamples === 0 && lanes.every((lane) => lane.gaps.length + lane.gapsOmitted === 0))
      continue;
    const parts: string[] = [];
    for (const lane of lanes) {
      const gaps = lane.gaps.length + lane.gapsOmitted;
      if (gaps === 0) continue;
      const first = lane.gaps[0]!;
      const where =
        first.cause === 'no-samples'
          ? 'no samples at all'
          : `${gaps} gap${gaps > 1 ? 's' : ''} (${lane.gapSeconds}s in all), the first from ${signed(first.start.seconds)} to ${signed(first.end.seconds)}`;
      parts.push(`${lane.kind}: ${where}`);
    }
    if (coverage.droppedSamples > 0)
      parts.push(`${coverage.droppedSamples} samples dropped (prober store full)`);
    const limit = lanes[0]?.maxGapSeconds;
    findings.push({
      reason: 'CoverageGap',
      endpoint: endpoint.name,
      message: `endpoint \`${endpoint.name}\`: samples do not cover the run (${parts.join('; ')}; allowed gap ${limit}s); missing data is not counted as downtime or lost writes`,
    });
  }
  return findings;
}

function signed(seconds: number): string {
  return `${seconds >= 0 ? '+' : ''}${seconds}s`;
}

function measurementOf(result: EndpointResult): EndpointMeasurement {
  // A lane whose data stops before observation ended is not shown unrecovered: unknown, which
  // its CoverageGap finding says (a lost prober is not an outage).
  const endCovered = (kind: ProbeKind) =>
    result.coverage?.lanes.find((lane) => lane.kind === kind)?.endCovered ?? true;
  const unrecoveredKinds: string[] = [];
  if (result.write && !result.write.recovered && endCovered('write')) unrecoveredKinds.push('write');
  if (result.read && !result.read.recovered && endCovered('read')) unrecoveredKinds.push('read');
  return {
    name: result.name,
    writeDowntimeSeconds: result.write?.downtimeSeconds ?? null,
    readDowntimeSeconds: result.read?.downtimeSeconds ?? null,
    unrecoveredKinds,
    writes: result.write !== null,
    lostWrites: result.lostWrites,
  };
}

/** Assembles the results document of one run from its samples, phases, events and audit. */
export function analyzeRun(input: RunInput): Results {
  const byEndpoint = new Map<string, Sample[]>(input.endpoints.map((endpoint) => [endpoint.name, []]));
  for (const sample of input.samples) byEndpoint.get(sample.endpoint)?.push(sample);
  return assembleResults(
    input,
    input.endpoints.map((endpoint) => analyzeEndpoint(endpoint, byEndpoint.get(endpoint.name)!, input)),
  );
}

/** The results document from the endpoints' entries: verdict, phases, trigger. */
export function assembleResults(input: RunMeta, endpoints: EndpointResult[]): Results {
  const { phases } = input;
  const t0 = phases.triggerMs;
  const at = timePoints(t0);
  const sloOf = (name: string): Slo => ({
    ...input.defaultSlo,
    ...input.endpoints.find((endpoint) => endpoint.name === name)?.slo,
  });
  addPhases(endpoints);
  const findings = [...coverageFindings(endpoints), ...(input.inconclusive ?? [])];
  const overall = verdict(endpoints.map(measurementOf), sloOf, findings);
  for (const endpoint of endpoints) {
    const reasons = overall.checks.flatMap((check) =>
      check.endpoint === endpoint.name && check.reason ? [check.reason] : [],
    );
    const own = findingsOf(findings, endpoint.name);
    endpoint.verdict = {
      result: resultOf(reasons.length > 0, own),
      reasons: [...reasons, ...own.map((finding) => finding.message)],
    };
  }
  return {
    apiVersion: RESULTS_API_VERSION,
    kind: RESULTS_KIND,
    experiment: { ...input.experiment },
    baseline: { start: at(phases.baselineStartMs), end: at(t0) },
    observation: { start: at(t0), end: at(phases.observeEndMs) },
    trigger: {
      type: input.trigger.type,
      action: input.trigger.action ?? null,
      target: input.trigger.target ?? null,
      targetKind: input.trigger.targetKind ?? null,
      time: isoTime(t0),
      events: [...input.trigger.events]
        .sort((a, b) => a.atMs - b.atMs)
        .map((event) => ({
          ...at(event.atMs),
          ...(event.source ? { source: event.source } : {}),
          message: event.message,
        })),
    },
    endpoints,
    verdict: overall,
  };
}
