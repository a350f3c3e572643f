// The Triggering and Observing phases of a FailoverExperiment: the trigger protocol
// (engine/trigger-protocol.ts) with the intent in status before the call. Never a second call:
// a restart that finds the intent without the call's result observes instead; a refusal fails
// the run cleanly; transient RDS errors back off and never end a run while the probes run.
import { recoveredThroughAtDecision } from '../analysis/coverage.ts';
import { parseDurationMs } from '../api/duration.ts';
import type { FailoverExperimentStatus } from '../api/experiment-status.ts';
import { operationReasonName, triggerAction, triggerOperation } from '../api/spec-accessors.ts';
import type { ExperimentManifest } from '../api/validate-experiment.ts';
import type { RecoveryTracker } from '../engine/recovery.ts';
import {
  type CallResult,
  callOnce,
  type Inconclusive,
  lookAtTarget,
  notObserved,
  type RoleFlipWatcher,
  TriggerObserver,
} from '../engine/trigger-protocol.ts';
import type { FailoverTrigger, TargetState } from '../trigger/types.ts';
import { TriggerError } from '../trigger/types.ts';
import type { FailureReason } from './conditions.ts';
import { setCondition } from './conditions.ts';
import type { FailoverExperimentObject, ReconcilerDeps } from './experiment-reconciler.ts';
import type { ReconcileResult } from './workqueue.ts';

/** How long transient RDS errors may delay the failover call before the run fails (nothing called). */
const PRE_CALL_RETRY_MS = 120_000;

/** What the phases need from the reconciler. */
export interface TriggerPhaseHost {
  trigger(obj: FailoverExperimentObject, manifest: ExperimentManifest): FailoverTrigger;
  writeStatus(
    obj: FailoverExperimentObject,
    status: FailoverExperimentStatus,
  ): Promise<FailoverExperimentObject>;
  fail(obj: FailoverExperimentObject, reason: FailureReason, message: string): Promise<ReconcileResult>;
  emitEvent: ReconcilerDeps['emitEvent'];
  /**
   * One observe pass's look at the probers: pulls new samples (replacing lost probers) and
   * returns the recovery tracker and the role-flip watcher, fed every sample of the run so far,
   * and the newest sample end.
   */
  observeSamples(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
    t0Ms: number,
  ): Promise<{ tracker: RecoveryTracker; roleFlips: RoleFlipWatcher; newestEndMs: number }>;
  /** Observation ended; `recoveredThroughMs`: what that pass proved (recoveredThroughAtDecision). */
  observationEnded(obj: FailoverExperimentObject, recoveredThroughMs: number | undefined): void;
  log?: ReconcilerDeps['log'];
  pollMs: number;
}

export class TriggerPhases {
  private readonly host: TriggerPhaseHost;
  private readonly observers = new Map<string, TriggerObserver>();
  /** Transient RDS errors before the call, per uid: since when, and how many. */
  private readonly preCallErrors = new Map<string, { sinceMs: number; count: number }>();

  constructor(host: TriggerPhaseHost) {
    this.host = host;
  }

  /** Drops what is kept for a run (at its clean-up). */
  forget(uid: string): void {
    this.observers.delete(uid);
    this.preCallErrors.delete(uid);
  }

  async triggering(obj: FailoverExperimentObject, manifest: ExperimentManifest): Promise<ReconcileResult> {
    const trigger = this.host.trigger(obj, manifest);
    const record = obj.status?.trigger ?? {};
    if (record.intentTime)
      // The intent is recorded but not the call's result: a controller died around the call.
      // Never call again: observe what the target and the probes show (outcome Unknown).
      return this.recordCall(obj, {
        kind: 'called',
        outcome: 'Unknown',
        fired: {
          t0Ms: Date.parse(record.intentTime),
          action: `failover of ${trigger.description} (a controller restart came between the intent and the call's result; not called again)`,
          writerBefore: record.writerBefore,
        },
        message: 'controller restarted around the call',
      });
    const uid = obj.metadata.uid!;
    let before: TargetState | undefined;
    try {
      before = await trigger.state();
      this.preCallErrors.delete(uid);
    } catch (err) {
      // Nothing was called yet: a transient error (throttling, unreachable) waits and retries.
      const e = err instanceof TriggerError ? err : undefined;
      if (!e?.transient) throw err;
      const since = this.preCallErrors.get(uid) ?? { sinceMs: Date.now(), count: 0 };
      since.count++;
      this.preCallErrors.set(uid, since);
      if (Date.now() - since.sinceMs > PRE_CALL_RETRY_MS)
        return this.host.fail(obj, e.reason, `${e.message}; nothing was failed over`);
      return { requeueAfterMs: Math.min(10_000, 500 * 2 ** since.count) };
    }
    // Record the intent first: if we die during the call, the next reconcile observes
    // instead of calling again.
    const intent: FailoverExperimentStatus = {
      ...obj.status,
      trigger: {
        intentTime: new Date().toISOString(),
        outcome: 'Pending',
        writerBefore: before?.writerId,
        operation: triggerAction(manifest.spec),
      },
    };
    const written = await this.host.writeStatus(obj, intent);
    // Test hook: dies between the intent and the call, or right after the call, exactly
    // where a crash is most dangerous for at-most-once (test/e2e/operator.test.ts).
    if (process.env.FAILWATCH_FAULT_INJECT === 'exit-after-trigger-intent') process.exit(137);
    this.host.log?.info?.(
      {
        experiment: `${obj.metadata.namespace}/${obj.metadata.name}`,
        action: trigger.description,
        writerBefore: before?.writerId,
      },
      'calling the failover',
    );
    const result = await callOnce(trigger, before?.writerId);
    if (process.env.FAILWATCH_FAULT_INJECT === 'exit-after-trigger-call') process.exit(137);
    return this.recordCall(written, result);
  }

  private async recordCall(obj: FailoverExperimentObject, result: CallResult): Promise<ReconcileResult> {
    if (result.kind === 'refused') {
      const message = `${result.message} (the call was refused: nothing was failed over)`;
      const trigger = { ...obj.status?.trigger, outcome: 'Failed' as const, message: message.slice(0, 1024) };
      return this.host.fail({ ...obj, status: { ...obj.status, trigger } }, result.reason, message);
    }
    const { fired, outcome } = result;
    const operation = operationReasonName(triggerAction(obj.spec));
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Observing',
      triggerTime: new Date(fired.t0Ms).toISOString(),
      trigger: {
        ...obj.status?.trigger,
        calledTime: new Date().toISOString(),
        outcome,
        action: fired.action.slice(0, 256),
        ...(result.outcome === 'Unknown' ? { message: result.message.slice(0, 1024) } : {}),
      },
    };
    setCondition(status, obj, {
      type: 'Triggered',
      status: outcome === 'Succeeded' ? 'True' : 'Unknown',
      reason: outcome === 'Succeeded' ? `${operation}Called` : 'CallOutcomeUnknown',
      message:
        outcome === 'Succeeded'
          ? fired.action
          : `${fired.action}: ${result.kind === 'called' && result.outcome === 'Unknown' ? result.message : ''}; observing RDS and the probes, never calling again`,
    });
    setCondition(status, obj, {
      type: 'Running',
      status: 'True',
      reason: 'Observing',
      message: 'watching the recovery',
    });
    await this.host.writeStatus(obj, status);
    if (outcome === 'Succeeded')
      await this.host.emitEvent(obj, 'Normal', `${operation}Triggered`, fired.action);
    else
      await this.host.emitEvent(
        obj,
        'Warning',
        'CallOutcomeUnknown',
        `${fired.action}; observing until observe.maxDuration`.slice(0, 1000),
      );
    return { requeueAfterMs: this.host.pollMs };
  }

  async observing(obj: FailoverExperimentObject, manifest: ExperimentManifest): Promise<ReconcileResult> {
    const spec = manifest.spec;
    const record = obj.status?.trigger ?? {};
    const t0Ms = Date.parse(obj.status!.triggerTime!);
    const passStartMs = Date.now();
    const { tracker, roleFlips, newestEndMs } = await this.host.observeSamples(obj, manifest, t0Ms);
    const observer = this.observer(obj, manifest);
    const trigger = this.host.trigger(obj, manifest);
    const now = Date.now();
    const look = observer.wantsLook(now)
      ? await lookAtTarget(trigger, t0Ms, record.writerBefore).catch((err: unknown) => ({
          error: err instanceof TriggerError ? err : new TriggerError('RdsError', (err as Error).message),
        }))
      : undefined;
    if (look && 'error' in look)
      this.host.log?.warn(
        {
          experiment: `${obj.metadata.namespace}/${obj.metadata.name}`,
          reason: look.error.reason,
          errorsInARow: observer.rdsErrors + 1,
        },
        'RDS did not answer while observing; retrying with backoff, the probes go on',
      );
    // Probers report in pulls: judge recovery up to the newest sample, not up to now.
    const newest = newestEndMs;
    const recovered = tracker.allRecovered(newest, parseDurationMs(spec.observe.recoveredFor));
    const decision = observer.step({
      nowMs: now,
      look,
      roleFlipMs: roleFlips.firstFlipMs(),
      restartMs: roleFlips.firstRestartMs(),
      sawOutage: tracker.sawOutage(),
      recovered,
    });
    const seen = observer.happened;
    const observed =
      seen && !record.observedTime
        ? { observedTime: new Date(seen.atMs).toISOString(), observedBy: seen.by }
        : undefined;
    if (!decision.done) {
      if (observed) {
        await this.host.writeStatus(obj, { ...obj.status, trigger: { ...record, ...observed } });
        await this.host.emitEvent(
          obj,
          'Normal',
          'FailoverObserved',
          `${triggerOperation(manifest.spec) === 'failover' ? 'failover' : `${spec.trigger.action}`} seen ${((seen!.atMs - t0Ms) / 1000).toFixed(1)} s after T0 (${seen!.by})`,
        );
      }
      return { requeueAfterMs: this.host.pollMs };
    }
    this.host.observationEnded(
      obj,
      recoveredThroughAtDecision({ recovered, newestEndMs: newest, passStartMs }),
    );
    // A Blue/Green or Global Database operation seen but rolled back or never completed: kept
    // with the trigger record, so the analysis (and a restarted controller) reports it.
    const end = decision.inconclusive;
    const observedEnd =
      end && (end.reason === 'SwitchoverRolledBack' || end.reason === 'OperationNotCompleted')
        ? { observedEnd: { reason: end.reason, message: end.message.slice(0, 1024) } }
        : {};
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Analyzing',
      ...(observed || 'observedEnd' in observedEnd
        ? { trigger: { ...record, ...observed, ...observedEnd } }
        : {}),
    };
    setCondition(status, obj, {
      type: 'Running',
      status: 'True',
      reason: 'Analyzing',
      message: 'auditing writes',
    });
    await this.host.writeStatus(obj, status);
    return { requeueAfterMs: 0 };
  }

  /** Inconclusive when a trigger was called (or may have been) and no failover was ever seen. */
  notObservedFindings(obj: FailoverExperimentObject, manifest: ExperimentManifest): Inconclusive[] {
    const record = obj.status?.trigger ?? {};
    if (record.observedEnd) return [{ ...record.observedEnd }];
    if (manifest.spec.trigger.type === 'none' || record.observedTime) return [];
    return [
      notObserved(
        record.outcome === 'Succeeded' ? 'Succeeded' : 'Unknown',
        record.writerBefore,
        parseDurationMs(manifest.spec.observe.maxDuration),
        triggerOperation(manifest.spec),
      ),
    ];
  }

  /** The observer of a run's failover, kept between passes; rebuilt from the status after a restart. */
  private observer(obj: FailoverExperimentObject, manifest: ExperimentManifest): TriggerObserver {
    const uid = obj.metadata.uid!;
    let o = this.observers.get(uid);
    if (!o) {
      const record = obj.status?.trigger ?? {};
      o = new TriggerObserver({
        t0Ms: Date.parse(obj.status!.triggerTime!),
        writerBefore: record.writerBefore,
        outcome: record.outcome === 'Succeeded' ? 'Succeeded' : 'Unknown',
        maxDurationMs: parseDurationMs(manifest.spec.observe.maxDuration),
        observeOnly: manifest.spec.trigger.type === 'none',
        operation: triggerOperation(manifest.spec),
        happened:
          record.observedTime && record.observedBy
            ? { atMs: Date.parse(record.observedTime), by: record.observedBy }
            : undefined,
      });
      this.observers.set(uid, o);
    }
    return o;
  }
}
