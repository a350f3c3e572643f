// The results.json format, `failwatch.io/results/v1`. Documented field by field in
// docs/results.md; users gate CI on it, so change it only compatibly (add fields) within v1.
import type { ErrorClass } from './error-class.ts';
import type { ClassCounts } from './error-counts.ts';
import type { PhasesResult } from './phases.ts';
import type { ProbeKind } from './sample.ts';
import type { Verdict } from './verdict.ts';

export const RESULTS_API_VERSION = 'failwatch.io/results/v1';
export const RESULTS_KIND = 'FailoverResults';
/** At most this many outage windows are listed per endpoint and probe kind. */
export const WINDOWS_LIMIT = 50;
/** At most this many coverage gaps are listed per lane. */
export const COVERAGE_GAPS_LIMIT = 20;

/** A moment, relative to T0 in seconds and absolute in UTC. */
export interface TimePoint {
  seconds: number;
  time: string;
}

export interface OutageWindowResult {
  /** End of the last good attempt before the run of bad attempts. */
  start: TimePoint;
  /** End of the first good attempt after it; null while still open. */
  end: TimePoint | null;
  /** The window's length (its upper bound); an open window counts until observation ended. */
  durationSeconds: number;
  /** First bad start to last bad end. */
  lowerBoundSeconds: number;
  upperBoundSeconds: number;
  /** Point estimate of the outage's length (docs/results.md). */
  estimateSeconds: number;
  open: boolean;
  /**
   * The lane's data stopped during this window (a coverage gap followed): it ends at its last
   * bad attempt's end, where the data stops, not at a recovery; the outage may have gone on.
   */
  cutByGap?: boolean;
  badAttempts: number;
  errors: ClassCounts;
}

/** A stretch of a lane without attempts (coverage.ts): missing data, never downtime. */
export interface CoverageGapResult {
  /** Start of the last attempt before the gap (or baseline start). */
  start: TimePoint;
  /** Start of the first attempt after it (or observation end). */
  end: TimePoint;
  seconds: number;
  /** `gap` (between attempts), `start`, `end` or `no-samples`. */
  cause: string;
}

export interface LaneCoverageResult {
  kind: ProbeKind;
  intervalSeconds: number;
  /** Longest normal time between attempt starts: max(5 x interval, 1 s). */
  maxGapSeconds: number;
  attempts: number;
  firstAttempt: TimePoint | null;
  lastAttempt: TimePoint | null;
  gaps: CoverageGapResult[];
  gapsOmitted: number;
  /** Total length of the gaps. */
  gapSeconds: number;
  /** The lane has attempts up to observation end: only then can it show recovery. */
  endCovered: boolean;
}

/** Whether the endpoint's samples cover the run (absent when no interval was known). */
export interface CoverageResult {
  /** Every lane has attempts from baseline start to observation end, no gap, nothing dropped. */
  complete: boolean;
  /** Samples the prober could not store (its store was full). */
  droppedSamples: number;
  lanes: LaneCoverageResult[];
}

export interface ErrorMoment extends TimePoint {
  class: string;
  code?: string;
  message?: string;
}

export interface LatencyResult {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface ProbeKindResult {
  attempts: number;
  okAttempts: number;
  /** Total length of the outage windows that overlap the observation phase. */
  downtimeSeconds: number;
  lowerBoundSeconds: number;
  upperBoundSeconds: number;
  /** Sum of the counted windows' point estimates: the best single figure (docs/results.md). */
  estimateSeconds: number;
  /** False when an outage was still open when observation ended. */
  recovered: boolean;
  /** When the last counted window ended (null without windows or when unrecovered). */
  recoveredAt: TimePoint | null;
  windows: OutageWindowResult[];
  /** Windows not listed because of WINDOWS_LIMIT. */
  windowsOmitted: number;
  errors: ClassCounts;
  /** Per bad class, its earliest attempt with the code and message it failed with. */
  errorExamples: Partial<Record<ErrorClass, ErrorMoment>>;
  firstError: ErrorMoment | null;
  lastError: ErrorMoment | null;
  /** Latency of the `ok` attempts. */
  latency: LatencyResult | null;
}

export interface EndpointResult {
  /** The lane: the endpoint's name, or `<endpoint>@<zone>` when it is probed per zone. */
  name: string;
  /** Per-zone lanes only: the endpoint's name and the zone its prober ran in. */
  endpoint?: string;
  zone?: string;
  role?: string;
  dialect?: string;
  connectionMode?: string;
  /** The client stack that probed: `driver` or `aws-advanced-nodejs-wrapper`. */
  client?: string;
  probes: ProbeKind[];
  write: ProbeKindResult | null;
  read: ProbeKindResult | null;
  /** Attempts per class (the write, read and dns probes; every class except ok). */
  errors: ClassCounts;
  dnsFlipSeconds: number | null;
  dnsFlip: (TimePoint & { from: string[]; to: string[] }) | null;
  roleFlipSeconds: number | null;
  roleFlip: (TimePoint & { fromServer: string; toServer: string }) | null;
  /** First read answered by a different server than before T0. */
  readServerFlip: (TimePoint & { fromServer: string; toServer: string }) | null;
  /**
   * Topology probe only: its lane, whose outage windows are the times no instance said it was
   * the writer, and the first attempt that found a different writer than before T0.
   */
  topology?: ProbeKindResult;
  writerFlip?: (TimePoint & { fromServer: string; toServer: string }) | null;
  /**
   * The outage split into detection, promotion, DNS and recovery by the writer gap a topology
   * probe saw (phases.ts); absent when no lane has a topology probe, null when it cannot be split.
   */
  phases?: PhasesResult | null;
  /** Null when no read-back audit ran. */
  lostWrites: number | null;
  ambiguousWrites: number | null;
  lostWriteKeys: string[];
  ambiguousWriteKeys: string[];
  serverSideGapSeconds: number | null;
  serverSideGap: { from: TimePoint; to: TimePoint } | null;
  /** Coverage of the endpoint's lanes; absent when the probe intervals were not known. */
  coverage?: CoverageResult;
  verdict: Pick<Verdict, 'result' | 'reasons'>;
}

export interface TriggerEventResult extends TimePoint {
  source?: string;
  message: string;
}

export interface TriggerResult {
  type: string;
  action: string | null;
  target: string | null;
  /** spec.target.kind: aurora-cluster, multi-az-db-cluster or rds-instance; null without a target. */
  targetKind: string | null;
  /** T0: the failover API call (for `none`: when observation started). */
  time: string;
  events: TriggerEventResult[];
}

export interface Results {
  apiVersion: typeof RESULTS_API_VERSION;
  kind: typeof RESULTS_KIND;
  experiment: { name: string; namespace?: string; runId: string };
  baseline: { start: TimePoint; end: TimePoint };
  observation: { start: TimePoint; end: TimePoint };
  trigger: TriggerResult;
  endpoints: EndpointResult[];
  verdict: Verdict;
}
