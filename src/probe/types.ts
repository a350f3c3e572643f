// The probe module's own types: what an endpoint to probe looks like (until src/api defines
// the experiment spec, which the engine maps onto this), and the small interfaces the
// drivers implement.
import type { ErrorClass } from '../analysis/error-class.ts';
import type { ProbeKind, Sample, ServerIdentity } from '../analysis/sample.ts';
import type { CommittedRow } from '../analysis/server-side-gap.ts';
import type { IamTokenCache } from './iam-auth.ts';

export const DIALECTS = ['aurora-postgresql', 'postgresql', 'aurora-mysql', 'mysql'] as const;
export type Dialect = (typeof DIALECTS)[number];

/** `fresh`: a new connection per attempt, closed after it; `pooled`: a few persistent connections. */
export type ConnectionMode = 'fresh' | 'pooled';

export type TlsMode = 'disable' | 'require' | 'verify-full';

export interface TlsSettings {
  mode: TlsMode;
  /** PEM bundle of trusted CAs; required for `verify-full`. */
  caFile?: string;
}

export interface IamSettings {
  /** Region the tokens are signed for. */
  region: string;
  /** Where tokens come from; default the process-wide cache on the SDK's default credential chain. */
  tokens?: IamTokenCache;
}

/** One endpoint to probe, with everything the probes need and nothing else. */
export interface ProbeEndpointConfig {
  /** Endpoint name from the experiment spec; goes into every sample and probe row. */
  name: string;
  dialect: Dialect;
  host: string;
  port: number;
  database: string;
  user: string;
  /** Ignored with `iam`. */
  password: string;
  /** IAM database authentication: each new connection logs in with an RDS auth token. */
  iam?: IamSettings;
  connectionMode: ConnectionMode;
  /** Fixed-rate interval between attempt starts (10 ms .. ). */
  intervalMs: number;
  /** Deadline for DNS + TCP + TLS + authentication of one connection. */
  connectTimeoutMs: number;
  /** Deadline for the probe statement once connected. */
  queryTimeoutMs: number;
  /**
   * A success slower than this is class `slow`: connect + query in fresh mode; in pooled mode
   * the statement on the pooled connection (a reconnect counts only beyond 250 ms).
   */
  slowThresholdMs: number;
  tls: TlsSettings;
  /** `ip:port` of a DNS server to resolve `host` with (each attempt / new connection). */
  dnsServer?: string;
  kinds: ProbeKind[];
  /** DNS probe interval; defaults to `intervalMs`. */
  dnsIntervalMs?: number;
  /** Pooled mode: idle connections kept (default 4). */
  poolSize?: number;
  /** Cap on concurrent attempts per probe kind (default ceil(attempt deadline / interval) + 1). */
  maxInFlight?: number;
  /** Probe through the AWS Advanced NodeJS Wrapper instead of the plain driver. */
  wrapper?: WrapperSettings;
  /** The topology probe's settings (kind `topology`). */
  topology?: TopologySettings;
}

export interface TopologySettings {
  intervalMs: number;
  /** `?.abc123.us-east-1.rds.amazonaws.com[:port]`; default derived from `host` (RDS names). */
  instanceHostPattern?: string;
}

/** The AWS Advanced NodeJS Wrapper as an endpoint's client (Aurora PostgreSQL, pooled). */
export interface WrapperSettings {
  /** Plugin codes; default the wrapper's own default list. */
  plugins?: string[];
  /** e.g. `?.abc123.us-east-1.rds.amazonaws.com`; the wrapper derives it from RDS names itself. */
  clusterInstanceHostPattern?: string;
  /** The wrapper's failoverTimeoutMs; an attempt may last this much longer than its own deadlines. */
  failoverTimeoutMs: number;
}

/** An error reduced to the taxonomy, raw code and message kept. */
export interface ClassifiedError {
  class: ErrorClass;
  code?: string;
  message: string;
}

/** What one database attempt produced, before the prober applies the slow threshold. */
export interface AttemptOutcome {
  /** `ok` on success; never `slow` (timing is the prober's business). */
  class: ErrorClass;
  code?: string;
  message?: string;
  server?: ServerIdentity;
  /** The address the client connected to (after DNS resolution), when known. */
  connectAddr?: string;
  dnsAnswer?: string[];
  /**
   * Pooled mode: ms this attempt spent opening a new connection because the pool had none
   * (after a broken connection). Up to RECONNECT_ALLOWANCE_MS of it is not held against the
   * slow threshold, which is about the statement (see Prober).
   */
  reconnectMs?: number;
}

export type DbProbeKind = Exclude<ProbeKind, 'dns' | 'topology'>;

export interface AttemptContext {
  seq: number;
  /** Wall-clock start of the attempt, epoch ms; stored as the row's client_ts. */
  clientMs: number;
}

/** One endpoint's database probes behind one interface; `attempt` never rejects. */
export interface ProbeDriver {
  /** Creates the probe table when missing (write kind) and detects dialect features. */
  setup(withWriteTable: boolean): Promise<void>;
  attempt(kind: DbProbeKind, ctx: AttemptContext): Promise<AttemptOutcome>;
  /** The cluster's instance identifiers from its topology (SQL drivers; topology probe). */
  instances?(): Promise<string[]>;
  /** The run's rows for `endpoint`, read from `from` (default: the endpoint itself). */
  readBack(endpoint: string, from?: { host: string; port: number }): Promise<CommittedRow[]>;
  close(): Promise<void>;
}

/** A sample as the probe emits it: the analysis Sample plus where the client connected. */
export interface ProbeSample extends Sample {
  connectAddr?: string;
}

export type SampleSink = (sample: ProbeSample) => void;
