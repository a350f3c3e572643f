// `failwatch operator`: informers feed a rate-limited work queue, reconcilers do the work,
// a Lease elects the leader, fastify serves /metrics, /healthz and /readyz.
import { hostname } from 'node:os';
import { type KubernetesObject, makeInformer } from '@kubernetes/client-node';
import type pino from 'pino';
import { API_GROUP, API_VERSION } from '../api/experiment-spec.ts';
import { triggerFor } from '../trigger/from-spec.ts';
import { ExperimentReconciler, type FailoverExperimentObject } from './experiment-reconciler.ts';
import { apiErrorMessage, EXPERIMENT_PLURAL, type Kube } from './kube.ts';
import { LeaderElector } from './lease.ts';
import { createScheduleController, type ScheduleControllerOptions } from './schedule-controller.ts';
import { WorkQueue } from './workqueue.ts';

export interface OperatorOptions {
  kube: Kube;
  namespace: string;
  proberImage: string;
  log: pino.Logger;
  concurrency?: number;
  identity?: string;
  leaderElection?: boolean;
  onQueueResult?: (outcome: 'success' | 'error' | 'requeue', durationMs: number) => void;
  reconcilerHooks?: Pick<
    ConstructorParameters<typeof ExperimentReconciler>[0],
    'onResults' | 'onForget' | 'allowedTargets'
  >;
  /** Run the FailoverExperiment controller (default true; false for schedule-only tests). */
  experiments?: boolean;
  /** The FailoverSchedule controller (runs unless `false`). */
  schedules?: false | Pick<ScheduleControllerOptions, 'now' | 'maxRequeueMs' | 'metrics' | 'onQueueResult'>;
}

export interface RunningOperator {
  queue: WorkQueue;
  scheduleQueue?: WorkQueue;
  isLeader(): boolean;
  isReady(): boolean;
  /** FailoverExperiments in the informer's cache, by status.phase (Pending when unset). */
  phaseCounts(): Record<string, number>;
  /** The FailoverExperiments in the informer's cache (empty until this replica leads). */
  experiments(): FailoverExperimentObject[];
  stop(): Promise<void>;
}

export function startOperator(opts: OperatorOptions): RunningOperator {
  const { kube, log } = opts;
  const reconciler = new ExperimentReconciler({
    log,
    kube,
    controllerNamespace: opts.namespace,
    proberImage: opts.proberImage,
    triggerFor: (manifest) => triggerFor(manifest, process.env),
    emitEvent: async (obj, type, reason, message) =>
      emitEvent(kube, obj, type, reason, message).catch(() => {}),
    ...opts.reconcilerHooks,
  });
  const queue = new WorkQueue(
    async (key) => {
      const result = await reconciler.reconcile(key);
      return result;
    },
    {
      concurrency: opts.concurrency ?? 4,
      baseDelayMs: 200,
      maxDelayMs: 60_000,
      onResult: (key, outcome, durationMs, err) => {
        opts.onQueueResult?.(outcome, durationMs);
        if (outcome === 'error') {
          const [namespace, experiment] = key.split('/');
          log.warn(
            { namespace, experiment, err: apiErrorMessage(err) },
            'reconcile failed; retrying with backoff',
          );
        }
      },
    },
  );

  const path = `/apis/${API_GROUP}/${API_VERSION}/${EXPERIMENT_PLURAL}`;
  const list = () =>
    kube.custom.listClusterCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      plural: EXPERIMENT_PLURAL,
    }) as never;
  let informer = makeInformer<KubernetesObject>(kube.config, path, list);
  let synced = false;
  let stopped = false;
  const enqueue = (obj: KubernetesObject) => queue.add(`${obj.metadata?.namespace}/${obj.metadata?.name}`);
  let restartDelayMs = 500;
  const wire = () => {
    informer.on('add', enqueue);
    informer.on('update', enqueue);
    informer.on('delete', enqueue);
    // client-node informers stop on any watch error but 410: restart with backoff.
    informer.on('error', (err) => {
      if (stopped) return;
      log.warn({ err: apiErrorMessage(err) }, 'watch failed; restarting the informer');
      setTimeout(() => {
        if (!stopped) startInformer();
      }, restartDelayMs).unref();
      restartDelayMs = Math.min(restartDelayMs * 2, 30_000);
    });
  };
  wire();
  // Ready (and the backoff reset) only once a list has succeeded: 'connect' comes before it.
  const startInformer = () => {
    informer.start().then(
      () => {
        synced = true;
        restartDelayMs = 500;
      },
      (err) => log.error({ err: apiErrorMessage(err) }, 'informer start failed'),
    );
  };

  const schedules =
    opts.schedules === false
      ? undefined
      : createScheduleController({
          kube,
          log,
          emitEvent: async (obj, type, reason, message) =>
            emitEvent(kube, obj as unknown as FailoverExperimentObject, type, reason, message).catch(
              () => {},
            ),
          ...opts.schedules,
        });
  const startWatching = () => {
    if (opts.experiments !== false) startInformer();
    else synced = true;
    schedules?.start();
  };
  let elector: LeaderElector | undefined;
  if (opts.leaderElection === false) startWatching();
  else {
    elector = new LeaderElector(kube, {
      namespace: opts.namespace,
      name: 'failwatch-controller-leader',
      identity: opts.identity ?? `${hostname()}-${process.pid}`,
      leaseDurationSeconds: 15,
      renewIntervalMs: 5000,
      onStartedLeading: () => {
        log.info('became leader');
        startWatching();
      },
      onStoppedLeading: () => {
        log.error('lost leadership; exiting so a fresh process takes over');
        process.exit(1);
      },
    });
    elector.start();
  }

  return {
    queue,
    scheduleQueue: schedules?.queue,
    isLeader: () => elector?.isLeader() ?? true,
    isReady: () => synced,
    phaseCounts: () => {
      const counts: Record<string, number> = {};
      for (const obj of informer.list() as { status?: { phase?: string } }[]) {
        const phase = obj.status?.phase ?? 'Pending';
        counts[phase] = (counts[phase] ?? 0) + 1;
      }
      return counts;
    },
    experiments: () => informer.list() as unknown as FailoverExperimentObject[],
    async stop() {
      stopped = true;
      queue.stop();
      await informer.stop().catch(() => {});
      await schedules?.stop();
      await elector?.stop();
      informer = informer as typeof informer;
    },
  };
}

async function emitEvent(
  kube: Kube,
  obj: FailoverExperimentObject,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
): Promise<void> {
  const now = new Date();
  await kube.core.createNamespacedEvent({
    namespace: obj.metadata.namespace!,
    body: {
      metadata: { generateName: `${obj.metadata.name}.`, namespace: obj.metadata.namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      type,
      reason,
      message,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      source: { component: 'failwatch-controller' },
      reportingComponent: 'failwatch.io/controller',
      reportingInstance: hostname(),
    },
  });
}
