// `failwatch operator` — the Kubernetes controller process.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { API_GROUP, API_VERSION } from '../api/experiment-spec.ts';
import { apiErrorMessage, type Kube, kubeClients } from '../controller/kube.ts';
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
  registerBuildInfo,
} from '../server/metrics.ts';
import { kubeReportSource, reportPageRoutes } from '../server/report-pages.ts';
import { EXIT } from './exit-codes.ts';
import { intOption, listOption } from './options.ts';
import { UsageError } from './usage.ts';

/** How long the operator tries to reach the API server at start before it gives up. */
export const STARTUP_TIMEOUT_SECONDS = 10;

export const OPERATOR_HELP = `Usage: failwatch operator [options]

Runs the FailoverExperiment controller: watches experiments in every namespace (or those of
--namespaces), starts
prober pods, triggers each failover once, writes results into status, Events and metrics.
Runs the FailoverSchedule controller too: creates experiments from schedules.

Options:
  --kubeconfig FILE     kubeconfig (default: in-cluster, then $KUBECONFIG / ~/.kube/config)
  --namespace NS        where the controller's Leases live (default $POD_NAMESPACE or failwatch-system)
  --namespaces LIST     watch only these comma-separated namespaces (RBAC: Roles there, the
                        chart's watchNamespaces; default $FAILWATCH_NAMESPACES; empty: all)
  --prober-image IMG    image of the prober pods (default $FAILWATCH_PROBER_IMAGE or failwatch:latest)
  --metrics-listen A    /metrics, /healthz, /readyz and the report pages /reports (a bearer
                        token checked by TokenReview and SubjectAccessReview; default 0.0.0.0:8080
                        in a pod, i.e. with $KUBERNETES_SERVICE_HOST, else 127.0.0.1:8080)
  --concurrency N       experiments reconciled in parallel, 1 to 256 (default 4)
  --no-leader-elect     run without leader election (a single replica)
  --leader-identity ID  this replica's identity in the leader Lease (default hostname-pid); a
                        restart with the same identity resumes leading at once instead of
                        waiting out the lease (15 s)
  --allowed-targets L   comma-separated targets experiments may fail over, as
                        region/identifier globs (eu-west-1/orders-staging-*, */lab-*); an entry
                        without region/ means $AWS_REGION's; account/region/identifier or
                        arn:aws:rds:region:account:cluster:identifier also check the account
                        (the cluster's ARN, in preflight) (default $FAILWATCH_ALLOWED_TARGETS;
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

It exits with status 3 and a message saying why when it finds no kubeconfig or cannot
reach the API server within ${STARTUP_TIMEOUT_SECONDS} s; /healthz answers 503 once a list or watch has not
worked for $FAILWATCH_HEALTH_BROKEN_SECONDS (default 60) seconds.

Test hook: FAILWATCH_CLOCK_OFFSET_FILE names a file holding seconds added to the
schedule controller's clock (read on every use), so tests can jump time forward.
`;

const CONTROLLERS = ['experiments', 'schedules'] as const;

/** --namespaces: comma-separated namespace names (DNS labels), no duplicates; '' is all. */
export function parseNamespaces(text: string): string[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of names)
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name))
      throw new UsageError(
        `--namespaces: \`${name}\` is not a namespace name (lowercase letters, digits, -)`,
      );
  return [...new Set(names)];
}

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
      namespaces: { type: 'string' },
      'prober-image': { type: 'string' },
      'metrics-listen': { type: 'string' },
      concurrency: { type: 'string' },
      'no-leader-elect': { type: 'boolean' },
      'leader-identity': { type: 'string' },
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
  // Every option is checked before anything starts: a typo is exit 2, not a broken controller.
  const concurrency = intOption('concurrency', values.concurrency, 4, 1, 256);
  const controllers = new Set(listOption('controllers', values.controllers, CONTROLLERS, CONTROLLERS));
  // Outside a cluster (a laptop, a CI runner) the unauthenticated pages stay on loopback
  // unless asked otherwise; in a pod the Service and the kubelet's probes need all interfaces.
  const inCluster = Boolean(process.env.KUBERNETES_SERVICE_HOST);
  let listen: ReturnType<typeof parseListenAddress>;
  try {
    listen = parseListenAddress(values['metrics-listen'] ?? (inCluster ? '0.0.0.0:8080' : '127.0.0.1:8080'));
  } catch (err) {
    throw new UsageError(`--metrics-listen: ${(err as Error).message}`);
  }
  const namespace = values.namespace ?? process.env.POD_NAMESPACE ?? 'failwatch-system';
  const namespaces = parseNamespaces(values.namespaces ?? process.env.FAILWATCH_NAMESPACES ?? '');
  let allowedTargets: string[];
  let networkPolicy: ProberNetworkPolicyOptions | undefined;
  try {
    allowedTargets = parseAllowedTargets(values['allowed-targets'] ?? process.env.FAILWATCH_ALLOWED_TARGETS);
    if (values['prober-network-policy'])
      networkPolicy = parseProberNetworkPolicy(values['prober-network-policy'], namespace);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.kubeconfig !== undefined && !existsSync(values.kubeconfig))
    throw new UsageError(`--kubeconfig: no such file ${values.kubeconfig}`);
  const log = pino({
    base: { component: 'failwatch-controller' },
    level: process.env.FAILWATCH_LOG_LEVEL ?? 'info',
  });
  const missing = missingKubeconfig(values.kubeconfig, inCluster);
  if (missing) {
    log.error({ exitCode: EXIT.runFailed }, missing);
    return EXIT.runFailed;
  }
  let kube: Kube;
  try {
    kube = kubeClients(values.kubeconfig);
  } catch (err) {
    throw new UsageError(`cannot load the kubeconfig: ${(err as Error).message.split('\n')[0]}`);
  }
  const unreachable = await apiServerProblem(kube, STARTUP_TIMEOUT_SECONDS * 1000);
  if (unreachable) {
    log.error({ exitCode: EXIT.runFailed, server: kube.config.getCurrentCluster()?.server }, unreachable);
    return EXIT.runFailed;
  }
  const registry = createRegistry({ processMetrics: true });
  registerBuildInfo(registry, packageVersion());
  const controllerMetrics = createControllerMetrics(registry);
  const resultMetrics = createResultMetrics(registry);
  const scheduleMetrics = createScheduleMetrics(registry);
  const clockFile = process.env.FAILWATCH_CLOCK_OFFSET_FILE;
  const clock = clockFile ? offsetClock(clockFile) : undefined;
  if (clockFile)
    log.warn({ clockFile }, 'test hook: the schedule clock is offset by the seconds in this file');
  const allowRdsEndpointOverride = values['allow-rds-endpoint-override'] === true;
  if (allowRdsEndpointOverride)
    log.warn('--allow-rds-endpoint-override: experiments may point the AWS requests at any URL');
  const operator = startOperator({
    kube,
    log,
    namespace,
    namespaces,
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
      targetPolicy: {
        allowedTargets,
        defaultRegion: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? '',
        allowRdsEndpointOverride,
      },
      proberAccess: new ProberAccess(kube, namespace, networkPolicy),
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
  const brokenAfterMs = Number(process.env.FAILWATCH_HEALTH_BROKEN_SECONDS ?? 60) * 1000;
  const server = await startHttpServer({
    ...listen,
    registry,
    routes: reportPageRoutes(
      kubeReportSource(kube, () => operator.experiments(), namespaces),
      new KubeReportAuthorizer(kube),
      log,
    ),
    healthy: () => operator.health(brokenAfterMs),
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

/** Why there is no kubeconfig to use, or undefined when there is one (or the in-cluster one). */
export function missingKubeconfig(flag: string | undefined, inCluster: boolean): string | undefined {
  if (flag || inCluster) return undefined;
  if (process.env.KUBECONFIG) return undefined;
  const home = join(homedir(), '.kube', 'config');
  if (existsSync(home)) return undefined;
  return `no kubeconfig: not in a pod ($KUBERNETES_SERVICE_HOST unset), no --kubeconfig, no $KUBECONFIG and no ${home}; pass --kubeconfig FILE (for the dev cluster: .cache/dev-cluster/admin.kubeconfig)`;
}

/**
 * Asks the API server for the failwatch.io API (discovery) until it answers or `timeoutMs`
 * passed; says what is wrong (unreachable, unauthorized, CRDs missing) or undefined when fine.
 */
export async function apiServerProblem(kube: Kube, timeoutMs: number): Promise<string | undefined> {
  const server = kube.config.getCurrentCluster()?.server ?? '(no server in the kubeconfig)';
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const left = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        kube.custom.getAPIResources({ group: API_GROUP, version: API_VERSION }),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)),
            left,
          );
        }),
      ]);
      return undefined;
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 401 || code === 403)
        return `the API server at ${server} refused the controller's credentials (HTTP ${code}): ${apiErrorMessage(err)}`;
      // 404: no CRDs, or CRDs created a moment ago that discovery does not serve yet.
      last = code === 404 ? 'no-crds' : withCause(err);
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() + 1000 >= deadline)
      return last === 'no-crds'
        ? `the API server at ${server} has no ${API_GROUP}/${API_VERSION} API: install the CRDs (kubectl apply -f crds/, or the chart)`
        : `cannot reach the API server at ${server} within ${Math.round(timeoutMs / 1000)} s: ${last}`;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The version in package.json (the image ships it next to src/). */
function packageVersion(): string {
  try {
    return (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
}

/** `fetch failed` says nothing: add the cause (`connect ECONNREFUSED 10.0.0.1:443`). */
function withCause(err: unknown): string {
  const cause = (err as { cause?: { message?: string; code?: string } }).cause;
  const message = apiErrorMessage(err);
  const detail = cause?.message ?? cause?.code;
  return detail && !message.includes(detail) ? `${message} (${detail})` : message;
}
