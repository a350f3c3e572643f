// The contract between the controller (which creates prober pods) and `failwatch probe`
// (which runs in them): environment variable names and how they are read. Credentials come
// from a Secret, as env (secretKeyRef; fixed for the life of the container) or as mounted
// files (*_FILE; re-read before every setup attempt, so a fixed Secret recovers in place).
import { readFileSync } from 'node:fs';
import { parseDurationMs } from '../api/duration.ts';
import type { EndpointSpec } from '../api/experiment-spec.ts';
import { LABEL_VALUE_PATTERN } from '../api/kube-patterns.ts';
import { validateExperimentSpec } from '../api/validate-experiment.ts';
import { type EndpointCredentials, iamCredentials } from '../engine/endpoint-config.ts';
import { parseListenAddress } from './http.ts';
import { DEFAULT_MAX_SAMPLES } from './sample-store.ts';

export const PROBE_POD_ENV = {
  /** Identifies the experiment run; stored in every probe row. */
  runId: 'FAILWATCH_RUN_ID',
  /** `namespace/name` of the FailoverExperiment. */
  experiment: 'FAILWATCH_EXPERIMENT',
  /**
   * JSON of the endpoint from the spec (after defaults); its credentials field is ignored,
   * except credentials.iam (IAM database authentication: no username/password variables).
   */
  endpoint: 'FAILWATCH_ENDPOINT',
  /**
   * The zone the pod probes from (spec.probers.zones); its samples and probe rows then name the
   * lane `<endpoint>@<zone>`. Unset: the lane is the endpoint.
   */
  zone: 'FAILWATCH_ZONE',
  username: 'FAILWATCH_DB_USERNAME',
  password: 'FAILWATCH_DB_PASSWORD',
  /** Alternatives to the two above: paths of files holding them (a mounted Secret). */
  usernameFile: 'FAILWATCH_DB_USERNAME_FILE',
  passwordFile: 'FAILWATCH_DB_PASSWORD_FILE',
  /** The run's API token (the controller's Secret, via secretKeyRef): required on every call. */
  apiToken: 'FAILWATCH_API_TOKEN',
  /** Alternative: path of a file holding the token (a mounted Secret). */
  apiTokenFile: 'FAILWATCH_API_TOKEN_FILE',
  /** PEM CA bundle for tls.mode verify-full (a mounted Secret key). */
  caFile: 'FAILWATCH_CA_FILE',
  /** `host:port` to serve on; default `${POD_IP or 0.0.0.0}:${FAILWATCH_LISTEN_PORT or 9090}`. */
  listen: 'FAILWATCH_LISTEN',
  listenPort: 'FAILWATCH_LISTEN_PORT',
  /** Port of the open /metrics server, on the same address (default 9091; 0 = any free port). */
  metricsPort: 'FAILWATCH_METRICS_PORT',
  /** Downward API status.podIP: on a shared-network test node every pod has its own address. */
  podIp: 'POD_IP',
  /** Cap on samples held in memory (default 2,000,000, 50 MB). */
  maxSamples: 'FAILWATCH_MAX_SAMPLES',
  /** First seq of the attempts: set on a replacement prober pod so write keys never repeat. */
  seqBase: 'FAILWATCH_SEQ_BASE',
  /** Time between setup attempts after a failure (duration, default 5s). */
  setupRetry: 'FAILWATCH_SETUP_RETRY',
  /** pino level (default info). */
  logLevel: 'FAILWATCH_LOG_LEVEL',
  /**
   * How many lanes the pod probes (default 1; spec.probers.sharing Zone). Lane 0 reads the
   * variables above; lane i >= 1 reads the endpoint, credential and CA variables with `_<i>`
   * appended (FAILWATCH_ENDPOINT_1, FAILWATCH_DB_PASSWORD_1, FAILWATCH_CA_FILE_1, ...).
   */
  lanes: 'FAILWATCH_LANES',
} as const;

/** Where a pod of several endpoints serves one endpoint's API (GET /status is `<prefix>/status`). */
export function proberLanePrefix(endpoint: string): string {
  return `/endpoints/${endpoint}`;
}

/** Lanes one prober pod may serve at most. */
export const MAX_POD_LANES = 64;

/** The name of a per-lane variable for lane `index` (lane 0: the name itself). */
export function laneEnvName(name: string, index: number): string {
  return index === 0 ? name : `${name}_${index}`;
}

export const PROBE_POD_PORT = 9090;
/** /metrics (and /healthz) without a token, for Prometheus. */
export const PROBE_POD_METRICS_PORT = 9091;
/** A shorter token is a mistake in whatever created the pod. */
const MIN_API_TOKEN_LENGTH = 16;
export const DEFAULT_SETUP_RETRY_MS = 5000;
/** Seqs are stored as 32-bit integers: leave room for a day of 10 ms attempts above the base. */
export const MAX_SEQ_BASE = 0xffffffff - 10_000_000;

/** One endpoint the pod probes. */
export interface ProbePodLane {
  endpoint: EndpointSpec;
  /** Read at every setup attempt (files may change when the Secret is fixed). */
  credentials: () => EndpointCredentials;
  caFile?: string;
}

/** The pod's configuration; its own endpoint fields are lane 0's. */
export interface ProbePodConfig extends ProbePodLane {
  runId: string;
  namespace: string;
  experiment: string;
  /** Every lane the pod probes, lane 0 first (one but with spec.probers.sharing Zone). */
  lanes: ProbePodLane[];
  /** The zone the pod probes from, when the experiment probes per zone. */
  zone?: string;
  /** The bearer token every API call must carry. */
  apiToken: string;
  listen: { host: string; port: number };
  metricsPort: number;
  maxSamples: number;
  seqBase: number;
  setupRetryMs: number;
  logLevel: string;
}

/** The pod's environment is wrong: a bug in whatever created the pod, not a database problem. */
export class ProbePodConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`failwatch probe: bad environment:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ProbePodConfigError';
    this.problems = problems;
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads and checks the whole environment; every problem is listed at once. */
export function parseProbePodEnv(env: NodeJS.ProcessEnv): ProbePodConfig {
  const E = PROBE_POD_ENV;
  const problems: string[] = [];
  const required = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') problems.push(`${name} is required`);
    return value ?? '';
  };

  const runId = required(E.runId);
  const experimentRef = required(E.experiment);
  const [namespace = '', experiment = ''] = experimentRef.split('/');
  if (experimentRef && !/^[^/\s]+\/[^/\s]+$/.test(experimentRef))
    problems.push(`${E.experiment} must be namespace/name (got \`${experimentRef}\`)`);

  let laneCount = env[E.lanes] ? Number(env[E.lanes]) : 1;
  if (!(Number.isInteger(laneCount) && laneCount >= 1 && laneCount <= MAX_POD_LANES)) {
    problems.push(`${E.lanes} must be an integer from 1 to ${MAX_POD_LANES} (got \`${env[E.lanes]}\`)`);
    laneCount = 1;
  }
  const lanes: (ProbePodLane | undefined)[] = [];
  for (let i = 0; i < laneCount; i++) lanes.push(laneOf(env, i, problems));
  const names = lanes.flatMap((l) => (l ? [l.endpoint.name] : []));
  for (const [i, name] of names.entries())
    if (names.indexOf(name) !== i) problems.push(`endpoint ${name} is given twice`);
  const zone = env[E.zone] || undefined;
  if (zone !== undefined && !(zone.length <= 63 && new RegExp(LABEL_VALUE_PATTERN).test(zone)))
    problems.push(
      `${E.zone} must be a zone name, a Kubernetes label value such as us-east-1a (got \`${zone}\`)`,
    );

  const apiToken = apiTokenOf(env, problems);

  let listen = { host: env[E.podIp] || '0.0.0.0', port: PROBE_POD_PORT };
  const listenText = env[E.listen];
  if (listenText) {
    try {
      listen = parseListenAddress(listenText);
    } catch (err) {
      problems.push(`${E.listen}: ${(err as Error).message}`);
    }
  } else if (env[E.listenPort]) {
    listen.port = Number(env[E.listenPort]);
    if (!(Number.isInteger(listen.port) && listen.port > 0 && listen.port <= 65535))
      problems.push(`${E.listenPort} must be a TCP port (got \`${env[E.listenPort]}\`)`);
  }

  const metricsPort = env[E.metricsPort] ? Number(env[E.metricsPort]) : PROBE_POD_METRICS_PORT;
  if (!(Number.isInteger(metricsPort) && metricsPort >= 0 && metricsPort <= 65535))
    problems.push(`${E.metricsPort} must be a TCP port (got \`${env[E.metricsPort]}\`)`);
  else if (metricsPort !== 0 && metricsPort === listen.port)
    problems.push(`${E.metricsPort} must differ from the API port ${listen.port}`);

  const maxSamples = env[E.maxSamples] ? Number(env[E.maxSamples]) : DEFAULT_MAX_SAMPLES;
  if (!(Number.isInteger(maxSamples) && maxSamples > 0))
    problems.push(`${E.maxSamples} must be a positive integer (got \`${env[E.maxSamples]}\`)`);

  const seqBase = env[E.seqBase] ? Number(env[E.seqBase]) : 0;
  if (!(Number.isInteger(seqBase) && seqBase >= 0 && seqBase <= MAX_SEQ_BASE))
    problems.push(`${E.seqBase} must be an integer from 0 to ${MAX_SEQ_BASE} (got \`${env[E.seqBase]}\`)`);

  let setupRetryMs = DEFAULT_SETUP_RETRY_MS;
  const retryText = env[E.setupRetry];
  if (retryText) {
    try {
      setupRetryMs = parseDurationMs(retryText);
    } catch {
      problems.push(`${E.setupRetry} must be a duration like 5s (got \`${retryText}\`)`);
    }
  }

  const logLevel = env[E.logLevel] || 'info';
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`${E.logLevel} must be one of ${LOG_LEVELS.join(', ')} (got \`${logLevel}\`)`);

  const first = lanes[0];
  if (problems.length > 0 || !first || lanes.some((l) => !l)) throw new ProbePodConfigError(problems);
  const config: ProbePodConfig = {
    ...first,
    lanes: lanes as ProbePodLane[],
    runId,
    namespace,
    experiment,
    apiToken,
    listen,
    metricsPort,
    maxSamples,
    seqBase,
    setupRetryMs,
    logLevel,
  };
  if (zone !== undefined) config.zone = zone;
  return config;
}

/** Lane `index`: its endpoint, credentials and CA file, from the variables with its suffix. */
function laneOf(env: NodeJS.ProcessEnv, index: number, problems: string[]): ProbePodLane | undefined {
  const E = PROBE_POD_ENV;
  const name = (base: string) => laneEnvName(base, index);
  const text = env[name(E.endpoint)];
  if (text === undefined || text === '') {
    problems.push(`${name(E.endpoint)} is required`);
    return undefined;
  }
  const endpoint = parseEndpoint(text, name(E.endpoint), problems);
  const credentials = endpoint?.credentials.iam
    ? iamCredentialSource(endpoint, env, problems)
    : credentialSource(env, index, problems);
  const caFile = env[name(E.caFile)];
  return endpoint && { endpoint, credentials, ...(caFile ? { caFile } : {}) };
}

function parseEndpoint(text: string, variable: string, problems: string[]): EndpointSpec | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    problems.push(`${variable} is not JSON: ${(err as Error).message}`);
    return undefined;
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    problems.push(`${variable} must be a JSON object (an endpoint of the spec)`);
    return undefined;
  }
  // The pod's credentials come from its own environment; the spec's are only where they were.
  // IAM needs no Secret: the user name travels in the spec, AWS credentials come from the pod.
  const iam = (json as { credentials?: { iam?: unknown } }).credentials?.iam;
  const credentials = iam !== undefined ? { iam } : { secretRef: { name: 'from-environment' } };
  const endpoint = { ...json, credentials };
  const result = validateExperimentSpec({ trigger: { type: 'none' }, endpoints: [endpoint] }, '');
  if (!result.ok) {
    for (const e of result.errors)
      problems.push(`${variable}${e.path.replace(/^endpoints\[0\]/, '')}: ${e.message}`);
    return undefined;
  }
  return result.value.endpoints[0];
}

function apiTokenOf(env: NodeJS.ProcessEnv, problems: string[]): string {
  const E = PROBE_POD_ENV;
  let token = env[E.apiToken];
  const file = env[E.apiTokenFile];
  if (file) {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      problems.push(`${E.apiTokenFile}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      return '';
    }
  }
  if (token === undefined || token === '') {
    problems.push(
      `${E.apiToken} (or ${E.apiTokenFile}) is required: the API answers only bearers of the run token`,
    );
    return '';
  }
  if (token.length < MIN_API_TOKEN_LENGTH || !/^[!-~]+$/.test(token))
    problems.push(
      `${E.apiToken} must be at least ${MIN_API_TOKEN_LENGTH} printable characters without spaces`,
    );
  return token;
}

function credentialSource(
  env: NodeJS.ProcessEnv,
  index: number,
  problems: string[],
): () => EndpointCredentials {
  const E = PROBE_POD_ENV;
  const one = (valueBase: string, fileBase: string): (() => string) => {
    const valueName = laneEnvName(valueBase, index);
    const fileName = laneEnvName(fileBase, index);
    const file = env[fileName];
    if (file) return () => readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    const value = env[valueName];
    if (value === undefined) problems.push(`${valueName} (or ${fileName}) is required`);
    return () => value ?? '';
  };
  const user = one(E.username, E.usernameFile);
  const password = one(E.password, E.passwordFile);
  return () => ({ user: user(), password: password() });
}

/** IAM: no password Secret; the region from the spec (the controller resolves it) or AWS_REGION. */
function iamCredentialSource(
  endpoint: EndpointSpec,
  env: NodeJS.ProcessEnv,
  problems: string[],
): () => EndpointCredentials {
  try {
    const credentials = iamCredentials(endpoint, undefined, env)!;
    return () => credentials;
  } catch (err) {
    problems.push((err as Error).message);
    return () => ({ user: '', password: '' });
  }
}
