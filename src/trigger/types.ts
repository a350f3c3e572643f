// What the engine needs from a failover trigger. A trigger fires at most once per run; the
// engine records the intent before calling fire(), and after a crash asks happenedSince()
// instead of calling again.

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
  | 'InvalidState'
  | 'Throttled'
  | 'NoCredentials'
  | 'AccessDenied'
  | 'RdsUnreachable'
  | 'RdsError'
  | 'TriggerOutcomeUnknown';

/** Reasons after which the call certainly did not start a failover (RDS rejected it). */
export const REJECTED_CALL_REASONS: readonly TriggerFailureReason[] = [
  'TargetNotFound',
  'TargetNotAvailable',
  'NoReader',
  'TargetInstanceNotMember',
  'InvalidState',
  'Throttled',
  'NoCredentials',
  'AccessDenied',
];

export class TriggerError extends Error {
  readonly reason: TriggerFailureReason;
  constructor(reason: TriggerFailureReason, message: string) {
    super(message);
    this.name = 'TriggerError';
    this.reason = reason;
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
  /** Whether the target reports a failover since `sinceMs` (events or a writer change). */
  happenedSince(sinceMs: number, writerBefore?: string): Promise<boolean>;
  /**
   * Whether the failover fired at `t0Ms` has finished: the target is available again AND
   * shows that it failed over (a new writer, or a failover/reboot event since T0) — an
   * `available` seen before RDS even started must not end the observation.
   */
  settled(t0Ms: number, writerBefore?: string): Promise<boolean>;
  /** Releases connections (the SDK client). */
  close?(): void;
}
