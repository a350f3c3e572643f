// Derived values of a (defaulted) spec that more than one module needs.
import { parseDurationMs } from './duration.ts';
import type { Dialect, EndpointSpec, FailoverExperimentSpec, SloSpec } from './experiment-spec.ts';

export function isPostgresDialect(dialect: Dialect): boolean {
  return dialect === 'aurora-postgresql' || dialect === 'postgresql';
}

/** The endpoint's port, or the dialect's default (5432 PostgreSQL, 3306 MySQL). */
export function endpointPort(endpoint: EndpointSpec): number {
  return endpoint.port ?? (isPostgresDialect(endpoint.dialect) ? 5432 : 3306);
}

/** The failover target's identifier (cluster or instance), or null without a target. */
export function targetIdentifier(spec: FailoverExperimentSpec): string | null {
  const target = spec.target;
  if (!target) return null;
  return (target.kind === 'rds-instance' ? target.instanceIdentifier : target.clusterIdentifier) ?? null;
}

/** SLO limits in seconds, the shape analysis/verdict.ts takes. */
export interface SloSeconds {
  maxWriteDowntimeSeconds?: number;
  maxReadDowntimeSeconds?: number;
  maxLostWrites?: number;
}

export function sloSeconds(slo: SloSpec | undefined): SloSeconds {
  const result: SloSeconds = {};
  if (slo?.maxWriteDowntime !== undefined)
    result.maxWriteDowntimeSeconds = parseDurationMs(slo.maxWriteDowntime) / 1000;
  if (slo?.maxReadDowntime !== undefined)
    result.maxReadDowntimeSeconds = parseDurationMs(slo.maxReadDowntime) / 1000;
  if (slo?.maxLostWrites !== undefined) result.maxLostWrites = slo.maxLostWrites;
  return result;
}

/** The endpoint's SLO: spec.slo, overridden field by field by the endpoint's own slo. */
export function endpointSloSeconds(spec: FailoverExperimentSpec, endpoint: EndpointSpec): SloSeconds {
  return { ...sloSeconds(spec.slo), ...sloSeconds(endpoint.slo) };
}
