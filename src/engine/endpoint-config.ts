// Maps an endpoint of the experiment spec onto what the probe module needs. Credentials
// come from the caller (environment for `failwatch run`, a Secret in Kubernetes) and never
// travel further than the driver.
import { parseDurationMs } from '../api/duration.ts';
import type { EndpointSpec } from '../api/experiment-spec.ts';
import { endpointPort } from '../api/spec-accessors.ts';
import type { ProbeEndpointConfig } from '../probe/types.ts';

export interface EndpointCredentials {
  user: string;
  password: string;
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
    connectionMode: endpoint.connectionMode,
    intervalMs: parseDurationMs(endpoint.interval),
    connectTimeoutMs: parseDurationMs(endpoint.connectTimeout),
    queryTimeoutMs: parseDurationMs(endpoint.queryTimeout),
    slowThresholdMs: parseDurationMs(endpoint.slowThreshold),
    tls: { mode: endpoint.tls.mode, caFile: caFile ?? endpoint.tls.caFile },
    dnsServer: endpoint.dns.server,
    dnsIntervalMs: parseDurationMs(endpoint.dns.interval),
    kinds: [...endpoint.probes],
  };
}

/** `failwatch run`: username from the spec, password from the named environment variable. */
export function credentialsFromEnv(endpoint: EndpointSpec, env: NodeJS.ProcessEnv): EndpointCredentials {
  const c = endpoint.credentials;
  if (!c.username)
    throw new EngineConfigError(
      'CredentialsMissing',
      `endpoint ${endpoint.name}: credentials.secretRef works only in Kubernetes; for failwatch run set credentials.username and credentials.passwordEnv`,
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
