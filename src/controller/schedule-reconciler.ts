// Reconciles one FailoverSchedule: level-based and idempotent, like CronJob's controller. It
// lists the schedule's runs (FailoverExperiments it owns), deletes finished ones beyond the
// history limits, creates at most one run per tick (none while one is active, no backfill),
// and writes status, Events and metrics. Time comes from `now()`, so tests drive the clock.
// The target Lease of the experiment controller serialises runs on one database, whichever
// schedule (or person) created them.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, EXPERIMENT_KIND } from '../api/experiment-spec.ts';
import type { FailoverExperimentStatus } from '../api/experiment-status.ts';
import {
  type FailoverScheduleSpec,
  type FailoverScheduleStatus,
  SCHEDULE_KIND,
  SCHEDULE_PLURAL,
  type ScheduleCondition,
  STATUS_RUNS_LIMIT,
} from '../api/schedule-spec.ts';
import { childName, type RunRecord, regressionSignal, runsToPrune, sortRuns } from '../schedule/history.ts';
import { type CompiledSchedule, compileSchedule, planSchedule } from '../schedule/plan.ts';
import { timeToGo } from '../schedule/time-to-go.ts';
import type { ScheduleMetrics } from '../server/metrics.ts';
import { apiErrorMessage, EXPERIMENT_PLURAL, isAlreadyExists, isNotFound, type Kube } from './kube.ts';
import type { ReconcileResult } from './workqueue.ts';

export const LABEL_SCHEDULE = 'failwatch.io/schedule';
export const ANNOTATION_SCHEDULED_TIME = 'failwatch.io/scheduled-time';

export interface FailoverScheduleObject {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta;
  spec: FailoverScheduleSpec;
  status?: FailoverScheduleStatus;
}

interface ExperimentChild {
  metadata: V1ObjectMeta;
  status?: FailoverExperimentStatus;
}

export interface ScheduleReconcilerDeps {
  kube: Kube;
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now(): number;
  emitEvent(
    obj: FailoverScheduleObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void>;
  metrics?: ScheduleMetrics;
  /** Upper bound of the wait for the next tick (a fake clock may jump, so tests poll often). */
  maxRequeueMs?: number;
}

export const scheduleRef = (namespace: string, name: string) => ({
  group: API_GROUP,
  version: API_VERSION,
  plural: SCHEDULE_PLURAL,
  namespace,
  name,
});

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export class ScheduleReconciler {
  private readonly deps: ScheduleReconcilerDeps;

  constructor(deps: ScheduleReconcilerDeps) {
    this.deps = deps;
  }

  async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const [namespace, name] = key.split('/') as [string, string];
    const { kube } = this.deps;
    let obj: FailoverScheduleObject;
    try {
      obj = (await kube.custom.getNamespacedCustomObject(
        scheduleRef(namespace, name),
      )) as FailoverScheduleObject;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.deps.metrics?.forgetSchedule(namespace, name);
      return undefined; // its runs go with it: the garbage collector follows ownerReferences
    }
    if (obj.metadata.deletionTimestamp) return undefined;
    const nowMs = this.deps.now();
    const spec = obj.spec;

    let runs: RunWithEndpoints[] = await this.listRuns(obj);
    for (const victim of runsToPrune(runs, spec)) {
      await kube.custom
        .deleteNamespacedCustomObject({
          group: API_GROUP,
          version: API_VERSION,
          plural: EXPERIMENT_PLURAL,
          namespace,
          name: victim,
          propagationPolicy: 'Background',
        })
        .catch((err) => {
          if (!isNotFound(err)) throw err;
        });
      runs = runs.filter((r) => r.name !== victim);
    }

    const status: FailoverScheduleStatus = { ...obj.status, observedGeneration: obj.metadata.generation };
    let compiled: CompiledSchedule;
    try {
      compiled = compileSchedule(spec);
    } catch (err) {
      const message = `${(err as Error).message}`;
      if (obj.status?.conditions?.find((c) => c.type === 'Ready')?.message !== message)
        await this.deps.emitEvent(obj, 'Warning', 'InvalidSchedule', message);
      setCondition(status, obj, nowMs, {
        type: 'Ready',
        status: 'False',
        reason: 'InvalidSchedule',
        message,
      });
      delete status.nextScheduleTime;
      delete status.nextRunIn;
      this.summarise(status, obj, runs, undefined, nowMs);
      await this.writeStatus(obj, status);
      return undefined; // a spec change (new generation) wakes us up again
    }

    // Idempotent across a failed status write: a run that exists marks its tick as handled.
    const createdMs = Date.parse(obj.metadata.creationTimestamp as unknown as string);
    const lastHandledMs = Math.max(
      status.lastHandledTime ? Date.parse(status.lastHandledTime) : createdMs,
      ...runs.map((r) => r.scheduledMs),
    );
    const active = runs.filter((r) => r.outcome === 'Running');
    const plan = planSchedule({
      schedule: compiled,
      nowMs,
      lastHandledMs,
      startingDeadlineSeconds: spec.startingDeadlineSeconds,
      suspended: spec.suspend,
      hasActiveRun: active.length > 0,
    });
    const action = plan.action;
    const tickIso = 'tickMs' in action ? iso(action.tickMs)! : undefined;
    if (action.kind !== 'wait') status.lastHandledTime = tickIso;
    if (action.kind === 'run') {
      const child = await this.createRun(obj, action.tickMs);
      runs.push({ name: child, scheduledMs: action.tickMs, outcome: 'Running' });
      status.lastScheduleTime = tickIso;
      const late = action.lateMs >= 60_000 ? ` (${Math.round(action.lateMs / 1000)}s late)` : '';
      await this.deps.emitEvent(
        obj,
        'Normal',
        'SuccessfulCreate',
        `created run ${child} for ${tickIso}${late}`,
      );
      if (plan.missedTicks > 0) {
        this.deps.metrics?.countSkipped(namespace, name, 'missed', plan.missedTicks);
        await this.deps.emitEvent(
          obj,
          'Warning',
          'MissedSchedule',
          `${plan.missedTicks} earlier tick(s) were missed and are not backfilled; only the latest (${tickIso}) runs`,
        );
      }
    } else if (action.kind === 'skip-active') {
      this.deps.metrics?.countSkipped(namespace, name, 'active-run');
      await this.deps.emitEvent(
        obj,
        'Normal',
        'SkippedActiveRun',
        `tick ${tickIso} skipped: run ${active.map((r) => r.name).join(', ')} is still active (runs never overlap)`,
      );
    } else if (action.kind === 'missed') {
      this.deps.metrics?.countSkipped(namespace, name, 'missed', action.missedTicks);
      await this.deps.emitEvent(
        obj,
        'Warning',
        'MissedSchedule',
        `missed ${action.missedTicks} tick(s), the latest at ${tickIso}, ${Math.round((nowMs - action.tickMs) / 1000)}s ago: later than startingDeadlineSeconds (${spec.startingDeadlineSeconds}); not run, next at ${iso(plan.nextTickMs) ?? 'never'}`,
      );
    }

    const nextMs = spec.suspend ? undefined : plan.nextTickMs;
    status.nextScheduleTime = iso(nextMs);
    status.nextRunIn = nextMs === undefined ? undefined : timeToGo(nowMs, nextMs);
    if (nextMs === undefined) {
      delete status.nextScheduleTime;
      delete status.nextRunIn;
    }
    setCondition(
      status,
      obj,
      nowMs,
      spec.suspend
        ? {
            // Suspended on purpose is not a failure: Ready=False would show as degraded in
            // GitOps tools. The reason says it.
            type: 'Ready',
            status: 'True',
            reason: 'Suspended',
            message: 'spec.suspend is true: no new runs until it is false again',
          }
        : nextMs === undefined
          ? {
              type: 'Ready',
              status: 'False',
              reason: 'NoFutureTick',
              message: 'no tick of the schedule falls inside the windows in the next 8 years',
            }
          : { type: 'Ready', status: 'True', reason: 'Scheduled', message: `next run at ${iso(nextMs)}` },
    );
    this.summarise(status, obj, runs, nextMs, nowMs);
    await this.writeStatus(obj, status);
    if (nextMs === undefined) return undefined;
    return { requeueAfterMs: Math.min(Math.max(nextMs - nowMs, 0) + 100, this.deps.maxRequeueMs ?? 60_000) };
  }

  /** The runs this schedule owns (label plus ownerReference uid). */
  private async listRuns(obj: FailoverScheduleObject): Promise<RunWithEndpoints[]> {
    const list = (await this.deps.kube.custom.listNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      plural: EXPERIMENT_PLURAL,
      namespace: obj.metadata.namespace!,
      labelSelector: `${LABEL_SCHEDULE}=${obj.metadata.name}`,
    })) as { items: ExperimentChild[] };
    return list.items
      .filter((c) => c.metadata.ownerReferences?.some((o) => o.uid === obj.metadata.uid))
      .map(runRecord);
  }

  private async createRun(obj: FailoverScheduleObject, tickMs: number): Promise<string> {
    const name = childName(obj.metadata.name!, tickMs);
    const template = obj.spec.experimentTemplate;
    const body = {
      apiVersion: `${API_GROUP}/${API_VERSION}`,
      kind: EXPERIMENT_KIND,
      metadata: {
        name,
        namespace: obj.metadata.namespace,
        labels: { ...template.metadata?.labels, [LABEL_SCHEDULE]: obj.metadata.name! },
        annotations: { ...template.metadata?.annotations, [ANNOTATION_SCHEDULED_TIME]: iso(tickMs)! },
        ownerReferences: [
          {
            apiVersion: obj.apiVersion,
            kind: SCHEDULE_KIND,
            name: obj.metadata.name!,
            uid: obj.metadata.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: template.spec,
    };
    try {
      await this.deps.kube.custom.createNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: EXPERIMENT_PLURAL,
        namespace: obj.metadata.namespace!,
        body,
      });
    } catch (err) {
      if (!isAlreadyExists(err)) {
        const message = `creating run ${name} failed: ${apiErrorMessage(err)}`;
        await this.deps.emitEvent(obj, 'Warning', 'FailedCreate', message);
        throw new Error(message);
      }
    }
    return name;
  }

  /** active, runs, last verdict, regression, metrics: everything derived from the runs. */
  private summarise(
    status: FailoverScheduleStatus,
    obj: FailoverScheduleObject,
    runs: RunWithEndpoints[],
    nextMs: number | undefined,
    nowMs: number,
  ): void {
    const sorted = sortRuns(runs);
    const active = sorted.filter((r) => r.outcome === 'Running');
    const finished = sorted.filter((r) => r.outcome !== 'Running');
    status.active = active.slice(-STATUS_RUNS_LIMIT).map((r) => ({ name: r.name }));
    status.runs = finished.slice(-STATUS_RUNS_LIMIT).map((r) => ({
      name: r.name,
      scheduledTime: iso(r.scheduledMs)!,
      ...(r.completedMs !== undefined ? { completionTime: iso(r.completedMs) } : {}),
      ...(r.verdict ? { verdict: r.verdict } : {}),
      ...(r.worstDowntimeSeconds !== undefined ? { worstDowntimeSeconds: r.worstDowntimeSeconds } : {}),
    }));
    const latest = finished.at(-1);
    if (latest?.verdict) status.lastVerdict = latest.verdict;
    const lastSuccess = finished.filter((r) => r.outcome === 'Succeeded').at(-1);
    if (lastSuccess?.completedMs !== undefined) status.lastSuccessfulTime = iso(lastSuccess.completedMs);
    const signal = regressionSignal(finished, obj.spec.regressionMarginPercent);
    status.regression = signal;
    if (signal.latestSeconds !== undefined)
      setCondition(status, obj, nowMs, {
        type: 'Regression',
        status: signal.detected ? 'True' : 'False',
        reason: signal.detected ? 'DowntimeRegressed' : 'WithinMargin',
        message: `latest worst downtime ${signal.latestSeconds}s vs median ${signal.medianSeconds}s of ${signal.comparedRuns} earlier run(s), margin ${signal.marginPercent}%`,
      });
    const byVerdict: Record<string, number> = {};
    for (const r of finished)
      byVerdict[r.verdict ?? 'Unknown'] = (byVerdict[r.verdict ?? 'Unknown'] ?? 0) + 1;
    this.deps.metrics?.recordSchedule(obj.metadata.namespace!, obj.metadata.name!, {
      runsByVerdict: byVerdict,
      lastDowntime: latest?.endpoints ?? [],
      nextRunMs: nextMs,
      regressionDetected: signal.detected,
    });
  }

  private async writeStatus(obj: FailoverScheduleObject, status: FailoverScheduleStatus): Promise<void> {
    await this.deps.kube.custom.replaceNamespacedCustomObjectStatus({
      ...scheduleRef(obj.metadata.namespace!, obj.metadata.name!),
      body: { ...obj, status },
    });
  }
}

type RunWithEndpoints = RunRecord & {
  endpoints?: Array<{ endpoint: string; kind: 'write' | 'read'; seconds: number }>;
};

function runRecord(child: ExperimentChild): RunWithEndpoints {
  const st = child.status;
  const scheduled = child.metadata.annotations?.[ANNOTATION_SCHEDULED_TIME];
  const scheduledMs = Date.parse(scheduled ?? (child.metadata.creationTimestamp as unknown as string));
  const phase = st?.phase;
  const finished = phase === 'Completed' || phase === 'Failed' || phase === 'Aborted';
  const verdict = finished ? (st?.verdict ?? phase) : undefined;
  const endpoints: RunWithEndpoints['endpoints'] = [];
  for (const e of st?.endpoints ?? []) {
    if (e.writeDowntimeSeconds !== undefined)
      endpoints.push({ endpoint: e.name, kind: 'write', seconds: e.writeDowntimeSeconds });
    if (e.readDowntimeSeconds !== undefined)
      endpoints.push({ endpoint: e.name, kind: 'read', seconds: e.readDowntimeSeconds });
  }
  return {
    name: child.metadata.name!,
    scheduledMs,
    // A dry run that reached the trigger (verdict DryRun) is a successful rehearsal.
    outcome: !finished
      ? 'Running'
      : phase === 'Completed' && (st?.verdict === 'Pass' || st?.verdict === 'DryRun')
        ? 'Succeeded'
        : 'Failed',
    verdict,
    worstDowntimeSeconds: st?.worstDowntimeSeconds,
    completedMs: st?.completionTime ? Date.parse(st.completionTime) : undefined,
    endpoints,
  };
}

function setCondition(
  status: FailoverScheduleStatus,
  obj: FailoverScheduleObject,
  nowMs: number,
  c: Omit<ScheduleCondition, 'lastTransitionTime' | 'observedGeneration'>,
): void {
  const conditions = [...(status.conditions ?? [])];
  const i = conditions.findIndex((x) => x.type === c.type);
  const previous = i >= 0 ? conditions[i] : undefined;
  const next: ScheduleCondition = {
    ...c,
    observedGeneration: obj.metadata.generation,
    lastTransitionTime:
      previous && previous.status === c.status ? previous.lastTransitionTime : new Date(nowMs).toISOString(),
  };
  if (i >= 0) conditions[i] = next;
  else conditions.push(next);
  status.conditions = conditions;
}
