// Reconciles one FailoverExperiment: level-based, idempotent, one phase step per call.
// Everything a later call needs is in the object's status (phase, times, the trigger
// record) or in the prober pods (samples), so a controller restart at any point resumes
// the run; the trigger record makes the failover call happen at most once.
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import type { Results } from '../analysis/results.ts';
import { statusSummary } from '../analysis/status-summary.ts';
import { parseDurationMs } from '../api/duration.ts';
import type { FailoverExperimentSpec } from '../api/experiment-spec.ts';
import type {
  ExperimentCondition,
  ExperimentPhase,
  FailoverExperimentStatus,
} from '../api/experiment-status.ts';
import { targetIdentifier } from '../api/spec-accessors.ts';
import {
  type ExperimentManifest,
  type Validation,
  validateExperimentManifest,
} from '../api/validate-experiment.ts';
import { baselineHealth, RecoveryTracker } from '../engine/recovery.ts';
import { analyzeMeasurement, setupReason } from '../engine/run-experiment.ts';
import type { ProbeSample } from '../probe/types.ts';
import { renderReportHtml } from '../report/report-html.ts';
import type { FailoverTrigger, FiredTrigger } from '../trigger/types.ts';
import { REJECTED_CALL_REASONS, TriggerError } from '../trigger/types.ts';
import {
  apiErrorMessage,
  experimentRef,
  FINALIZER,
  isConflict,
  isNotFound,
  type Kube,
  LABEL_ENDPOINT,
  LABEL_EXPERIMENT,
  OwnWrites,
} from './kube.ts';
import { acquireTargetLock, releaseTargetLock, targetLeaseName } from './lease.ts';
import { credentialsHint, ProberClient, proberPod, proberPodName } from './prober-pods.ts';
import type { ReconcileResult } from './workqueue.ts';

export interface FailoverExperimentObject {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta;
  spec: FailoverExperimentSpec;
  status?: FailoverExperimentStatus;
}

export interface ReconcilerDeps {
  kube: Kube;
  /** Namespace of the controller: target Leases live there. */
  controllerNamespace: string;
  /** Image of the prober pods. */
  proberImage: string;
  /**
   * Target identifiers this controller may fail over (`name`, or `prefix*`); empty or
   * absent: any. A guard against a manifest that names a production cluster by mistake.
   */
  allowedTargets?: readonly string[];
  triggerFor(manifest: ExperimentManifest): FailoverTrigger;
  emitEvent(
    obj: FailoverExperimentObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void>;
  onResults?(obj: FailoverExperimentObject, results: Results): void;
  onForget?(namespace: string, name: string): void;
  log?: {
    warn(fields: Record<string, unknown>, message: string): void;
    debug?(fields: Record<string, unknown>, message: string): void;
  };
  /**
   * The experiment as the informer's cache holds it (undefined: deleted). Without it every
   * reconcile GETs the object.
   */
  cached?(namespace: string, name: string): FailoverExperimentObject | undefined;
  /**
   * The pods labelled with the experiment's name in its namespace, from an informer. Without
   * it every look at the prober pods LISTs them.
   */
  cachedPods?(namespace: string, experiment: string): V1Pod[];
  /** How long prober pods may take to become ready. */
  preflightTimeoutMs?: number;
  pollMs?: number;
}

const TERMINAL: ExperimentPhase[] = ['Completed', 'Failed', 'Aborted'];
/** When a status write lost a race (409): the watch event that follows usually comes first. */
const CONFLICT_RETRY_MS = 1000;
/** Prober setup failures that retrying cannot mend: the run fails on the first one. */
const SETUP_FAILS_AT_ONCE: ReadonlySet<string> = new Set(['auth_error', 'tls_error', 'read_only']);
/** Other setup failures fail the run after this many attempts in a row (~10 s). */
const SETUP_ATTEMPTS_BEFORE_FAILING = 3;
/** How long a failover call that reached RDS takes to show (status failing-over). */
const INTENT_GRACE_MS = 10_000;

/** Samples pulled from the prober pods, per experiment uid (rebuilt from the pods after a restart). */
class SampleStore {
  readonly samples: ProbeSample[] = [];
  readonly next = new Map<string, number>();
}

/** Whether an allowlist (exact identifiers, or `prefix*`) admits a target; an empty list admits all. */
export function isTargetAllowed(target: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  return allowed.some((entry) =>
    entry.endsWith('*') ? target.startsWith(entry.slice(0, -1)) : target === entry,
  );
}

class RunFailed extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

export class ExperimentReconciler {
  private readonly deps: ReconcilerDeps;
  private readonly stores = new Map<string, SampleStore>();
  private readonly triggers = new Map<string, FailoverTrigger>();
  /** What our own writes returned, while the informer's cache is behind them. */
  private readonly written = new OwnWrites<FailoverExperimentObject>();
  /**
   * Valid specs (defaults applied) by uid, with the generation they were validated at: a
   * generation's spec never changes, and validating is by far the costliest part of a pass
   * that only looks again (hundreds of experiments waiting for a Secret).
   */
  private readonly manifests = new Map<string, { generation: number; manifest: ExperimentManifest }>();

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    try {
      return await this.reconcileOnce(key);
    } catch (err) {
      // Our write was based on an old version (someone else wrote, or the cache was behind):
      // nothing was written; the watch event of the newer version brings the key back.
      if (!isConflict(err)) throw err;
      const [namespace, experiment] = key.split('/');
      this.deps.log?.debug?.({ namespace, experiment }, 'status write conflicted; looking again');
      return { requeueAfterMs: CONFLICT_RETRY_MS };
    }
  }

  private async reconcileOnce(key: string): Promise<ReconcileResult | undefined> {
    const [namespace, name] = key.split('/') as [string, string];
    const { kube } = this.deps;
    let obj = await this.read(namespace, name);
    if (!obj) {
      this.written.forgetNamed(namespace, name);
      for (const [uid, { manifest }] of this.manifests)
        if (manifest.metadata.namespace === namespace && manifest.metadata.name === name)
          this.manifests.delete(uid);
      this.deps.onForget?.(namespace, name);
      return undefined;
    }
    if (obj.metadata.deletionTimestamp) return this.finalize(obj);
    const status = obj.status ?? {};
    if (TERMINAL.includes(status.phase as ExperimentPhase)) {
      // A crash between the final status and the clean-up must not leave probers running.
      // (With the pod informer this costs no API call while the experiment has no pods.)
      const pods = await this.pods(obj);
      if ([...pods.values()].some((p) => !p.metadata?.deletionTimestamp)) await this.cleanup(obj);
      return undefined;
    }
    if (!obj.metadata.finalizers?.includes(FINALIZER)) {
      const before = obj;
      const append = [{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }];
      // Creating the list replaces one that exists: only on the version we looked at.
      const create = [
        { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion },
        { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] },
      ];
      const [first, second] = obj.metadata.finalizers ? [append, create] : [create, append];
      obj = (await kube.custom
        .patchNamespacedCustomObject({ ...experimentRef(namespace, name), body: first })
        .catch(async () =>
          kube.custom.patchNamespacedCustomObject({ ...experimentRef(namespace, name), body: second }),
        )) as FailoverExperimentObject;
      this.written.wrote(before, obj);
      // The patch returned the object with its finalizer: go on with it in this pass.
      if (obj.metadata.deletionTimestamp || !obj.metadata.finalizers?.includes(FINALIZER))
        return { requeueAfterMs: 0 };
    }
    const validated = this.validate(obj);
    if (!validated.ok) {
      const message = validated.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
      return this.fail(obj, 'InvalidSpec', message);
    }
    const manifest = validated.value;
    if (status.phase && status.phase !== 'Pending' && status.observedGeneration !== undefined) {
      if (obj.metadata.generation !== status.observedGeneration)
        return this.fail(
          obj,
          'SpecChanged',
          'the spec changed after the run started; a run never changes course (and never fails over twice): create a new experiment',
        );
    }
    try {
      switch (status.phase ?? 'Pending') {
        case 'Pending':
          return await this.pending(obj, manifest);
        case 'Preflight':
          return await this.preflight(obj, manifest);
        case 'Baseline':
          return await this.baseline(obj, manifest);
        case 'Triggering':
          return await this.triggering(obj, manifest);
        case 'Observing':
          return await this.observing(obj, manifest);
        case 'Analyzing':
          return await this.analyzing(obj, manifest);
        default:
          return undefined;
      }
    } catch (err) {
      if (err instanceof RunFailed) return this.fail(obj, err.reason, err.message);
      if (err instanceof TriggerError) return this.fail(obj, err.reason, err.message);
      throw err;
    }
  }

  // ---- phases ----

  private async pending(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
  ): Promise<ReconcileResult> {
    const identifier = targetIdentifier(manifest.spec);
    if (identifier !== null && !isTargetAllowed(identifier, this.deps.allowedTargets ?? []))
      throw new RunFailed(
        'TargetNotAllowed',
        `target ${identifier} is not in the controller's allowed targets (${this.deps.allowedTargets!.join(', ')}): add it to the chart's allowedTargets (--allowed-targets) if failing it over is intended`,
      );
    const target = identifier ?? `${obj.metadata.namespace}-${obj.metadata.name}`;
    // Secrets first: an experiment waiting for its Secret must not hold the target's lock.
    for (const endpoint of manifest.spec.endpoints) {
      const ref = endpoint.credentials.secretRef;
      if (!ref && endpoint.credentials.iam) continue; // IAM tokens: no Secret to wait for
      if (!ref)
        throw new RunFailed(
          'CredentialsMissing',
          `endpoint ${endpoint.name}: credentials.secretRef is required in Kubernetes`,
        );
      const problem = await this.secretProblem(obj.metadata.namespace!, ref.name, [
        ref.usernameKey,
        ref.passwordKey,
      ]);
      if (problem) {
        await this.setBlocked(obj, problem.reason, `endpoint ${endpoint.name}: ${problem.message}`);
        return { requeueAfterMs: blockedRetryMs(obj, 10_000) };
      }
    }
    const lock = await acquireTargetLock(
      this.deps.kube,
      this.deps.controllerNamespace,
      targetLeaseName(target),
      this.holder(obj),
      (holder) => this.holderActive(holder),
    );
    if (!lock.held) {
      await this.setBlocked(
        obj,
        'TargetLocked',
        `another run holds the lock of target ${target}: ${lock.holder}`,
      );
      return { requeueAfterMs: blockedRetryMs(obj, 5000) };
    }
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Preflight',
      runId: obj.status?.runId ?? randomUUID(),
      target,
      startTime: new Date().toISOString(),
      observedGeneration: obj.metadata.generation,
    };
    setCondition(status, obj, {
      type: 'Blocked',
      status: 'False',
      reason: 'LockHeld',
      message: `holding the lock of ${target}`,
    });
    setCondition(status, obj, {
      type: 'Running',
      status: 'True',
      reason: 'Preflight',
      message: 'starting prober pods',
    });
    await this.writeStatus(obj, status);
    await this.deps.emitEvent(
      obj,
      'Normal',
      'Preflight',
      `probing ${manifest.spec.endpoints.length} endpoints of ${target}`,
    );
    return { requeueAfterMs: 0 };
  }

  private async preflight(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
  ): Promise<ReconcileResult> {
    const { kube } = this.deps;
    const ns = obj.metadata.namespace!;
    const runId = obj.status!.runId!;
    const pods = await this.pods(obj);
    for (const endpoint of manifest.spec.endpoints) {
      const podName = proberPodName(obj.metadata.name!, endpoint.name);
      if (pods.has(podName)) continue;
      const pod = proberPod(
        { namespace: ns, name: obj.metadata.name!, uid: obj.metadata.uid!, runId },
        endpoint,
        this.deps.proberImage,
        manifest.spec.target?.region,
      );
      await kube.core.createNamespacedPod({ namespace: ns, body: pod }).catch((err) => {
        if ((err as { code?: number }).code !== 409) throw err;
      });
    }
    let ready = 0;
    for (const endpoint of manifest.spec.endpoints) {
      const pod = pods.get(proberPodName(obj.metadata.name!, endpoint.name));
      const podIp = pod?.status?.podIP;
      const waiting = pod?.status?.containerStatuses?.[0]?.state?.waiting;
      if (waiting?.reason === 'CreateContainerConfigError')
        throw new RunFailed(
          'SecretKeyNotFound',
          `endpoint ${endpoint.name}: ${waiting.message ?? 'the Secret cannot be used'}`,
        );
      if (pod?.status?.phase === 'Failed' || pod?.status?.phase === 'Succeeded')
        throw new RunFailed(
          'ProberFailed',
          `endpoint ${endpoint.name}: prober pod ended (${pod.status.phase})`,
        );
      if (!podIp || pod?.status?.phase !== 'Running') continue;
      const st = await new ProberClient(podIp).status().catch(() => undefined);
      // A configuration error fails at once; a network one (the machine or the endpoint busy
      // for a moment) only once the prober's own retries (every 5 s) keep failing.
      const definitive = SETUP_FAILS_AT_ONCE.has(st?.class ?? '');
      if (
        st?.state === 'setup-failed' &&
        (definitive || (st.setupAttempts ?? 1) >= SETUP_ATTEMPTS_BEFORE_FAILING)
      )
        throw new RunFailed(
          setupReason(st.class ?? 'other'),
          `endpoint \`${endpoint.name}\`: ${st.message ?? st.class} (${credentialsHint(endpoint)})`,
        );
      if (st?.state === 'probing') ready++;
    }
    if (ready < manifest.spec.endpoints.length) {
      const started = Date.parse(obj.status!.startTime!);
      if (Date.now() - started > (this.deps.preflightTimeoutMs ?? 120_000))
        throw new RunFailed(
          'ProbersNotReady',
          `${ready} of ${manifest.spec.endpoints.length} prober pods became ready in time`,
        );
      return { requeueAfterMs: 500 };
    }
    await this.trigger(obj, manifest).preflight();
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Baseline',
      baselineStartTime: new Date().toISOString(),
    };
    setCondition(status, obj, {
      type: 'ProbersReady',
      status: 'True',
      reason: 'Probing',
      message: `${ready} prober pods probing`,
    });
    setCondition(status, obj, {
      type: 'Running',
      status: 'True',
      reason: 'Baseline',
      message: 'measuring the steady state',
    });
    await this.writeStatus(obj, status);
    await this.deps.emitEvent(obj, 'Normal', 'Baseline', `baseline for ${manifest.spec.baseline.duration}`);
    return { requeueAfterMs: parseDurationMs(manifest.spec.baseline.duration) };
  }

  private async baseline(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
  ): Promise<ReconcileResult> {
    const startedMs = Date.parse(obj.status!.baselineStartTime!);
    const remaining = startedMs + parseDurationMs(manifest.spec.baseline.duration) - Date.now();
    if (remaining > 0) return { requeueAfterMs: remaining };
    const store = await this.pull(obj);
    const unhealthy = baselineHealth(store.samples.filter((s) => s.startMs >= startedMs)).filter(
      (l) => l.ratio > manifest.spec.baseline.maxErrorRatio,
    );
    if (unhealthy.length > 0)
      throw new RunFailed(
        'BaselineUnhealthy',
        `baseline not healthy, nothing was triggered: ${unhealthy.map((l) => `${l.lane} ${l.bad}/${l.attempts} bad (${l.topClass})`).join(', ')}`,
      );
    const status: FailoverExperimentStatus = { ...obj.status, phase: 'Triggering' };
    setCondition(status, obj, {
      type: 'Running',
      status: 'True',
      reason: 'Triggering',
      message: 'calling the failover',
    });
    await this.writeStatus(obj, status);
    return { requeueAfterMs: 0 };
  }

  private async triggering(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
  ): Promise<ReconcileResult> {
    const trigger = this.trigger(obj, manifest);
    const record = obj.status?.trigger ?? {};
    if (!record.intentTime) {
      // Record the intent first: if we die during the call, the next reconcile asks the
      // target instead of calling again.
      const before = await trigger.state().catch(() => undefined);
      const intent: FailoverExperimentStatus = {
        ...obj.status,
        trigger: { intentTime: new Date().toISOString(), outcome: 'Pending', writerBefore: before?.writerId },
      };
      const written = await this.writeStatus(obj, intent);
      // Test hook: dies between the intent and the call, or right after the call, exactly
      // where a crash is most dangerous for at-most-once (test/e2e/operator.test.ts).
      if (process.env.FAILWATCH_FAULT_INJECT === 'exit-after-trigger-intent') process.exit(137);
      let fired: FiredTrigger;
      try {
        fired = await trigger.fire(before?.writerId);
      } catch (err) {
        if (process.env.FAILWATCH_FAULT_INJECT === 'exit-after-trigger-call') process.exit(137);
        // RDS said no: nothing happened, the run ends with RDS's reason. Anything else (a
        // timeout, a dropped connection) may have reached RDS: find out, never call again.
        if (err instanceof TriggerError && REJECTED_CALL_REASONS.includes(err.reason))
          return this.fail(written, err.reason, err.message);
        this.deps.log?.warn(
          { experiment: `${obj.metadata.namespace}/${obj.metadata.name}`, err: (err as Error).message },
          'failover call outcome unknown; asking the target before anything else',
        );
        return { requeueAfterMs: 2000 };
      }
      if (process.env.FAILWATCH_FAULT_INJECT === 'exit-after-trigger-call') process.exit(137);
      return this.recordFired(written, fired);
    }
    // The intent is recorded but not the call: a controller died around it, or the call's
    // outcome was unknown. Ask the target; call only when it certainly did not happen.
    const intentMs = Date.parse(record.intentTime);
    if (await trigger.happenedSince(intentMs - 1000, record.writerBefore))
      return this.recordFired(obj, {
        t0Ms: intentMs,
        action: `${trigger.description} (call confirmed from the target after a controller restart)`,
        writerBefore: record.writerBefore,
      });
    // A call that reached RDS shows within seconds (status failing-over, then events);
    // before deciding it did not, give it that time.
    const waitMs = intentMs + INTENT_GRACE_MS - Date.now();
    if (waitMs > 0) return { requeueAfterMs: Math.min(waitMs, 2000) };
    if (record.outcome === 'Pending' && record.message === 'retried')
      throw new RunFailed(
        'TriggerOutcomeUnknown',
        `the failover call's outcome is unknown and ${trigger.description} shows no failover: not calling a third time`,
      );
    const retry: FailoverExperimentStatus = {
      ...obj.status,
      trigger: { ...record, message: 'retried', intentTime: new Date().toISOString() },
    };
    const written = await this.writeStatus(obj, retry);
    const fired = await trigger.fire(record.writerBefore);
    return this.recordFired(written, fired);
  }

  /** One trigger (one SDK client) per experiment, closed at cleanup. */
  private trigger(obj: FailoverExperimentObject, manifest: ExperimentManifest): FailoverTrigger {
    const uid = obj.metadata.uid!;
    let t = this.triggers.get(uid);
    if (!t) {
      t = this.deps.triggerFor(manifest);
      this.triggers.set(uid, t);
    }
    return t;
  }

  private async recordFired(obj: FailoverExperimentObject, fired: FiredTrigger): Promise<ReconcileResult> {
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Observing',
      triggerTime: new Date(fired.t0Ms).toISOString(),
      trigger: {
        ...obj.status?.trigger,
        calledTime: new Date().toISOString(),
        outcome: 'Succeeded',
        action: fired.action,
      },
    };
    setCondition(status, obj, {
      type: 'Triggered',
      status: 'True',
      reason: 'FailoverCalled',
      message: fired.action,
    });
    setCondition(status, obj, {
      type: 'Running',
      status: 'True',
      reason: 'Observing',
      message: 'watching the recovery',
    });
    await this.writeStatus(obj, status);
    await this.deps.emitEvent(obj, 'Normal', 'FailoverTriggered', fired.action);
    return { requeueAfterMs: this.deps.pollMs ?? 1000 };
  }

  private async observing(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
  ): Promise<ReconcileResult> {
    const spec = manifest.spec;
    const t0Ms = Date.parse(obj.status!.triggerTime!);
    const store = await this.pull(obj);
    const tracker = new RecoveryTracker(
      spec.endpoints.flatMap((e) => e.probes.map((kind) => ({ endpoint: e.name, kind }))),
      t0Ms,
    );
    for (const s of store.samples) tracker.add(s);
    const now = Date.now();
    const overdue = now - t0Ms >= parseDurationMs(spec.observe.maxDuration);
    const settled =
      spec.trigger.type === 'none'
        ? tracker.sawOutage()
        : await this.trigger(obj, manifest)
            .settled(t0Ms, obj.status?.trigger?.writerBefore)
            .catch(() => false);
    // Probers report in pulls: judge recovery up to the newest sample, not up to now.
    const newest = store.samples.reduce((m, s) => Math.max(m, s.endMs), 0);
    if (!overdue && !(settled && tracker.allRecovered(newest, parseDurationMs(spec.observe.recoveredFor))))
      return { requeueAfterMs: this.deps.pollMs ?? 1000 };
    const status: FailoverExperimentStatus = { ...obj.status, phase: 'Analyzing' };
    setCondition(status, obj, {
      type: 'Running',
      status: 'True',
      reason: 'Analyzing',
      message: 'auditing writes',
    });
    await this.writeStatus(obj, status);
    return { requeueAfterMs: 0 };
  }

  private async analyzing(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
  ): Promise<ReconcileResult> {
    const pods = await this.pods(obj);
    const clients = [...pods.values()]
      .filter((p) => p.status?.podIP)
      .map((p) => [p, new ProberClient(p.status!.podIP!)] as const);
    await Promise.all(clients.map(([, c]) => c.stop().catch(() => {})));
    const store = await this.pull(obj);
    let auditRows: { endpoint: string; key: string; serverMs: number }[] | undefined = [];
    if (manifest.spec.audit.lostWrites) {
      for (const [pod, c] of clients) {
        const endpoint = pod.metadata?.labels?.[LABEL_ENDPOINT] ?? '';
        const spec = manifest.spec.endpoints.find((e) => e.name === endpoint);
        if (!spec?.probes.includes('write')) continue;
        try {
          for (const r of await c.audit()) auditRows?.push({ ...r, endpoint });
        } catch {
          auditRows = undefined;
          break;
        }
      }
    } else auditRows = undefined;
    const trigger = this.trigger(obj, manifest);
    const baselineStartMs = Date.parse(obj.status!.baselineStartTime!);
    const t0Ms = Date.parse(obj.status!.triggerTime!);
    const events = await trigger.events(baselineStartMs - 60_000, Date.now() + 1000).catch(() => []);
    const results = analyzeMeasurement({
      manifest,
      runId: obj.status!.runId!,
      baselineStartMs,
      fired: { t0Ms, action: obj.status?.trigger?.action ?? trigger.description },
      observeEndMs: store.samples.reduce((m, s) => Math.max(m, s.endMs), t0Ms),
      events,
      samples: store.samples,
      auditRows,
    });
    if (process.env.FAILWATCH_FAULT_INJECT === 'exit-before-results') process.exit(137);
    const resultsName = await this.saveResults(obj, results, store.samples);
    const summary = statusSummary(results);
    const status: FailoverExperimentStatus = {
      ...obj.status,
      ...summary,
      phase: 'Completed',
      completionTime: new Date().toISOString(),
      resultsRef: { configMapName: resultsName },
    };
    setCondition(status, obj, {
      type: 'Running',
      status: 'False',
      reason: 'Completed',
      message: 'the run completed',
    });
    setCondition(status, obj, {
      type: 'Passed',
      status: results.verdict.result === 'Pass' ? 'True' : 'False',
      reason: results.verdict.result === 'Pass' ? 'WithinSLO' : 'SLOViolated',
      message: results.verdict.reasons.join('; ').slice(0, 1000) || 'every SLO held',
    });
    await this.writeStatus(obj, status);
    this.deps.onResults?.(obj, results);
    await this.deps.emitEvent(
      obj,
      results.verdict.result === 'Pass' ? 'Normal' : 'Warning',
      results.verdict.result === 'Pass' ? 'Passed' : 'SLOViolated',
      `worst downtime ${(summary.worstDowntimeSeconds ?? 0).toFixed(3)} s; ${results.verdict.reasons.join('; ') || 'every SLO held'}`.slice(
        0,
        1000,
      ),
    );
    await this.cleanup(obj);
    return {};
  }

  // ---- helpers ----

  private validate(obj: FailoverExperimentObject): Validation<ExperimentManifest> {
    const { uid, generation, name, namespace } = obj.metadata;
    const known = uid ? this.manifests.get(uid) : undefined;
    if (known && known.generation === generation) return { ok: true, value: known.manifest };
    const validated = validateExperimentManifest({
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { name, namespace },
      spec: obj.spec,
    });
    if (validated.ok && uid && generation !== undefined)
      this.manifests.set(uid, { generation, manifest: validated.value });
    else if (uid) this.manifests.delete(uid);
    return validated;
  }

  /** The experiment to act on: the cache's, or ours while the cache is behind our writes. */
  private async read(namespace: string, name: string): Promise<FailoverExperimentObject | undefined> {
    if (this.deps.cached) {
      const cached = this.deps.cached(namespace, name);
      return cached && this.written.freshest(cached);
    }
    try {
      return (await this.deps.kube.custom.getNamespacedCustomObject(
        experimentRef(namespace, name),
      )) as FailoverExperimentObject;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private holder(obj: FailoverExperimentObject): string {
    return `${obj.metadata.namespace}/${obj.metadata.name}/${obj.metadata.uid}`;
  }

  /** A lock holder still needs its lock while its experiment exists and has not ended. */
  private async holderActive(holder: string): Promise<boolean> {
    const [namespace, name, uid] = holder.split('/');
    if (!namespace || !name) return false;
    try {
      const other = (await this.deps.kube.custom.getNamespacedCustomObject(
        experimentRef(namespace, name),
      )) as FailoverExperimentObject;
      if (uid && other.metadata.uid !== uid) return false;
      return !TERMINAL.includes(other.status?.phase as ExperimentPhase);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private async secretProblem(
    namespace: string,
    name: string,
    keys: string[],
  ): Promise<{ reason: string; message: string } | undefined> {
    try {
      const secret = await this.deps.kube.core.readNamespacedSecret({ name, namespace });
      const missing = keys.filter(
        (k) => !(secret.data && k in secret.data) && !(secret.stringData && k in secret.stringData),
      );
      if (missing.length > 0)
        return { reason: 'SecretKeyNotFound', message: `Secret ${name} has no key ${missing.join(', ')}` };
      return undefined;
    } catch (err) {
      if (isNotFound(err))
        return {
          reason: 'SecretNotFound',
          message: `Secret ${name} not found in namespace ${namespace}: create it`,
        };
      throw err;
    }
  }

  private async pods(obj: FailoverExperimentObject): Promise<Map<string, V1Pod>> {
    const items = this.deps.cachedPods
      ? this.deps.cachedPods(obj.metadata.namespace!, obj.metadata.name!)
      : (
          await this.deps.kube.core.listNamespacedPod({
            namespace: obj.metadata.namespace!,
            labelSelector: `${LABEL_EXPERIMENT}=${obj.metadata.name}`,
          })
        ).items;
    return new Map(
      items
        .filter((p) => p.metadata?.ownerReferences?.some((o) => o.uid === obj.metadata.uid))
        .map((p) => [p.metadata!.name!, p]),
    );
  }

  /** Pulls new samples from every prober pod into the experiment's store. */
  private async pull(obj: FailoverExperimentObject): Promise<SampleStore> {
    const uid = obj.metadata.uid!;
    let store = this.stores.get(uid);
    if (!store) {
      store = new SampleStore();
      this.stores.set(uid, store);
    }
    for (const [name, pod] of await this.pods(obj)) {
      if (!pod.status?.podIP) continue;
      const from = store.next.get(name) ?? 0;
      const page = await new ProberClient(pod.status.podIP).samplesFrom(from).catch(() => undefined);
      if (!page) continue;
      store.samples.push(...page.samples);
      store.next.set(name, page.next);
    }
    return store;
  }

  /**
   * The results ConfigMap `<name>-results`: `results.json`, and the HTML report rendered
   * from the samples (which the controller does not keep): `report.html` when it fits the
   * ConfigMap size limit, else gzipped as binaryData `report.html.gz`, else left out.
   */
  private async saveResults(
    obj: FailoverExperimentObject,
    results: Results,
    samples: readonly ProbeSample[],
  ): Promise<string> {
    const name = `${obj.metadata.name}-results`.slice(0, 253);
    const resultsJson = JSON.stringify(results);
    const report = reportPayload(
      renderReportHtml(results, samples),
      RESULTS_CONFIGMAP_BUDGET - Buffer.byteLength(resultsJson),
    );
    const body = {
      metadata: {
        name,
        namespace: obj.metadata.namespace,
        labels: { [LABEL_EXPERIMENT]: obj.metadata.name!, 'app.kubernetes.io/name': 'failwatch' },
        ownerReferences: [
          {
            apiVersion: obj.apiVersion,
            kind: obj.kind,
            name: obj.metadata.name!,
            uid: obj.metadata.uid!,
            controller: true,
          },
        ],
      },
      data: { 'results.json': resultsJson, ...report.data },
      ...(report.binaryData ? { binaryData: report.binaryData } : {}),
    };
    try {
      await this.deps.kube.core.createNamespacedConfigMap({ namespace: obj.metadata.namespace!, body });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      await this.deps.kube.core.replaceNamespacedConfigMap({
        name,
        namespace: obj.metadata.namespace!,
        body,
      });
    }
    return name;
  }

  private async writeStatus(
    obj: FailoverExperimentObject,
    status: FailoverExperimentStatus,
  ): Promise<FailoverExperimentObject> {
    // The body carries obj's resourceVersion: a write based on an old version fails (409).
    const body = { ...obj, status };
    const written = (await this.deps.kube.custom.replaceNamespacedCustomObjectStatus({
      ...experimentRef(obj.metadata.namespace!, obj.metadata.name!),
      body,
    })) as FailoverExperimentObject;
    this.written.wrote(obj, written);
    return written;
  }

  private async setBlocked(obj: FailoverExperimentObject, reason: string, message: string): Promise<void> {
    const current = obj.status?.conditions?.find((c) => c.type === 'Blocked');
    if (current?.status === 'True' && current.reason === reason && current.message === message) return;
    const status: FailoverExperimentStatus = { ...obj.status, phase: 'Pending' };
    setCondition(status, obj, { type: 'Blocked', status: 'True', reason, message });
    await this.writeStatus(obj, status);
    await this.deps.emitEvent(obj, 'Warning', reason, message);
  }

  private async fail(
    obj: FailoverExperimentObject,
    reason: string,
    message: string,
  ): Promise<ReconcileResult> {
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Failed',
      completionTime: new Date().toISOString(),
      observedGeneration: obj.status?.observedGeneration ?? obj.metadata.generation,
    };
    setCondition(status, obj, { type: 'Running', status: 'False', reason, message: message.slice(0, 2000) });
    setCondition(status, obj, { type: 'Failed', status: 'True', reason, message: message.slice(0, 2000) });
    await this.writeStatus(obj, status);
    await this.deps.emitEvent(obj, 'Warning', reason, message.slice(0, 1000));
    await this.cleanup(obj);
    return {};
  }

  /** Deletes the prober pods and releases the target lock. */
  private async cleanup(obj: FailoverExperimentObject): Promise<void> {
    const ns = obj.metadata.namespace!;
    for (const name of (await this.pods(obj)).keys())
      await this.deps.kube.core
        .deleteNamespacedPod({ name, namespace: ns, gracePeriodSeconds: 5 })
        .catch(() => {});
    const target = obj.status?.target ?? targetIdentifier(obj.spec) ?? `${ns}-${obj.metadata.name}`;
    await releaseTargetLock(
      this.deps.kube,
      this.deps.controllerNamespace,
      targetLeaseName(target),
      this.holder(obj),
    );
    this.stores.delete(obj.metadata.uid!);
    this.manifests.delete(obj.metadata.uid!);
    this.triggers.get(obj.metadata.uid!)?.close?.();
    this.triggers.delete(obj.metadata.uid!);
  }

  private async finalize(obj: FailoverExperimentObject): Promise<ReconcileResult | undefined> {
    if (!obj.metadata.finalizers?.includes(FINALIZER)) return undefined;
    await this.cleanup(obj);
    this.deps.onForget?.(obj.metadata.namespace!, obj.metadata.name!);
    this.written.forget(obj.metadata.uid);
    const finalizers = obj.metadata.finalizers.filter((f) => f !== FINALIZER);
    await this.deps.kube.custom
      .patchNamespacedCustomObject({
        ...experimentRef(obj.metadata.namespace!, obj.metadata.name!),
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion },
          { op: 'replace', path: '/metadata/finalizers', value: finalizers },
        ],
      })
      .catch((err) => {
        if (!isNotFound(err)) throw new Error(`removing the finalizer: ${apiErrorMessage(err)}`);
      });
    return undefined;
  }
}

/** Bytes of a ConfigMap's data left after metadata: the apiserver's limit is 1 MiB in all. */
const RESULTS_CONFIGMAP_BUDGET = 1_000_000;

/** The report as ConfigMap data: plain when it fits, gzipped when that fits, else nothing. */
export function reportPayload(
  html: string,
  budgetBytes: number,
): { data?: Record<string, string>; binaryData?: Record<string, string> } {
  if (Buffer.byteLength(html) <= budgetBytes) return { data: { 'report.html': html } };
  const gz = gzipSync(html).toString('base64');
  if (gz.length <= budgetBytes) return { binaryData: { 'report.html.gz': gz } };
  return {};
}

/**
 * How soon a blocked experiment looks again: quickly at first, then less often the longer
 * it has been blocked (at most every 5 min), so hundreds of experiments waiting for a
 * Secret do not flood the work queue and the API server. Up to 20% later at random, so
 * experiments blocked at the same moment (a controller restart) do not come back together.
 */
function blockedRetryMs(obj: FailoverExperimentObject, firstMs: number): number {
  const since = obj.status?.conditions?.find(
    (c) => c.type === 'Blocked' && c.status === 'True',
  )?.lastTransitionTime;
  const blockedForMs = since ? Date.now() - Date.parse(since) : 0;
  return Math.round(Math.min(300_000, Math.max(firstMs, blockedForMs / 2)) * (1 + 0.2 * Math.random()));
}

/** Sets a metav1.Condition, keeping lastTransitionTime when the status did not change. */
export function setCondition(
  status: FailoverExperimentStatus,
  obj: FailoverExperimentObject,
  c: Omit<ExperimentCondition, 'lastTransitionTime' | 'observedGeneration'>,
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
