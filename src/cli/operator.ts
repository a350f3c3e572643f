// `failwatch operator` — the Kubernetes controller process.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { kubeClients } from '../controller/kube.ts';
import { startOperator } from '../controller/operator.ts';
import {
  type LabelSelector,
  ProberAccess,
  type ProberNetworkPolicyOptions,
} from '../controller/prober-access.ts';
import { allowedTargetProblem } from '../controller/target-policy.ts';
import { parseListenAddress, startHttpServer } from '../server/http.ts';
import { KubeReportAuthorizer } from '../server/kube-authz.ts';
import {
  createControllerMetrics,
  createRegistry,
  createResultMetrics,
  createScheduleMetrics,
} from '../server/metrics.ts';
import { kubeReportSource, reportPageRoutes } from '../server/report-pages.ts';

export const OPERATOR_HELP = `Usage: failwatch operator [options]

Runs the FailoverExperiment controller: watches experiments in every namespace, starts
prober pods, triggers each failover once, writes results into status, Events and metrics.
Runs the FailoverSchedule controller too: creates experiments from schedules.

Options:
  --kubeconfig FILE     kubeconfig (default: in-cluster, then $KUBECONFIG / ~/.kube/config)
  --namespace NS        where the controller's Leases live (default $POD_NAMESPACE or failwatch-system)
  --prober-image IMG    image of the prober pods (default $FAILWATCH_PROBER_IMAGE or failwatch:latest)
  --metrics-listen A    /metrics, /healthz, /readyz and the report pages /reports (a bearer
                        token checked by TokenReview and SubjectAccessReview; default 0.0.0.0:8080)
  --concurrency N       experiments reconciled in parallel (default 4)
  --no-leader-elect     run without leader election (a single replica)
  --allowed-targets L   comma-separated targets experiments may fail over, as
                        region/identifier globs (eu-west-1/orders-staging-*, */lab-*); an entry
                        without region/ means $AWS_REGION's (default $FAILWATCH_ALLOWED_TARGETS;
                        empty: any); another target fails with reason TargetNotAllowed
  --allow-rds-endpoint-override
                        honour spec.target.rdsEndpoint (the lab's RDS API, tests); without it an
                        experiment that sets it fails with reason RdsEndpointNotAllowed before
                        any AWS call. Never in a cluster whose users you do not trust
  --prober-network-policy JSON
                        create a NetworkPolicy per run that admits only the controller's pods
                        to the prober API and the scraper to their /metrics:
                        {"controllerPodSelector":{...},"scraperNamespaceSelector":{...},
                         "scraperPodSelector":{...}} (label selectors; the chart sets it)
  --controllers LIST    which controllers run: experiments,schedules (default both)

Test hook: FAILWATCH_CLOCK_OFFSET_FILE names a file holding seconds added to the
schedule controller's clock (read on every use), so tests can jump time forward.
`;

/** `a, b,c` → ['a', 'b', 'c']; absent or blank → [] (any target). Throws on a malformed entry. */
export function parseAllowedTargets(list: string | undefined): string[] {
  const entries = (list ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const problems = entries.map(allowedTargetProblem).filter((p) => p !== undefined);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return entries;
}

/** --prober-network-policy: label selectors of the controller's pods and of the scraper. */
export function parseProberNetworkPolicy(
  json: string,
  controllerNamespace: string,
): ProberNetworkPolicyOptions {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new Error(`--prober-network-policy is not JSON: ${(err as Error).message}`);
  }
  const isSelector = (v: unknown) =>
    v === undefined ||
    v === null ||
    (typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      Object.keys(v).every((k) => k === 'matchLabels' || k === 'matchExpressions'));
  const d = doc as Record<string, unknown>;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || !d.controllerPodSelector)
    throw new Error('--prober-network-policy needs {"controllerPodSelector": {"matchLabels": {...}}, ...}');
  for (const key of Object.keys(d)) {
    if (!['controllerPodSelector', 'scraperNamespaceSelector', 'scraperPodSelector'].includes(key))
      throw new Error(`--prober-network-policy: unknown key ${key}`);
    if (!isSelector(d[key]))
      throw new Error(
        `--prober-network-policy: ${key} must be a label selector (matchLabels, matchExpressions)`,
      );
  }
  return {
    controllerNamespace,
    controllerPodSelector: d.controllerPodSelector as LabelSelector,
    ...(d.scraperNamespaceSelector
      ? { scraperNamespaceSelector: d.scraperNamespaceSelector as LabelSelector }
      : {}),
    ...(d.scraperPodSelector ? { scraperPodSelector: d.scraperPodSelector as LabelSelector } : {}),
  };
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
      'allowed-targets': { type: 'string' },
      'allow-rds-endpoint-override': { type: 'boolean' },
      'prober-network-policy': { type: 'string' },
      controllers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(OPERATOR_HELP);
    return 0;
  }
  const log = pino({
    base: { component: 'failwatch-controller' },
    level: process.env.FAILWATCH_LOG_LEVEL ?? 'info',
  });
  const registry = createRegistry({ processMetrics: true });
  const controllerMetrics = createControllerMetrics(registry);
  const resultMetrics = createResultMetrics(registry);
  const kube = kubeClients(values.kubeconfig);
  const controllers = new Set((values.controllers ?? 'experiments,schedules').split(','));
  const scheduleMetrics = createScheduleMetrics(registry);
  const clockFile = process.env.FAILWATCH_CLOCK_OFFSET_FILE;
  const clock = clockFile ? offsetClock(clockFile) : undefined;
  if (clockFile)
    log.warn({ clockFile }, 'test hook: the schedule clock is offset by the seconds in this file');
  const namespace = values.namespace ?? process.env.POD_NAMESPACE ?? 'failwatch-system';
  let allowedTargets: string[];
  let networkPolicy: ProberNetworkPolicyOptions | undefined;
  try {
    allowedTargets = parseAllowedTargets(values['allowed-targets'] ?? process.env.FAILWATCH_ALLOWED_TARGETS);
    if (values['prober-network-policy'])
      networkPolicy = parseProberNetworkPolicy(values['prober-network-policy'], namespace);
  } catch (err) {
    process.stderr.write(`failwatch operator: ${(err as Error).message}\n`);
    return 2;
  }
  const allowRdsEndpointOverride = values['allow-rds-endpoint-override'] === true;
  if (allowRdsEndpointOverride)
    log.warn('--allow-rds-endpoint-override: experiments may point the AWS requests at any URL');
  const operator = startOperator({
    kube,
    log,
    namespace,
    proberImage: values['prober-image'] ?? process.env.FAILWATCH_PROBER_IMAGE ?? 'failwatch:latest',
    concurrency: values.concurrency ? Number(values.concurrency) : 4,
    leaderElection: !values['no-leader-elect'],
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
      targetPolicy: {
        allowedTargets,
        defaultRegion: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? '',
        allowRdsEndpointOverride,
      },
      proberAccess: new ProberAccess(kube, networkPolicy),
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
  const listen = parseListenAddress(values['metrics-listen'] ?? '0.0.0.0:8080');
  const server = await startHttpServer({
    ...listen,
    registry,
    routes: reportPageRoutes(
      kubeReportSource(kube, () => operator.experiments()),
      new KubeReportAuthorizer(kube),
      log,
    ),
    ready: () =>
      operator.isReady()
        ? true
        : { ok: false, reason: operator.isLeader() ? 'informer not synced' : 'waiting for leadership' },
  });
  log.info(
    { url: server.url, allowedTargets, allowRdsEndpointOverride, proberNetworkPolicy: !!networkPolicy },
    'failwatch operator started',
  );
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
