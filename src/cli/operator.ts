// `failwatch operator` — the Kubernetes controller process.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { kubeClients } from '../controller/kube.ts';
import { startOperator } from '../controller/operator.ts';
import { parseListenAddress, startHttpServer } from '../server/http.ts';
import {
  createControllerMetrics,
  createRegistry,
  createResultMetrics,
  createScheduleMetrics,
} from '../server/metrics.ts';
import { kubeReportSource, reportPageRoutes } from '../server/report-pages.ts';
import { intOption, listOption } from './options.ts';
import { UsageError } from './usage.ts';

export const OPERATOR_HELP = `Usage: failwatch operator [options]

Runs the FailoverExperiment controller: watches experiments in every namespace, starts
prober pods, triggers each failover once, writes results into status, Events and metrics.
Runs the FailoverSchedule controller too: creates experiments from schedules.

Options:
  --kubeconfig FILE     kubeconfig (default: in-cluster, then $KUBECONFIG / ~/.kube/config)
  --namespace NS        where the controller's Leases live (default $POD_NAMESPACE or failwatch-system)
  --prober-image IMG    image of the prober pods (default $FAILWATCH_PROBER_IMAGE or failwatch:latest)
  --metrics-listen A    /metrics, /healthz, /readyz and the report pages /reports
                        (unauthenticated: do not expose publicly; default 0.0.0.0:8080)
  --concurrency N       experiments reconciled in parallel, 1 to 256 (default 4)
  --no-leader-elect     run without leader election (a single replica)
  --leader-identity ID  this replica's identity in the leader Lease (default hostname-pid); a
                        restart with the same identity resumes leading at once instead of
                        waiting out the lease (15 s)
  --allowed-targets L   comma-separated target identifiers (or prefix*) experiments may fail
                        over (default $FAILWATCH_ALLOWED_TARGETS; empty: any); an experiment
                        naming another target fails with reason TargetNotAllowed
  --controllers LIST    which controllers run: experiments,schedules (default both)

Test hook: FAILWATCH_CLOCK_OFFSET_FILE names a file holding seconds added to the
schedule controller's clock (read on every use), so tests can jump time forward.
`;

const CONTROLLERS = ['experiments', 'schedules'] as const;

/** `a, b,c` → ['a', 'b', 'c']; absent or blank → [] (any target). */
export function parseAllowedTargets(list: string | undefined): string[] {
  return (list ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export async function operatorCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'prober-image': { type: 'string' },
      'metrics-listen': { type: 'string' },
      concurrency: { type: 'string' },
      'no-leader-elect': { type: 'boolean' },
      'leader-identity': { type: 'string' },
      'allowed-targets': { type: 'string' },
      controllers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(OPERATOR_HELP);
    return 0;
  }
  // Every option is checked before anything starts: a typo is exit 2, not a broken controller.
  const concurrency = intOption('concurrency', values.concurrency, 4, 1, 256);
  const controllers = new Set(listOption('controllers', values.controllers, CONTROLLERS, CONTROLLERS));
  let listen: ReturnType<typeof parseListenAddress>;
  try {
    listen = parseListenAddress(values['metrics-listen'] ?? '0.0.0.0:8080');
  } catch (err) {
    throw new UsageError(`--metrics-listen: ${(err as Error).message}`);
  }
  if (values.kubeconfig !== undefined && !existsSync(values.kubeconfig))
    throw new UsageError(`--kubeconfig: no such file ${values.kubeconfig}`);
  const log = pino({
    base: { component: 'failwatch-controller' },
    level: process.env.FAILWATCH_LOG_LEVEL ?? 'info',
  });
  const registry = createRegistry({ processMetrics: true });
  const controllerMetrics = createControllerMetrics(registry);
  const resultMetrics = createResultMetrics(registry);
  let kube: ReturnType<typeof kubeClients>;
  try {
    kube = kubeClients(values.kubeconfig);
  } catch (err) {
    throw new UsageError(`cannot load the kubeconfig: ${(err as Error).message.split('\n')[0]}`);
  }
  const scheduleMetrics = createScheduleMetrics(registry);
  const clockFile = process.env.FAILWATCH_CLOCK_OFFSET_FILE;
  const clock = clockFile ? offsetClock(clockFile) : undefined;
  if (clockFile)
    log.warn({ clockFile }, 'test hook: the schedule clock is offset by the seconds in this file');
  const allowedTargets = parseAllowedTargets(
    values['allowed-targets'] ?? process.env.FAILWATCH_ALLOWED_TARGETS,
  );
  const operator = startOperator({
    kube,
    log,
    namespace: values.namespace ?? process.env.POD_NAMESPACE ?? 'failwatch-system',
    proberImage: values['prober-image'] ?? process.env.FAILWATCH_PROBER_IMAGE ?? 'failwatch:latest',
    concurrency,
    leaderElection: !values['no-leader-elect'],
    identity: values['leader-identity'],
    experiments: controllers.has('experiments'),
    schedules: controllers.has('schedules') && {
      metrics: scheduleMetrics,
      now: clock,
      maxRequeueMs: clock ? 500 : undefined,
      onQueueResult: (outcome, ms) =>
        controllerMetrics.observeReconcile('failoverschedule', outcome, ms / 1000),
    },
    onQueueResult: (outcome, ms) =>
      controllerMetrics.observeReconcile('failoverexperiment', outcome, ms / 1000),
    reconcilerHooks: {
      allowedTargets,
      onResults: (obj, results) =>
        resultMetrics.recordResults(obj.metadata.namespace!, obj.metadata.name!, results),
      onForget: (namespace, name) => resultMetrics.forgetExperiment(namespace, name),
    },
  });
  resultMetrics.triggerTimesFrom(() => operator.experiments());
  const depthTimer = setInterval(() => {
    controllerMetrics.workqueueDepth.set({ controller: 'failoverexperiment' }, operator.queue.depth());
    controllerMetrics.setExperimentsByPhase(operator.phaseCounts());
  }, 1000);
  depthTimer.unref();
  const server = await startHttpServer({
    ...listen,
    registry,
    routes: reportPageRoutes(
      kubeReportSource(kube, () => operator.experiments()),
      log,
    ),
    ready: () =>
      operator.isReady()
        ? true
        : { ok: false, reason: operator.isLeader() ? 'informer not synced' : 'waiting for leadership' },
  });
  log.info({ url: server.url, allowedTargets }, 'failwatch operator started');
  const shutdown = async () => {
    log.info('shutting down');
    await operator.stop();
    await server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  return -1; // keeps running
}

/** Date.now() plus the seconds written in `file` (a test hook; a missing file means 0). */
function offsetClock(file: string): () => number {
  return () => {
    let offsetSeconds = 0;
    try {
      offsetSeconds = Number(readFileSync(file, 'utf8').trim()) || 0;
    } catch {}
    return Date.now() + offsetSeconds * 1000;
  };
}
