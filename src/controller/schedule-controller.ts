// The FailoverSchedule controller's plumbing: an informer on schedules, one on the runs they
// own (label failwatch.io/schedule, so a run finishing updates its schedule's status), and a
// work queue of its own, so schedules never wait behind experiments or the other way round.
import type { KubernetesObject } from '@kubernetes/client-node';
import type pino from 'pino';
import { API_GROUP, API_VERSION } from '../api/experiment-spec.ts';
import { SCHEDULE_PLURAL } from '../api/schedule-spec.ts';
import type { ScheduleMetrics } from '../server/metrics.ts';
import { watchNamespaces } from './informer.ts';
import { apiErrorMessage, EXPERIMENT_PLURAL, type Kube } from './kube.ts';
import { type FailoverScheduleObject, LABEL_SCHEDULE, ScheduleReconciler } from './schedule-reconciler.ts';
import { WorkQueue } from './workqueue.ts';

export interface ScheduleControllerOptions {
  kube: Kube;
  log: pino.Logger;
  /** Watch only these namespaces; absent or empty: every namespace. */
  namespaces?: readonly string[];
  emitEvent(
    obj: FailoverScheduleObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void>;
  /** The clock (default Date.now); see FAILWATCH_CLOCK_OFFSET_FILE in docs/schedule.md. */
  now?: () => number;
  maxRequeueMs?: number;
  metrics?: ScheduleMetrics;
  onQueueResult?: (outcome: 'success' | 'error' | 'requeue', durationMs: number) => void;
}

export interface ScheduleController {
  queue: WorkQueue;
  start(): void;
  isSynced(): boolean;
  /** How long either list/watch has not worked (0 when both work), for the operator's health. */
  watch: { brokenForMs(): number };
  stop(): Promise<void>;
}

export function createScheduleController(opts: ScheduleControllerOptions): ScheduleController {
  const { kube, log } = opts;
  const reconciler = new ScheduleReconciler({
    kube,
    now: opts.now ?? Date.now,
    emitEvent: opts.emitEvent,
    metrics: opts.metrics,
    maxRequeueMs: opts.maxRequeueMs,
  });
  const queue = new WorkQueue((key) => reconciler.reconcile(key), {
    concurrency: 2,
    baseDelayMs: 200,
    maxDelayMs: 60_000,
    onResult: (key, outcome, durationMs, err) => {
      opts.onQueueResult?.(outcome, durationMs);
      if (outcome === 'error') {
        const [namespace, schedule] = key.split('/');
        log.warn({ namespace, schedule, err: apiErrorMessage(err) }, 'schedule reconcile failed; retrying');
      }
    },
  });
  let stopped = false;
  const base = `/apis/${API_GROUP}/${API_VERSION}`;
  const listIn = (plural: string, namespace?: string, labelSelector?: string) => () =>
    namespace
      ? kube.custom.listNamespacedCustomObject({
          group: API_GROUP,
          version: API_VERSION,
          plural,
          namespace,
          labelSelector,
        })
      : kube.custom.listClusterCustomObject({
          group: API_GROUP,
          version: API_VERSION,
          plural,
          labelSelector,
        });
  const pathIn = (plural: string, namespace?: string) =>
    `${base}/${namespace ? `namespaces/${namespace}/` : ''}${plural}`;
  const schedulesWatch = watchNamespaces<KubernetesObject>({
    what: 'failoverschedules',
    kube,
    log,
    namespaces: opts.namespaces,
    target: (namespace) => ({
      path: pathIn(SCHEDULE_PLURAL, namespace),
      list: listIn(SCHEDULE_PLURAL, namespace),
    }),
    isStopped: () => stopped,
  });
  const runsWatch = watchNamespaces<KubernetesObject>({
    what: 'scheduled failoverexperiments',
    kube,
    log,
    namespaces: opts.namespaces,
    labelSelector: LABEL_SCHEDULE,
    target: (namespace) => ({
      path: pathIn(EXPERIMENT_PLURAL, namespace),
      list: listIn(EXPERIMENT_PLURAL, namespace, LABEL_SCHEDULE),
    }),
    isStopped: () => stopped,
  });
  const enqueueSchedule = (obj: KubernetesObject) =>
    queue.add(`${obj.metadata?.namespace}/${obj.metadata?.name}`);
  const enqueueOwner = (obj: KubernetesObject) => {
    const owner = obj.metadata?.labels?.[LABEL_SCHEDULE];
    if (owner) queue.add(`${obj.metadata?.namespace}/${owner}`);
  };
  for (const [{ informer }, enqueue] of [
    [schedulesWatch, enqueueSchedule],
    [runsWatch, enqueueOwner],
  ] as const) {
    informer.on('add', enqueue);
    informer.on('update', enqueue);
    informer.on('delete', enqueue);
  }
  return {
    queue,
    isSynced: () => schedulesWatch.synced(),
    /** For the operator's health: how long either list/watch has not worked. */
    watch: {
      brokenForMs: () => Math.max(schedulesWatch.brokenForMs(), runsWatch.brokenForMs()),
    },
    start() {
      schedulesWatch.start();
      runsWatch.start();
    },
    async stop() {
      stopped = true;
      queue.stop();
      await Promise.all([
        schedulesWatch.informer.stop().catch(() => {}),
        runsWatch.informer.stop().catch(() => {}),
      ]);
    },
  };
}
