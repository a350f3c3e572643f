// Maps an endpoint of the experiment spec onto what the probe module needs. Credentials
// come from the caller (environment for `failwatch run`, a Secret in Kubernetes) and never
// travel further than the driver.
import { parseDurationMs } from '../api/duration.ts';
import { type EndpointSpec, WRAPPER_STACK } from '../api/experiment-spec.ts';
import { endpointPort } from '../api/spec-accessors.ts';
import type { ProbeEndpointConfig } from '../probe/types.ts';

export interface EndpointCredentials {
  user: string;
  /** Empty with IAM database authentication. */
  password: string;
  /** IAM database authentication: tokens signed for this region replace the password. */
  iam?: { region: string };
}

export function probeConfigFor(
  endpoint: EndpointSpec,
  credentials: EndpointCredentials,
  caFile?: string,
): ProbeEndpointConfig {
  return {
    name: endpoint.name,
    dialect: endpoint.dialect,
    host: endpoint.host,
    port: endpointPort(endpoint),
    database: endpoint.database,
    user: credentials.user,
    password: credentials.password,
    ...(credentials.iam ? { iam: { region: credentials.iam.region } } : {}),
    connectionMode: endpoint.connectionMode,
    intervalMs: parseDurationMs(endpoint.interval),
    connectTimeoutMs: parseDurationMs(endpoint.connectTimeout),
    queryTimeoutMs: parseDurationMs(endpoint.queryTimeout),
    slowThresholdMs: parseDurationMs(endpoint.slowThreshold),
    tls: { mode: endpoint.tls.mode, caFile: caFile ?? endpoint.tls.caFile },
    dnsServer: endpoint.dns.server,
    dnsIntervalMs: parseDurationMs(endpoint.dns.interval),
    kinds: [...endpoint.probes],
    ...wrapperSettings(endpoint),
    ...(endpoint.probes.includes('topology')
      ? {
          topology: {
            intervalMs: parseDurationMs(endpoint.topology.interval),
            ...(endpoint.topology.instanceHostPattern
              ? { instanceHostPattern: endpoint.topology.instanceHostPattern }
              : {}),
          },
        }
      : {}),
  };
}

/** failwatch's default for the wrapper's failoverTimeoutMs (the wrapper's own: 300 s). */
export const WRAPPER_FAILOVER_TIMEOUT_MS = 30_000;

function wrapperSettings(endpoint: EndpointSpec): Pick<ProbeEndpointConfig, 'wrapper'> {
  const c = endpoint.client;
  if (c?.stack !== WRAPPER_STACK) return {};
  return {
    wrapper: {
      ...(c.plugins ? { plugins: [...c.plugins] } : {}),
      ...(c.clusterInstanceHostPattern ? { clusterInstanceHostPattern: c.clusterInstanceHostPattern } : {}),
      failoverTimeoutMs: c.failoverTimeout ? parseDurationMs(c.failoverTimeout) : WRAPPER_FAILOVER_TIMEOUT_MS,
    },
  };
}

/**
 * The region IAM tokens are signed for: credentials.iam.region, else the target's region, else
 * the AWS SDK's (AWS_REGION / AWS_DEFAULT_REGION).
 */
export function iamRegion(
  endpoint: EndpointSpec,
  targetRegion: string | undefined,
  env: NodeJS.ProcessEnv,
): string {
  const region =
    endpoint.credentials.iam?.region ?? targetRegion ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION);
  if (!region)
    throw new EngineConfigError(
      'CredentialsMissing',
      `endpoint ${endpoint.name}: IAM database authentication needs a region: set credentials.iam.region or target.region (or AWS_REGION)`,
    );
  return region;
}

/** IAM database authentication: the user from the spec, tokens instead of a password. */
export function iamCredentials(
  endpoint: EndpointSpec,
  targetRegion: string | undefined,
  env: NodeJS.ProcessEnv,
): EndpointCredentials | undefined {
  const iam = endpoint.credentials.iam;
  if (!iam) return undefined;
  return { user: iam.username, password: '', iam: { region: iamRegion(endpoint, targetRegion, env) } };
}

/**
 * `failwatch run`: username from the spec, password from the named environment variable; or
 * IAM tokens (AWS credentials from the SDK's default chain).
 */
export function credentialsFromEnv(
  endpoint: EndpointSpec,
  env: NodeJS.ProcessEnv,
  targetRegion?: string,
): EndpointCredentials {
  const c = endpoint.credentials;
  const iam = iamCredentials(endpoint, targetRegion, env);
  if (iam) return iam;
  if (!c.username)
    throw new EngineConfigError(
      'CredentialsMissing',
      `endpoint ${endpoint.name}: credentials.secretRef works only in Kubernetes; for failwatch run set credentials.username and credentials.passwordEnv, or credentials.iam`,
    );
  const password = c.passwordEnv ? env[c.passwordEnv] : '';
  if (password === undefined)
    throw new EngineConfigError(
      'CredentialsMissing',
      `endpoint ${endpoint.name}: environment variable ${c.passwordEnv} (credentials.passwordEnv) is not set`,
    );
  return { user: c.username, password };
}

export class EngineConfigError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.name = 'EngineConfigError';
    this.reason = reason;
  }
}
