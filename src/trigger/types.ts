// What the engine needs from a failover trigger. A trigger fires at most once per run; the
// trigger protocol (engine/trigger-protocol.ts) records the intent before calling fire() and
// finds out from state() and events() what happened, never calling again.

/** A provider event (RDS DescribeEvents) on the run's time axis. */
export interface TriggerEvent {
  sourceIdentifier: string;
  sourceType: string;
  message: string;
  categories: string[];
  /** Epoch ms (UTC). */
  atMs: number;
}

export interface TargetState {
  /** Provider status, e.g. RDS `available`, `failing-over`. */
  status: string;
  /** Instance id of the writer, when the provider knows one. */
  writerId?: string;
  members: { id: string; isWriter: boolean }[];
  /** The target's ARN (DBClusterArn / DBInstanceArn): its account, for the allowlist. */
  arn?: string;
  /** The cluster's Engine as RDS reports it (aurora-postgresql, postgres, ...). */
  engine?: string;
  /** The instance a reboot or class change acts on (reboot-db-instance, modify-db-instance-class). */
  instance?: InstanceState;
  /** switchover-blue-green-deployment: the deployment as DescribeBlueGreenDeployments shows it. */
  blueGreen?: BlueGreenState;
  /** The Global Database actions: the global cluster as DescribeGlobalClusters shows it. */
  globalCluster?: GlobalClusterState;
}

/** An Aurora Global Database as DescribeGlobalClusters shows it. */
export interface GlobalClusterState {
  id: string;
  /** `available`, `switching-over`, `failing-over`, ... */
  status: string;
  /** DBClusterArn of the member that is the writer (the primary). */
  writerArn?: string;
  /** DBClusterArns of every member. */
  members: string[];
  /** A switchover or failover in progress (FailoverState.Status). */
  failoverStatus?: string;
}

/** A Blue/Green deployment as DescribeBlueGreenDeployments shows it. */
export interface BlueGreenState {
  id: string;
  /** PROVISIONING, AVAILABLE, SWITCHOVER_IN_PROGRESS, SWITCHOVER_COMPLETED, SWITCHOVER_FAILED, ... */
  status: string;
  statusDetails?: string;
  /** ARN of the blue environment's database (before a switchover: production). */
  source?: string;
  /** ARN of the green environment's database. */
  target?: string;
}

/** One DB instance as DescribeDBInstances shows it. */
export interface InstanceState {
  id: string;
  /** DBInstanceStatus: `available`, `rebooting`, `modifying`, ... */
  status: string;
  /** DBInstanceClass, e.g. `db.r6g.large`. */
  instanceClass?: string;
  /** MultiAZ: the instance has a standby (a forced-failover reboot needs one). */
  multiAz?: boolean;
}

export interface FiredTrigger {
  /** T0: the wall-clock time the API call was made (epoch ms). */
  t0Ms: number;
  /** What was called, e.g. `FailoverDBCluster lab-pg (target lab-pg-2)`. */
  action: string;
  /** Writer before the call, to detect the writer change later. */
  writerBefore?: string;
}

/** Why a trigger step failed, as a reason a condition can carry. */
export type TriggerFailureReason =
  | 'TargetNotFound'
  | 'TargetNotAvailable'
  | 'NoReader'
  | 'TargetInstanceNotMember'
  /** modify-db-instance-class asks for the class the instance already has: nothing would restart. */
  | 'InstanceClassUnchanged'
  /** target.kind names another kind of cluster than RDS describes (Aurora vs Multi-AZ DB cluster). */
  | 'TargetKindMismatch'
  /** The Blue/Green deployment's blue environment (Source) is not the experiment's target. */
  | 'BlueGreenSourceMismatch'
  /** The Global Database's primary is not the target, or targetDbClusterIdentifier not its secondary. */
  | 'GlobalClusterMismatch'
  | 'InvalidState'
  | 'Throttled'
  | 'NoCredentials'
  | 'AccessDenied'
  | 'RdsUnreachable'
  | 'RdsServerError'
  | 'RdsError'
  | 'TriggerOutcomeUnknown';

/** Errors a retry with backoff may mend: throttling, an unreachable endpoint, an RDS 5xx. */
export const TRANSIENT_REASONS: readonly TriggerFailureReason[] = [
  'Throttled',
  'RdsUnreachable',
  'RdsServerError',
];

export interface TriggerErrorDetails {
  /**
   * Whether a mutating call with this error may have reached the provider and been carried
   * out: `no` when RDS answered with a refusal (a 4xx error, throttling included) or the
   * connection was never made; `maybe` after a timeout, a dropped connection or a 5xx.
   */
  mayHaveHappened?: 'no' | 'maybe';
}

export class TriggerError extends Error {
  readonly reason: TriggerFailureReason;
  readonly mayHaveHappened: 'no' | 'maybe';
  constructor(reason: TriggerFailureReason, message: string, details: TriggerErrorDetails = {}) {
    super(message);
    this.name = 'TriggerError';
    this.reason = reason;
    this.mayHaveHappened = details.mayHaveHappened ?? 'no';
  }

  /** A retry with backoff may succeed (throttling, unreachable, 5xx). */
  get transient(): boolean {
    return TRANSIENT_REASONS.includes(this.reason);
  }
}

export interface FailoverTrigger {
  /** Human-readable name of what will be failed over. */
  readonly description: string;
  /** Checks the target is ready for a failover; throws TriggerError otherwise. */
  preflight(): Promise<TargetState | undefined>;
  /** Performs the failover call. Never called twice for one run. */
  fire(writerBefore?: string): Promise<FiredTrigger>;
  /** Current state of the target (status, writer), or undefined for observe-only triggers. */
  state(): Promise<TargetState | undefined>;
  /** Provider events between two instants (epoch ms), for the timeline. */
  events(fromMs: number, toMs: number): Promise<TriggerEvent[]>;
  /** Releases connections (the SDK client). */
  close?(): void;
}
