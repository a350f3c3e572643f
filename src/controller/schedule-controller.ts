// The FailoverSchedule controller's plumbing: an informer on schedules, one on the runs they
// own (label failwatch.io/schedule, so a run finishing updates its schedule's status), and a
// work queue of its own, so schedules never wait behind experiments or the other way round.
import { type KubernetesObject, makeInformer } from '@kubernetes/client-node';
import type pino from 'pino';
import { API_GROUP, API_VERSION } from '../api/experiment-spec.ts';
import { SCHEDULE_PLURAL } from '../api/schedule-spec.ts';
import type { ScheduleMetrics } from '../server/metrics.ts';
import { apiErrorMessage, EXPERIMENT_PLURAL, type Kube } from './kube.ts';
import { type FailoverScheduleObject, LABEL_SCHEDULE, ScheduleReconciler } from './schedule-reconciler.ts';
import { WorkQueue } from './workqueue.ts';

export interface ScheduleControllerOptions {
  kube: Kube;
  log: pino.Logger;
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
  const base = `/apis/${API_GROUP}/${API_VERSION}`;
  const schedules = makeInformer<KubernetesObject>(
    kube.config,
    `${base}/${SCHEDULE_PLURAL}`,
    () =>
      kube.custom.listClusterCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: SCHEDULE_PLURAL,
      }) as never,
  );
  const runs = makeInformer<KubernetesObject>(
    kube.config,
    `${base}/${EXPERIMENT_PLURAL}`,
    () =>
      kube.custom.listClusterCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: EXPERIMENT_PLURAL,
        labelSelector: LABEL_SCHEDULE,
      }) as never,
    LABEL_SCHEDULE,
  );
  let stopped = false;
  let synced = false;
  const enqueueSchedule = (obj: KubernetesObject) =>
    queue.add(`${obj.metadata?.namespace}/${obj.metadata?.name}`);
  const enqueueOwner = (obj: KubernetesObject) => {
    const owner = obj.metadata?.labels?.[LABEL_SCHEDULE];
    if (owner) queue.add(`${obj.metadata?.namespace}/${owner}`);
  };
  const wire = (informer: typeof schedules, enqueue: (o: KubernetesObject) => void, what: string) => {
    informer.on('add', enqueue);
    informer.on('update', enqueue);
    informer.on('delete', enqueue);
    let delayMs = 500;
    informer.on('connect', () => {
      if (informer === schedules) synced = true;
      delayMs = 500;
    });
    informer.on('error', (err) => {
      if (stopped) return;
      log.warn({ err: apiErrorMessage(err), informer: what }, 'watch failed; restarting the informer');
      setTimeout(() => {
        if (!stopped) void informer.start().catch(() => {});
      }, delayMs).unref();
      delayMs = Math.min(delayMs * 2, 30_000);
    });
  };
  wire(schedules, enqueueSchedule, 'failoverschedules');
  wire(runs, enqueueOwner, 'scheduled failoverexperiments');
  return {
    queue,
    isSynced: () => synced,
    start() {
      for (const informer of [schedules, runs])
        void informer
          .start()
          .catch((err) => log.error({ err: apiErrorMessage(err) }, 'informer start failed'));
    },
    async stop() {
      stopped = true;
      queue.stop();
      await Promise.all([schedules.stop().catch(() => {}), runs.stop().catch(() => {})]);
    },
  };
}
