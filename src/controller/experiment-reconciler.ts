// Reconciles one FailoverExperiment: level-based, idempotent, one phase step per call.
// Everything a later call needs is in the object's status (phase, times, the trigger
// record) or in the prober pods (samples), so a controller restart at any point resumes
// the run; the trigger record makes the failover call happen at most once.
import { createHash, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import type { AuditRow } from '../analysis/analyze-run.ts';
import { analyzeRunStreamed } from '../analysis/analyze-streamed.ts';
import { laneCoverageEnd } from '../analysis/coverage.ts';
import type { Results } from '../analysis/results.ts';
import { statusSummary } from '../analysis/status-summary.ts';
import { parseDurationMs } from '../api/duration.ts';
import type { FailoverExperimentSpec } from '../api/experiment-spec.ts';
import type { ExperimentPhase, FailoverExperimentStatus } from '../api/experiment-status.ts';
import { laneEndpoint, type ProberGroup, probeLanes, proberGroups } from '../api/probe-lanes.ts';
import { targetIdentifier } from '../api/spec-accessors.ts';
import {
  type ExperimentManifest,
  type Validation,
  validateExperimentManifest,
} from '../api/validate-experiment.ts';
import { DRY_RUN, dryRunMessage } from '../engine/dry-run.ts';
import {
  baselineLanes,
  PROBER_WARM_UP_MS,
  RecoveryTracker,
  specLanes,
  unhealthyBaselineMessage,
  unhealthyLanes,
} from '../engine/recovery.ts';
import { measurementMeta, setupReason } from '../engine/run-experiment.ts';
import { eventsForResults } from '../engine/trigger-protocol.ts';
import { renderReportHtmlOfLanes } from '../report/report-html.ts';
import type { FailoverTrigger } from '../trigger/types.ts';
import { TriggerError } from '../trigger/types.ts';
import {
  CLEARED_WHEN_ENDED,
  type ConditionType,
  endpointMessage,
  type FailureReason,
  type SetupFailureReason,
  setCondition,
} from './conditions.ts';
import {
  apiErrorMessage,
  experimentRef,
  FINALIZER,
  isConflict,
  isNotFound,
  type Kube,
  LABEL_EXPERIMENT,
  OwnWrites,
} from './kube.ts';
import { acquireTargetLock, releaseTargetLock, targetLeaseName } from './lease.ts';
import { ProberAccess, ProberAccessError } from './prober-access.ts';
import {
  caVolumeName,
  groupPodName,
  ProberClient,
  proberPod,
  setupHint,
  unscheduledHint,
} from './prober-pods.ts';
import { replaceLostProbers } from './prober-replacement.ts';
import { ProberSamples } from './prober-samples.ts';
import { ProberSecretProblems, type SecretProblem } from './prober-secret-problems.ts';
import { reportLanesOf } from './report-lanes.ts';
import { type TargetPolicy, targetArnProblem, targetPolicyProblem } from './target-policy.ts';
import { TriggerPhases } from './trigger-phases.ts';
import { verdictCondition } from './verdict-condition.ts';
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
   * Where pulled samples are kept in compact files during a run, a directory per experiment
   * (default `<tmpdir>/failwatch-samples`; the chart mounts an emptyDir there).
   */
  sampleDir?: string;
  /**
   * Targets this controller may fail over (`[region/]identifier` globs; empty or absent: any)
   * and whether spec.target.rdsEndpoint is honoured (src/controller/target-policy.ts).
   */
  targetPolicy?: TargetPolicy;
  /** The prober pods' run tokens and NetworkPolicies (default: tokens only). */
  proberAccess?: ProberAccess;
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
    info?(fields: Record<string, unknown>, message: string): void;
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

class RunFailed extends Error {
  readonly reason: FailureReason;
  constructor(reason: FailureReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** How long after its end the baseline waits for a prober whose samples cannot be pulled. */
const BASELINE_PULL_GRACE_MS = 30_000;

export class ExperimentReconciler {
  private readonly deps: ReconcilerDeps;
  /** Samples pulled from the prober pods, per experiment uid (rebuilt from the pods after a restart). */
  private readonly stores = new Map<string, ProberSamples>();
  private readonly triggers = new Map<string, FailoverTrigger>();
  /** The Triggering and Observing phases: the trigger protocol (trigger-phases.ts). */
  private readonly triggerPhases: TriggerPhases;
  /** What our own writes returned, while the informer's cache is behind them. */
  private readonly written = new OwnWrites<FailoverExperimentObject>();
  /**
   * Valid specs (defaults applied) by uid, with the generation they were validated at: a
   * generation's spec never changes, and validating is by far the costliest part of a pass
   * that only looks again (hundreds of experiments waiting for a Secret).
   */
  private readonly manifests = new Map<string, { generation: number; manifest: ExperimentManifest }>();
  private readonly access: ProberAccess;
  private readonly secrets: ProberSecretProblems;

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
    this.triggerPhases = new TriggerPhases({
      trigger: (obj, manifest) => this.trigger(obj, manifest),
      writeStatus: (obj, status) => this.writeStatus(obj, status),
      fail: (obj, reason, message) => this.fail(obj, reason, message),
      emitEvent: (...args) => deps.emitEvent(...args),
      observeSamples: async (obj, manifest, t0Ms) => {
        const pods = await this.pods(obj);
        const store = this.store(obj);
        const { tracker, roleFlips } = await store.observe(
          t0Ms,
          () => new RecoveryTracker(specLanes(probeLanes(manifest.spec).map(laneEndpoint)), t0Ms),
        );
        await this.pull(obj, pods);
        await this.replaceLostProbers(obj, manifest, pods);
        return { tracker, roleFlips, newestEndMs: store.newestEndMs };
      },
      observationEnded: (obj, recoveredThroughMs) => {
        this.store(obj).recoveredThroughMs = recoveredThroughMs;
      },
      log: deps.log,
      pollMs: deps.pollMs ?? 1000,
    });
    this.access = deps.proberAccess ?? new ProberAccess(deps.kube, deps.controllerNamespace);
    this.secrets = new ProberSecretProblems(deps.kube);
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    try {
      return await this.reconcileOnce(key);
    } catch (err) {
      // Our write was based on an old version (someone else wrote, or the cache was behind):
      // nothing was written; the watch event of the newer version brings the key back.
      if (!isConflict(err)) throw err;
      this.deps.log?.debug?.({ experiment: key }, 'status write conflicted; looking again');
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
          return await this.triggerPhases.triggering(obj, manifest);
        case 'Observing':
          return await this.triggerPhases.observing(obj, manifest);
        case 'Analyzing':
          return await this.analyzing(obj, manifest);
        default:
          return undefined;
      }
    } catch (err) {
      if (err instanceof RunFailed) return this.fail(obj, err.reason, err.message);
      if (err instanceof TriggerError) return this.fail(obj, err.reason, err.message);
      if (err instanceof ProberAccessError) return this.fail(obj, err.reason, err.message);
      throw err;
    }
  }

  // ---- phases ----

  private async pending(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
  ): Promise<ReconcileResult> {
    // First sight: `kubectl get` shows Pending at once, not an empty PHASE. The next pass
    // goes on from the written object.
    if (!obj.status?.phase) {
      await this.writeStatus(obj, { ...obj.status, phase: 'Pending' });
      return { requeueAfterMs: 0 };
    }
    const identifier = targetIdentifier(manifest.spec);
    const refused = targetPolicyProblem(manifest.spec, this.deps.targetPolicy ?? {});
    if (refused) throw new RunFailed(refused.reason, refused.message);
    const target = identifier ?? `${obj.metadata.namespace}-${obj.metadata.name}`;
    // A missing Secret or key shows in the prober pods' status (preflight), not by reading it.
    for (const endpoint of manifest.spec.endpoints)
      if (!endpoint.credentials.secretRef && !endpoint.credentials.iam)
        throw new RunFailed(
          'CredentialsMissing',
          endpointMessage(endpoint.name, 'credentials.secretRef is required in Kubernetes'),
        );
    // Blocked on a Secret: the waiting pods say when it is there (their change wakes this up).
    const blocked = obj.status?.conditions?.find((c) => c.type === 'Blocked' && c.status === 'True');
    if (blocked?.reason === 'SecretNotFound' || blocked?.reason === 'SecretKeyNotFound') {
      const pods = await this.pods(obj);
      for (const group of proberGroups(manifest.spec)) {
        const pod = pods.get(groupPodName(obj.metadata.name!, group));
        const found = pod && (await this.secretProblem(pod, group));
        if (found) {
          await this.setBlocked(
            obj,
            found.problem.reason,
            endpointMessage(found.endpoint, found.problem.message),
          );
          return { requeueAfterMs: blockedRetryMs(obj, 10_000) };
        }
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
      reason: undefined,
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
    const identity = {
      namespace: ns,
      name: obj.metadata.name!,
      uid: obj.metadata.uid!,
      runId,
      targetRegion: manifest.spec.target?.region,
    };
    const tokenRef = await this.access.prepare(identity);
    const token = await this.access.token(identity);
    const groups = proberGroups(manifest.spec);
    const lanes = groups.flatMap((group) => group.lanes);
    for (const group of groups) {
      const podName = groupPodName(obj.metadata.name!, group);
      if (pods.has(podName)) continue;
      const pod = proberPod(identity, group, this.deps.proberImage, tokenRef);
      await kube.core.createNamespacedPod({ namespace: ns, body: pod }).catch((err) => {
        if ((err as { code?: number }).code !== 409) throw err;
      });
    }
    let ready = 0;
    // How long the last prober to start has probed, by its own clock (pods' clocks may differ
    // from ours); Infinity when no prober says.
    let probedMs = Number.POSITIVE_INFINITY;
    for (const group of groups) {
      const pod = pods.get(groupPodName(obj.metadata.name!, group));
      const podIp = pod?.status?.podIP;
      const named = group.lanes.map((lane) => lane.name).join(', ');
      const found = pod && (await this.secretProblem(pod, group));
      if (found) {
        // Waiting for a Secret must not hold the target's lock: back to Pending. The pods stay
        // (they cannot start without the Secret; the kubelet starts them once it exists).
        await this.releaseLock(obj);
        await this.setBlocked(
          obj,
          found.problem.reason,
          endpointMessage(found.endpoint, found.problem.message),
        );
        return { requeueAfterMs: blockedRetryMs(obj, 10_000) };
      }
      const waiting = pod?.status?.containerStatuses?.[0]?.state?.waiting;
      if (waiting?.reason === 'CreateContainerConfigError')
        throw new RunFailed(
          'SecretKeyNotFound',
          endpointMessage(named, waiting.message ?? 'the Secret cannot be used'),
        );
      if (pod?.status?.phase === 'Failed' || pod?.status?.phase === 'Succeeded')
        throw new RunFailed('ProberFailed', endpointMessage(named, `prober pod ended (${pod.status.phase})`));
      if (!pod || !podIp || pod.status?.phase !== 'Running') continue;
      for (const [index, [, client]] of ProberClient.ofPod(pod, token).entries()) {
        const endpoint = laneEndpoint(group.lanes[index]!);
        const st = await client.status().catch(() => undefined);
        // A configuration error fails at once; a network one (the machine or the endpoint busy
        // for a moment) only once the prober's own retries (every 5 s) keep failing.
        const definitive = SETUP_FAILS_AT_ONCE.has(st?.class ?? '');
        if (
          st?.state === 'setup-failed' &&
          (definitive || (st.setupAttempts ?? 1) >= SETUP_ATTEMPTS_BEFORE_FAILING)
        )
          throw new RunFailed(
            setupReason(st.class ?? 'other') as SetupFailureReason,
            `${endpointMessage(endpoint.name, st.message ?? st.class ?? 'setup failed')} (${setupHint(endpoint, st.class)})`,
          );
        if (st?.state === 'probing') {
          ready++;
          const elapsed = Date.parse(st.now ?? '') - Date.parse(st.startedAt ?? '');
          if (Number.isFinite(elapsed)) probedMs = Math.min(probedMs, Math.max(0, elapsed));
        }
      }
    }
    if (ready < lanes.length) {
      const started = Date.parse(obj.status!.startTime!);
      if (Date.now() - started > (this.deps.preflightTimeoutMs ?? 120_000))
        throw new RunFailed(
          'ProbersNotReady',
          `${ready} of ${lanes.length} probers (in ${groups.length} pods) became ready in time${unscheduledHint(pods.values())}`,
        );
      return { requeueAfterMs: 500 };
    }
    // The last prober to start gets its warm-up before the baseline judges it.
    const warming = PROBER_WARM_UP_MS - probedMs;
    if (warming > 0) return { requeueAfterMs: warming };
    try {
      const state = await this.trigger(obj, manifest).preflight();
      // The allowlist's account part: known only now, from the target's ARN.
      const refused = state?.arn ? targetArnProblem(state.arn, this.deps.targetPolicy ?? {}) : undefined;
      if (refused) throw new RunFailed(refused.reason, refused.message);
    } catch (err) {
      // Throttling or an unreachable RDS API: look again until the preflight timeout.
      const started = Date.parse(obj.status!.startTime!);
      const waiting = Date.now() - started <= (this.deps.preflightTimeoutMs ?? 120_000);
      if (err instanceof TriggerError && err.transient && waiting) return { requeueAfterMs: 2000 };
      throw err;
    }
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Baseline',
      baselineStartTime: new Date().toISOString(),
    };
    setCondition(status, obj, {
      type: 'ProbersReady',
      status: 'True',
      reason: 'Probing',
      message: `${ready} probers probing`,
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
    const baselineMs = parseDurationMs(manifest.spec.baseline.duration);
    const remaining = startedMs + baselineMs - Date.now();
    if (remaining > 0) return { requeueAfterMs: remaining };
    // The baseline is judged on every prober's samples to its end: a pod that ended, or whose
    // samples cannot be pulled, is the prober's problem, not the database's.
    const pods = await this.pods(obj);
    for (const pod of pods.values())
      if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded')
        throw new RunFailed(
          'ProberFailed',
          `prober pod ${pod.metadata!.name} ended (${pod.status.phase}) during the baseline; nothing was triggered`,
        );
    const store = this.store(obj);
    const pulled = await store.pull(pods.values(), await this.proberToken(obj), this.deps.log);
    const unpulled = [...pods.values()]
      .filter((p) => !pulled.has(p.metadata!.uid!))
      .map((p) => p.metadata!.name);
    if (unpulled.length > 0) {
      if (-remaining < BASELINE_PULL_GRACE_MS) return { requeueAfterMs: 2000 };
      throw new RunFailed(
        'ProberFailed',
        `the samples of prober pod ${unpulled.join(', ')} could not be pulled for ${BASELINE_PULL_GRACE_MS / 1000} s after the baseline (see the controller's log); nothing was triggered`,
      );
    }
    const health = store.baselineHealth(
      baselineLanes(probeLanes(manifest.spec).map(laneEndpoint), baselineMs),
    );
    const unhealthy = unhealthyLanes(health, manifest.spec.baseline.maxErrorRatio);
    if (unhealthy.length > 0) throw new RunFailed('BaselineUnhealthy', unhealthyBaselineMessage(unhealthy));
    if (manifest.spec.dryRun === true) return this.completeDryRun(obj, dryRunMessage(health));
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

  /** One trigger (one SDK client) per experiment, closed at cleanup. */
  private trigger(obj: FailoverExperimentObject, manifest: ExperimentManifest): FailoverTrigger {
    const uid = obj.metadata.uid!;
    let t = this.triggers.get(uid);
    if (!t) {
      // Checked in Pending too; again here for a run that a controller with other flags began.
      const refused = targetPolicyProblem(manifest.spec, this.deps.targetPolicy ?? {});
      if (refused) throw new RunFailed(refused.reason, refused.message);
      t = this.deps.triggerFor(manifest);
      this.triggers.set(uid, t);
    }
    return t;
  }

  private async analyzing(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
  ): Promise<ReconcileResult> {
    const pods = await this.pods(obj);
    const token = await this.proberToken(obj);
    const clients = [...pods.values()]
      .filter((p) => p.status?.podIP && p.status.phase === 'Running')
      .flatMap((p) => ProberClient.ofPod(p, token).map(([lane, client]) => [p, lane, client] as const));
    // Each lane's coverage ends where its observation did (laneCoverageEnd): when its prober was
    // asked to stop, or stopped by its own clock, and no later than what the pass that ended
    // observation proved for every lane (kept in memory by this process).
    const { recoveredThroughMs } = this.store(obj);
    const askedMs = Date.now();
    await Promise.all(clients.map(([, , c]) => c.stop().catch(() => {})));
    const store = await this.pull(obj, pods);
    const stopped = await Promise.all(clients.map(([, , c]) => c.status().catch(() => undefined)));
    const stopByLane = new Map<string, number>();
    for (const [i, [pod, lane]] of clients.entries()) {
      // A pod being deleted stopped itself on SIGTERM: a lost prober, not the end of observation.
      if (pod.metadata?.deletionTimestamp) continue;
      const at = Date.parse(stopped[i]?.stopRequestedAt ?? '');
      if (Number.isFinite(at)) stopByLane.set(lane, Math.max(stopByLane.get(lane) ?? at, at));
    }
    const coverageEndMs = laneCoverageEnd(askedMs, undefined, recoveredThroughMs);
    const coverageEndByEndpointMs = Object.fromEntries(
      [...stopByLane].map(([lane, at]) => [lane, laneCoverageEnd(askedMs, at, recoveredThroughMs)]),
    );
    const trigger = this.trigger(obj, manifest);
    const baselineStartMs = Date.parse(obj.status!.baselineStartTime!);
    const t0Ms = Date.parse(obj.status!.triggerTime!);
    const events = await eventsForResults(trigger, baselineStartMs - 60_000, Date.now() + 1000);
    const results = await analyzeRunStreamed(
      measurementMeta({
        manifest,
        lanes: probeLanes(manifest.spec),
        runId: obj.status!.runId!,
        baselineStartMs,
        fired: { t0Ms, action: obj.status?.trigger?.action ?? trigger.description },
        observeEndMs: Math.max(t0Ms, store.newestEndMs),
        coverageEndMs,
        coverageEndByEndpointMs,
        events,
        auditRows: undefined,
        droppedSamples: store.droppedByEndpoint(),
        inconclusive: this.triggerPhases.notObservedFindings(obj, manifest),
      }),
      (endpoint) => store.spill.lanesOf(endpoint),
      // One endpoint's read-back rows at a time (a long run has millions).
      async (endpoint) =>
        manifest.spec.audit.lostWrites ? await this.auditEndpoint(manifest, endpoint, clients) : undefined,
    );
    if (process.env.FAILWATCH_FAULT_INJECT === 'exit-before-results') process.exit(137);
    const { name: resultsName, reportSha256 } = await this.saveResults(obj, results, store);
    const summary = statusSummary(results);
    const status: FailoverExperimentStatus = {
      ...obj.status,
      ...summary,
      phase: 'Completed',
      reason: undefined,
      completionTime: new Date().toISOString(),
      resultsRef: { configMapName: resultsName, ...(reportSha256 ? { reportSha256 } : {}) },
    };
    clearEndedConditions(status);
    setCondition(status, obj, {
      type: 'Running',
      status: 'False',
      reason: 'Completed',
      message: 'the run completed',
    });
    const outcome = verdictCondition(results.verdict.result);
    setCondition(status, obj, {
      type: 'Passed',
      status: outcome.status,
      reason: outcome.reason,
      message: results.verdict.reasons.join('; ').slice(0, 1000) || 'every SLO held',
    });
    await this.writeStatus(obj, status);
    this.deps.log?.info?.(
      {
        experiment: experimentKey(obj),
        verdict: results.verdict.result,
        worstDowntimeSeconds: summary.worstDowntimeSeconds,
        endpoints: Object.fromEntries(
          (summary.endpoints ?? []).map((e) => [
            e.name,
            { writeDowntimeSeconds: e.writeDowntimeSeconds, readDowntimeSeconds: e.readDowntimeSeconds },
          ]),
        ),
        verdictReasons: results.verdict.reasons,
      },
      'run completed',
    );
    this.deps.onResults?.(obj, results);
    await this.deps.emitEvent(
      obj,
      results.verdict.result === 'Pass' ? 'Normal' : 'Warning',
      outcome.eventReason,
      `worst downtime ${(summary.worstDowntimeSeconds ?? 0).toFixed(3)} s; ${results.verdict.reasons.join('; ') || 'every SLO held'}`.slice(
        0,
        1000,
      ),
    );
    await this.cleanup(obj);
    return {};
  }

  /** spec.dryRun: a healthy baseline ends the run before the trigger, with verdict DryRun. */
  private async completeDryRun(obj: FailoverExperimentObject, message: string): Promise<ReconcileResult> {
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Completed',
      verdict: DRY_RUN,
      completionTime: new Date().toISOString(),
    };
    clearEndedConditions(status);
    setCondition(status, obj, { type: 'Running', status: 'False', reason: DRY_RUN, message });
    await this.writeStatus(obj, status);
    await this.deps.emitEvent(obj, 'Normal', DRY_RUN, message.slice(0, 1000));
    await this.cleanup(obj);
    return {};
  }

  // ---- helpers ----

  /**
   * A missing Secret or key of a prober pod, and the endpoint it belongs to: in a pod of several
   * endpoints, the first whose credentials or CA Secret the kubelet's message names.
   */
  private async secretProblem(
    pod: V1Pod,
    group: ProberGroup,
  ): Promise<{ problem: SecretProblem; endpoint: string } | undefined> {
    let first: { problem: SecretProblem; endpoint: string } | undefined;
    for (const [index, lane] of group.lanes.entries()) {
      const endpoint = laneEndpoint(lane);
      const problem = await this.secrets.problem(pod, endpoint, caVolumeName(index));
      if (!problem) continue;
      const found = { problem, endpoint: endpoint.name };
      const names = [endpoint.credentials.secretRef?.name, endpoint.tls.caSecretRef?.name];
      if (group.lanes.length === 1 || names.some((n) => n && problem.message.includes(`Secret ${n} `)))
        return found;
      first ??= found;
    }
    return first;
  }

  /**
   * The lane's probe rows read back after recovery (every generation of its prober shares run id and lane): [] without a write probe, undefined
   * when no prober of the endpoint could read them (its lost writes are then unknown).
   */
  private async auditEndpoint(
    manifest: ExperimentManifest,
    name: string,
    clients: readonly (readonly [V1Pod, string, ProberClient])[],
  ): Promise<AuditRow[] | undefined> {
    const lane = probeLanes(manifest.spec).find((l) => l.name === name);
    if (!lane?.endpoint.probes.includes('write')) return [];
    for (const [pod, podLane, client] of clients) {
      if (podLane !== name) continue;
      try {
        return (await client.audit()).map((r) => ({ ...r, endpoint: name }));
      } catch (err) {
        this.deps.log?.warn(
          { endpoint: name, pod: pod.metadata?.name, error: (err as Error).message },
          'write read-back failed',
        );
      }
    }
    return undefined;
  }

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

  /** The run's token for the prober API (derived again after a restart). */
  private proberToken(obj: FailoverExperimentObject): Promise<string> {
    return this.access.token({ uid: obj.metadata.uid! });
  }

  private sampleDir(uid: string): string {
    return join(this.deps.sampleDir ?? join(tmpdir(), 'failwatch-samples'), uid);
  }

  /** The experiment's samples (running state and spill files), made at its first use. */
  private store(obj: FailoverExperimentObject): ProberSamples {
    const uid = obj.metadata.uid!;
    let store = this.stores.get(uid);
    if (!store) {
      store = new ProberSamples(this.sampleDir(uid), Date.parse(obj.status?.baselineStartTime ?? '') || 0);
      this.stores.set(uid, store);
    }
    return store;
  }

  /** Pulls new samples from every prober pod into the experiment's store. */
  private async pull(obj: FailoverExperimentObject, pods?: Map<string, V1Pod>): Promise<ProberSamples> {
    const store = this.store(obj);
    const token = await this.proberToken(obj);
    await store.pull((pods ?? (await this.pods(obj))).values(), token, this.deps.log);
    return store;
  }

  /** Replaces prober pods lost during observation (prober-replacement.ts). */
  private async replaceLostProbers(
    obj: FailoverExperimentObject,
    manifest: ExperimentManifest,
    pods: Map<string, V1Pod>,
  ): Promise<void> {
    const ns = obj.metadata.namespace!;
    const identity = {
      namespace: ns,
      name: obj.metadata.name!,
      uid: obj.metadata.uid!,
      runId: obj.status!.runId!,
      targetRegion: manifest.spec.target?.region,
    };
    await replaceLostProbers(
      identity,
      proberGroups(manifest.spec),
      pods.values(),
      this.deps.proberImage,
      await this.access.prepare(identity),
      Date.parse(obj.status!.startTime!),
      {
        createPod: async (body) => {
          await this.deps.kube.core.createNamespacedPod({ namespace: ns, body });
        },
        onReplaced: (lane, pod, lost) =>
          this.deps.emitEvent(
            obj,
            'Warning',
            'ProberReplaced',
            `${lane.includes(',') ? 'endpoints' : 'endpoint'} ${lane}: prober pod ${lost.map((p) => `${p.metadata?.name} (${p.metadata?.deletionTimestamp ? 'deleted' : (p.status?.phase ?? 'gone')})`).join(', ') || 'gone'} replaced by ${pod.metadata?.name}; the time without a prober is a coverage gap`,
          ),
      },
    );
  }

  /**
   * The results ConfigMap `<name>-results`: `results.json`, and the HTML report rendered
   * from the samples (which the controller does not keep): `report.html` when it fits the
   * ConfigMap size limit, else gzipped as binaryData `report.html.gz`, else left out.
   */
  private async saveResults(
    obj: FailoverExperimentObject,
    results: Results,
    store: ProberSamples,
  ): Promise<{ name: string; reportSha256?: string }> {
    const name = `${obj.metadata.name}-results`.slice(0, 253);
    const resultsJson = JSON.stringify(results);
    const html = renderReportHtmlOfLanes(results, await reportLanesOf(results, store.spill));
    const report = reportPayload(html, RESULTS_CONFIGMAP_BUDGET - Buffer.byteLength(resultsJson));
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
    // The ConfigMap is writable by the namespace's users; the status digest is not (status
    // subresource): the report pages serve the stored HTML only while it matches.
    const stored = report.data?.['report.html'] !== undefined || report.binaryData !== undefined;
    return stored ? { name, reportSha256: sha256Hex(html) } : { name };
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
    if (status.phase !== obj.status?.phase)
      this.deps.log?.info?.(
        {
          experiment: experimentKey(obj),
          phase: status.phase,
          previousPhase: obj.status?.phase,
          ...(status.reason ? { reason: status.reason } : {}),
        },
        `phase ${status.phase}`,
      );
    return written;
  }

  private async setBlocked(
    obj: FailoverExperimentObject,
    reason: 'SecretNotFound' | 'SecretKeyNotFound' | 'TargetLocked',
    message: string,
  ): Promise<void> {
    const current = obj.status?.conditions?.find((c) => c.type === 'Blocked');
    if (current?.status === 'True' && current.reason === reason && current.message === message) return;
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Pending',
      reason,
      conditions: obj.status?.conditions?.filter((c) => c.type !== 'Running'),
    };
    setCondition(status, obj, { type: 'Blocked', status: 'True', reason, message });
    await this.writeStatus(obj, status);
    // One log line and Event per wait (not per message: which endpoint's pod tells it first varies).
    if (current?.status === 'True' && current.reason === reason) return;
    this.deps.log?.info?.({ experiment: experimentKey(obj), reason, message }, 'waiting');
    await this.deps.emitEvent(obj, 'Warning', reason, message);
  }

  private async fail(
    obj: FailoverExperimentObject,
    reason: FailureReason,
    message: string,
  ): Promise<ReconcileResult> {
    const status: FailoverExperimentStatus = {
      ...obj.status,
      phase: 'Failed',
      reason,
      completionTime: new Date().toISOString(),
      observedGeneration: obj.status?.observedGeneration ?? obj.metadata.generation,
    };
    setCondition(status, obj, { type: 'Running', status: 'False', reason, message: message.slice(0, 2000) });
    setCondition(status, obj, { type: 'Failed', status: 'True', reason, message: message.slice(0, 2000) });
    clearEndedConditions(status);
    await this.writeStatus(obj, status);
    this.deps.log?.warn(
      { experiment: experimentKey(obj), reason, message: message.slice(0, 2000) },
      'run failed',
    );
    await this.deps.emitEvent(obj, 'Warning', reason, message.slice(0, 1000));
    await this.cleanup(obj);
    return {};
  }

  private async releaseLock(obj: FailoverExperimentObject): Promise<void> {
    const target =
      obj.status?.target ?? targetIdentifier(obj.spec) ?? `${obj.metadata.namespace}-${obj.metadata.name}`;
    await releaseTargetLock(
      this.deps.kube,
      this.deps.controllerNamespace,
      targetLeaseName(target),
      this.holder(obj),
    );
  }

  /** Deletes the prober pods and releases the target lock. */
  private async cleanup(obj: FailoverExperimentObject): Promise<void> {
    const ns = obj.metadata.namespace!;
    for (const name of (await this.pods(obj)).keys())
      await this.deps.kube.core
        .deleteNamespacedPod({ name, namespace: ns, gracePeriodSeconds: 5 })
        .catch(() => {});
    await this.releaseLock(obj);
    // Also when this process never pulled for it (a run that ended while another one led).
    rmSync(this.sampleDir(obj.metadata.uid!), { recursive: true, force: true });
    this.stores.delete(obj.metadata.uid!);
    this.manifests.delete(obj.metadata.uid!);
    this.access.forget(obj.metadata.uid!);
    this.triggers.get(obj.metadata.uid!)?.close?.();
    this.triggers.delete(obj.metadata.uid!);
    this.triggerPhases.forget(obj.metadata.uid!);
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

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
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

/** `NS/NAME`, the `experiment` field of every log line about a run (docs/troubleshooting.md). */
function experimentKey(obj: FailoverExperimentObject): string {
  return `${obj.metadata.namespace}/${obj.metadata.name}`;
}

/** Drops the conditions that stop being true when a run ends (Blocked=False LockHeld, ...). */
function clearEndedConditions(status: FailoverExperimentStatus): void {
  status.conditions = status.conditions?.filter((c) => !CLEARED_WHEN_ENDED.includes(c.type as ConditionType));
}
