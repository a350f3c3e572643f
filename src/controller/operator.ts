// `failwatch operator`: informers feed a rate-limited work queue, reconcilers do the work,
// a Lease elects the leader, fastify serves /metrics, /healthz and /readyz.
// Reconciles read experiments and prober pods from the informers' caches (no GET or LIST per
// pass), so 1,000 experiments cost API calls only for the ones with work to do.
import { hostname } from 'node:os';
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import type pino from 'pino';
import { API_GROUP, API_VERSION } from '../api/experiment-spec.ts';
import { triggerFor } from '../trigger/from-spec.ts';
import { ExperimentReconciler, type FailoverExperimentObject } from './experiment-reconciler.ts';
import { watchNamespaces } from './informer.ts';
import { apiErrorMessage, EXPERIMENT_PLURAL, type Kube, LABEL_EXPERIMENT } from './kube.ts';
import { LeaderElector } from './lease.ts';
import { createScheduleController, type ScheduleControllerOptions } from './schedule-controller.ts';
import { WorkQueue } from './workqueue.ts';

export interface OperatorOptions {
  kube: Kube;
  namespace: string;
  /** Watch only these namespaces (RBAC by Roles there); empty or absent: every namespace. */
  namespaces?: readonly string[];
  proberImage: string;
  log: pino.Logger;
  concurrency?: number;
  identity?: string;
  leaderElection?: boolean;
  onQueueResult?: (outcome: 'success' | 'error' | 'requeue', durationMs: number) => void;
  reconcilerHooks?: Pick<
    ConstructorParameters<typeof ExperimentReconciler>[0],
    'onResults' | 'onForget' | 'targetPolicy' | 'proberAccess'
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
  /**
   * Whether the controller can work: a list/watch that has not worked for longer than
   * `brokenAfterMs` (the API server unreachable, CRDs or RBAC missing) makes it unhealthy,
   * so /healthz says so and the kubelet restarts it.
   */
  health(brokenAfterMs: number): { ok: true } | { ok: false; reason: string };
  /** FailoverExperiments in the informer's cache, by status.phase (Pending when unset). */
  phaseCounts(): Record<string, number>;
  /** The FailoverExperiments in the informer's cache (empty until this replica leads). */
  experiments(): FailoverExperimentObject[];
  stop(): Promise<void>;
}

export function startOperator(opts: OperatorOptions): RunningOperator {
  const { kube, log } = opts;
  let stopped = false;
  const namespaces = opts.namespaces?.length ? opts.namespaces : undefined;
  const experimentsWatch = watchNamespaces<KubernetesObject>({
    what: 'failoverexperiments',
    kube,
    log,
    namespaces,
    target: (namespace) => ({
      path: `/apis/${API_GROUP}/${API_VERSION}/${namespace ? `namespaces/${namespace}/` : ''}${EXPERIMENT_PLURAL}`,
      list: () =>
        namespace
          ? kube.custom.listNamespacedCustomObject({
              group: API_GROUP,
              version: API_VERSION,
              plural: EXPERIMENT_PLURAL,
              namespace,
            })
          : kube.custom.listClusterCustomObject({
              group: API_GROUP,
              version: API_VERSION,
              plural: EXPERIMENT_PLURAL,
            }),
    }),
    isStopped: () => stopped,
  });
  // Prober pods (label failwatch.io/experiment) in every namespace, or in the watched ones.
  const podsWatch = watchNamespaces<V1Pod>({
    what: 'prober pods',
    kube,
    log,
    namespaces,
    labelSelector: LABEL_EXPERIMENT,
    target: (namespace) => ({
      path: namespace ? `/api/v1/namespaces/${namespace}/pods` : '/api/v1/pods',
      list: () =>
        namespace
          ? kube.core.listNamespacedPod({ namespace, labelSelector: LABEL_EXPERIMENT })
          : kube.core.listPodForAllNamespaces({ labelSelector: LABEL_EXPERIMENT }),
    }),
    isStopped: () => stopped,
  });
  const informer = experimentsWatch.informer;
  const podInformer = podsWatch.informer;
  const reconciler = new ExperimentReconciler({
    log,
    kube,
    cached: (namespace, name) =>
      informer.get(name, namespace) as unknown as FailoverExperimentObject | undefined,
    cachedPods: (namespace, experiment) =>
      podInformer.list(namespace).filter((p) => p.metadata?.labels?.[LABEL_EXPERIMENT] === experiment),
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
          log.warn({ experiment: key, err: apiErrorMessage(err) }, 'reconcile failed; retrying with backoff');
        }
      },
    },
  );

  // The objects of the first list are background work: events after it (a new experiment, an
  // edit, a deletion) go first.
  const enqueue = (obj: KubernetesObject) =>
    queue.add(
      `${obj.metadata?.namespace}/${obj.metadata?.name}`,
      experimentsWatch.synced() ? 'now' : 'background',
    );
  informer.on('add', enqueue);
  informer.on('update', enqueue);
  informer.on('delete', enqueue);
  // A prober pod's change concerns its experiment (readiness, or pods left after the end).
  const enqueueOwner = (pod: V1Pod) => {
    const experiment = pod.metadata?.labels?.[LABEL_EXPERIMENT];
    if (experimentsWatch.synced() && experiment) queue.add(`${pod.metadata?.namespace}/${experiment}`);
  };
  podInformer.on('add', enqueueOwner);
  podInformer.on('update', enqueueOwner);
  podInformer.on('delete', enqueueOwner);

  const schedules =
    opts.schedules === false
      ? undefined
      : createScheduleController({
          kube,
          log,
          namespaces,
          emitEvent: async (obj, type, reason, message) =>
            emitEvent(kube, obj as unknown as FailoverExperimentObject, type, reason, message).catch(
              () => {},
            ),
          ...opts.schedules,
        });
  let experimentsOff = false;
  const startWatching = () => {
    // Experiments only once the pods are listed: a reconcile must never take "no pod in the
    // cache" for "no pod" (it would pull no samples, or miss probers left after a run).
    if (opts.experiments !== false) podsWatch.start(() => experimentsWatch.start());
    else experimentsOff = true;
    schedules?.start();
  };
  // Debug hook: FAILWATCH_DEBUG_MEMORY_SECONDS=N logs where the memory and the API calls go
  // every N seconds (docs/troubleshooting.md).
  const debugSeconds = Number(process.env.FAILWATCH_DEBUG_MEMORY_SECONDS ?? 0);
  const debugTimer =
    debugSeconds > 0
      ? setInterval(() => {
          const m = process.memoryUsage();
          const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
          log.info(
            {
              rssMiB: mib(m.rss),
              heapTotalMiB: mib(m.heapTotal),
              heapUsedMiB: mib(m.heapUsed),
              externalMiB: mib(m.external),
              arrayBuffersMiB: mib(m.arrayBuffers),
              apiRequests: kube.config.requests,
              queueDepth: queue.depth(),
              cachedExperiments: informer.list().length,
              cachedPods: podInformer.list().length,
            },
            'memory and API use',
          );
        }, debugSeconds * 1000)
      : undefined;
  debugTimer?.unref();
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
    isReady: () => experimentsOff || (experimentsWatch.synced() && podsWatch.synced()),
    health: (brokenAfterMs) => {
      const watches = [
        { what: 'failoverexperiments', watch: experimentsWatch },
        { what: 'prober pods', watch: podsWatch },
        ...(schedules ? [{ what: 'failoverschedules', watch: schedules.watch }] : []),
      ];
      for (const { what, watch } of watches) {
        const brokenMs = watch.brokenForMs();
        if (brokenMs > brokenAfterMs)
          return {
            ok: false,
            reason: `cannot list/watch ${what} for ${Math.round(brokenMs / 1000)}s (API server, CRDs or RBAC): see the log`,
          };
      }
      return { ok: true };
    },
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
      clearInterval(debugTimer);
      queue.stop();
      await informer.stop().catch(() => {});
      await podInformer.stop().catch(() => {});
      await schedules?.stop();
      await elector?.stop();
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
