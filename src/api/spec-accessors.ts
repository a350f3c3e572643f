// Derived values of a (defaulted) spec that more than one module needs.
import { parseDurationMs } from './duration.ts';
import {
  type Dialect,
  type EndpointSpec,
  type FailoverExperimentSpec,
  isGlobalAction,
  isInstanceRestartAction,
  type SloSpec,
  type TriggerAction,
} from './experiment-spec.ts';

export function isPostgresDialect(dialect: Dialect): boolean {
  return dialect === 'aurora-postgresql' || dialect === 'postgresql';
}

/** Time between a lane's attempt starts: dns.interval, topology.interval, else interval. */
export function laneIntervalMsOf(
  endpoint: Pick<EndpointSpec, 'interval' | 'dns' | 'topology'>,
  kind: EndpointSpec['probes'][number],
): number {
  if (kind === 'dns') return parseDurationMs(endpoint.dns.interval);
  if (kind === 'topology') return parseDurationMs(endpoint.topology.interval);
  return parseDurationMs(endpoint.interval);
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

/**
 * What the trigger does: `failover` (a new writer), `instance-restart` (reboot-db-instance,
 * modify-db-instance-class: one instance restarts in place) or `switchover`
 * (switchover-blue-green-deployment: the green environment takes over blue's names) or `global`
 * (switchover-global-cluster, failover-global-cluster: a secondary cluster becomes the primary).
 */
export function triggerOperation(
  spec: FailoverExperimentSpec,
): 'failover' | 'instance-restart' | 'switchover' | 'global' {
  if (spec.trigger.type !== 'aws-rds') return 'failover';
  if (isInstanceRestartAction(spec.trigger.action)) return 'instance-restart';
  if (isGlobalAction(spec.trigger.action)) return 'global';
  return spec.trigger.action === 'switchover-blue-green-deployment' ? 'switchover' : 'failover';
}

/**
 * The operation a run calls: the trigger action (the schema's default when absent), `none` for
 * an observe-only run. Recorded in status.trigger.operation and the metrics' `operation` label.
 */
export function triggerAction(spec: FailoverExperimentSpec): TriggerAction | 'none' {
  if (spec.trigger.type !== 'aws-rds') return 'none';
  return spec.trigger.action ?? 'failover-db-cluster';
}

/** triggerAction as a metric label value; '' when the spec is not known. */
export function operationLabel(spec: FailoverExperimentSpec | undefined): string {
  return spec?.trigger ? triggerAction(spec) : '';
}

/**
 * The operation in Event and condition reasons: `Failover` (failover-db-cluster,
 * reboot-db-instance-force-failover, or no trigger), `Reboot` (reboot-db-instance),
 * `InstanceClassChange` (modify-db-instance-class), `Switchover`
 * (switchover-blue-green-deployment), `GlobalSwitchover` / `GlobalFailover` (the Global Database
 * actions). Reasons are `<operation>Called` and `<operation>Triggered`.
 */
export type OperationReasonName =
  | 'Failover'
  | 'Reboot'
  | 'InstanceClassChange'
  | 'Switchover'
  | 'GlobalSwitchover'
  | 'GlobalFailover';
export function operationReasonName(action: TriggerAction | 'none'): OperationReasonName {
  if (action === 'switchover-global-cluster') return 'GlobalSwitchover';
  if (action === 'failover-global-cluster') return 'GlobalFailover';
  if (action === 'reboot-db-instance') return 'Reboot';
  if (action === 'modify-db-instance-class') return 'InstanceClassChange';
  if (action === 'switchover-blue-green-deployment') return 'Switchover';
  return 'Failover';
}

/** The words for what the trigger does to the target, for progress messages. */
export function triggerVerb(spec: FailoverExperimentSpec): string {
  if (spec.trigger.type !== 'aws-rds') return 'failing over';
  if (spec.trigger.action === 'reboot-db-instance') return 'rebooting';
  if (spec.trigger.action === 'modify-db-instance-class')
    return `changing to ${spec.trigger.instanceClass} the class of`;
  if (spec.trigger.action === 'switchover-blue-green-deployment') return 'switching over';
  if (spec.trigger.action === 'switchover-global-cluster') return 'switching over';
  if (spec.trigger.action === 'failover-global-cluster')
    return spec.trigger.allowDataLoss ? 'failing over (data loss allowed)' : 'failing over';
  return 'failing over';
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
