// Every condition type and reason the FailoverExperiment controller writes, in one place.
// docs/troubleshooting.md documents each of them; test/unit/controller-conditions-doc.test.ts
// fails when one is missing there, so a new reason cannot ship undocumented.
import type { ExperimentCondition, FailoverExperimentStatus } from '../api/experiment-status.ts';
import type { TriggerFailureReason } from '../trigger/types.ts';

export const CONDITION_TYPES = [
  'Running',
  'Blocked',
  'ProbersReady',
  'Triggered',
  'Passed',
  'Failed',
] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

/** `Blocked=True`: the run waits and is retried. `LockHeld` is `Blocked=False`. */
export const BLOCKED_REASONS = ['SecretNotFound', 'SecretKeyNotFound', 'TargetLocked', 'LockHeld'] as const;

/** `Running=True` while the run goes on (one per phase), `Running=False Completed` at the end. */
export const PROGRESS_REASONS = [
  'Preflight',
  'Baseline',
  'Triggering',
  'Observing',
  'Analyzing',
  'Completed',
  'DryRun',
] as const;

/**
 * `ProbersReady=True Probing`, `Triggered=True FailoverCalled` (`RebootCalled`,
 * `InstanceClassChangeCalled`, `SwitchoverCalled`, `GlobalSwitchoverCalled`, `GlobalFailoverCalled`:
 * the operation, spec-accessors'
 * operationReasonName), `Passed=True|False`.
 */
export const MILESTONE_REASONS = [
  'Probing',
  'FailoverCalled',
  'RebootCalled',
  'InstanceClassChangeCalled',
  'SwitchoverCalled',
  'GlobalSwitchoverCalled',
  'GlobalFailoverCalled',
  'CallOutcomeUnknown',
  'WithinSLO',
  'SLOViolated',
  'Inconclusive',
] as const;

/** What engine/run-experiment.ts's setupReason() maps a prober setup error class to. */
export const SETUP_FAILURE_REASONS = [
  'AuthenticationFailed',
  'TlsFailed',
  'EndpointNotResolvable',
  'EndpointUnreachable',
  'EndpointReadOnly',
  'ProbeSetupFailed',
] as const;
export type SetupFailureReason = (typeof SETUP_FAILURE_REASONS)[number];

const TRIGGER_FAILURES: Record<TriggerFailureReason, true> = {
  TargetNotFound: true,
  TargetNotAvailable: true,
  NoReader: true,
  TargetInstanceNotMember: true,
  InstanceClassUnchanged: true,
  TargetKindMismatch: true,
  BlueGreenSourceMismatch: true,
  GlobalClusterMismatch: true,
  InvalidState: true,
  Throttled: true,
  NoCredentials: true,
  AccessDenied: true,
  RdsUnreachable: true,
  RdsError: true,
  RdsServerError: true,
  TriggerOutcomeUnknown: true,
};
export const TRIGGER_FAILURE_REASONS = Object.keys(TRIGGER_FAILURES) as TriggerFailureReason[];

/** `Failed=True` (and `Running=False`) with the phase Failed. */
export const RUN_FAILURE_REASONS = [
  'InvalidSpec',
  'SpecChanged',
  'TargetNotAllowed',
  'RdsEndpointNotAllowed',
  'RunTokenConflict',
  'CredentialsMissing',
  'SecretKeyNotFound',
  'ProbersNotReady',
  'ProberFailed',
  'BaselineUnhealthy',
] as const;

export type FailureReason = (typeof RUN_FAILURE_REASONS)[number] | SetupFailureReason | TriggerFailureReason;

export type ConditionReason =
  | (typeof BLOCKED_REASONS)[number]
  | (typeof PROGRESS_REASONS)[number]
  | (typeof MILESTONE_REASONS)[number]
  | FailureReason;

export const CONDITION_REASONS: readonly ConditionReason[] = [
  ...new Set<ConditionReason>([
    ...BLOCKED_REASONS,
    ...PROGRESS_REASONS,
    ...MILESTONE_REASONS,
    ...RUN_FAILURE_REASONS,
    ...SETUP_FAILURE_REASONS,
    ...TRIGGER_FAILURE_REASONS,
  ]),
];

/** Conditions that say nothing true once a run has ended (the lock is released, probers stop). */
export const CLEARED_WHEN_ENDED: readonly ConditionType[] = ['Blocked', 'ProbersReady'];

/** `endpoint \`name\`: message`, without doubling a prefix the message already has. */
export function endpointMessage(endpoint: string, message: string): string {
  const prefix = `endpoint \`${endpoint}\`: `;
  return message.startsWith(prefix) ? message : `${prefix}${message}`;
}

/** Sets a metav1.Condition, keeping lastTransitionTime when the status did not change. */
export function setCondition(
  status: FailoverExperimentStatus,
  obj: { metadata: { generation?: number } },
  c: Omit<ExperimentCondition, 'lastTransitionTime' | 'observedGeneration' | 'type' | 'reason'> & {
    type: ConditionType;
    reason: ConditionReason;
  },
): void {
  const conditions = [...(status.conditions ?? [])];
  const i = conditions.findIndex((x) => x.type === c.type);
  const previous = i >= 0 ? conditions[i] : undefined;
  const next: ExperimentCondition = {
    ...c,
    observedGeneration: obj.metadata.generation,
    lastTransitionTime:
      previous && previous.status === c.status ? previous.lastTransitionTime : new Date().toISOString(),
  };
  if (i >= 0) conditions[i] = next;
  else conditions.push(next);
  status.conditions = conditions;
}
