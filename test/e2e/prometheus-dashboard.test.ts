// The Grafana dashboard against a real Prometheus (Debian's `prometheus`) that scraped a real
// end-to-end run: the operator on a real kube-apiserver with prober pods run by the node
// agent, one experiment and one FailoverSchedule run failing the lab over through its RDS API.
//
// Prometheus is configured the way prometheus-operator configures it from the chart's own
// PodMonitor and ServiceMonitor (rendered by `helm template`): the prober pods are kept by
// the PodMonitor's selector and port through the operator's relabel rules, with the target
// labels it adds (namespace, container, pod, job, endpoint) and the PodMonitor's honorLabels;
// the controller (a process here, not a pod) is a static target carrying the labels its
// ServiceMonitor would add. Debian builds Prometheus without kubernetes_sd_configs, so the
// test serves http_sd_configs what `kubernetes_sd_configs: [{role: pod}]` discovers: every
// container port of every pod with an IP, listed from the apiserver with Prometheus' own
// ServiceAccount token, with the same __meta_kubernetes_* labels.
//
// Then every query of the dashboard JSON — every target of every panel (rows included),
// every template variable, every annotation — runs against Prometheus' HTTP API the way
// Grafana runs it: once with the variables' allValue (.*) and once per concrete value the
// variable queries return. The test lists each panel, variable or annotation that returned
// nothing and fails if there is any. A few numbers are checked against the runs' status.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';
import {
  experimentClient,
  GiveUp,
  LAB_PASSWORD,
  labExperiment,
  labIdle,
  prepareOperatorNamespace,
  SYSTEM_NS,
  scheduleClient,
  serviceAccountToken,
  spawnOperator,
  stopProcess,
  waiter,
} from '../helpers/operator-env.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = join(ROOT, 'charts/failwatch');
const DASHBOARD = join(CHART, 'dashboards/failwatch.json');
const NS = 'payments';
const METRICS = '127.0.76.5:18380';
const PROM = '127.0.76.9:19090';
/** The test's http_sd_configs endpoint (pod discovery through the apiserver). */
const POD_SD = { host: '127.0.76.10', port: 19090 };
/** Every scrape of this test (the chart's default is 5 s): the lab's ~2 s outages span samples. */
const SCRAPE_INTERVAL = '1s';
/** What Grafana substitutes for $__rate_interval, and for $__interval (the range queries' step). */
const RATE_INTERVAL = '15s';
const STEP_SECONDS = 2;
const EXPERIMENT = 'checkout-db';
const SCHEDULE = 'nightly';

const tmp = mkdtempSync(join(tmpdir(), 'fw-promdash-'));
const clockFile = join(tmp, 'clock-offset-seconds');
let cp: ControlPlane;
let lab: TestLab;
let operator: ChildProcess | undefined;
let prometheus: ChildProcess | undefined;
let podSd: Server | undefined;
/** The `job` labels of the controller's and the prober pods' targets (as the monitors set them). */
let controllerJob: string;
let proberJob: string;
let core: CoreV1Api;
let experiments: ReturnType<typeof experimentClient>;
let schedules: ReturnType<typeof scheduleClient>;

type Doc = Record<string, any>;
const kubectl = (args: string[], input?: string) => cp.kubectl(args, input);

// ---- waiting ---------------------------------------------------------------------------

const waitFor = waiter({
  timeoutMs: 90_000,
  intervalMs: 250,
  logs: { operator: join(tmp, 'operator.log'), prometheus: join(tmp, 'prometheus.log') },
});

const finished = (name: string) => experiments.phaseIs(name, ['Completed', 'Failed', 'Aborted']);

// ---- the chart's monitors, as prometheus-operator turns them into scrape configs ---------

/** `helm template` of the chart with the PodMonitor, ServiceMonitor and dashboard on. */
async function renderChart(): Promise<Doc[]> {
  const helm = (await promisify(execFile)('bash', [join(ROOT, 'scripts/build-helm')])).stdout.trim();
  const set = [
    'metrics.podMonitor.enabled=true',
    'metrics.serviceMonitor.enabled=true',
    'grafana.dashboard.enabled=true',
  ];
  const out = await promisify(execFile)(
    helm,
    ['template', 'failwatch', CHART, '--namespace', SYSTEM_NS, ...set.flatMap((s) => ['--set', s])],
    { maxBuffer: 1 << 24 },
  );
  return parseAllDocuments(out.stdout)
    .map((d) => d.toJSON() as Doc)
    .filter((d) => d);
}

const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

/** The fields of a monitor endpoint this translation knows; anything else fails the test. */
const KNOWN_ENDPOINT_FIELDS = new Set(['port', 'path', 'interval', 'scrapeTimeout', 'honorLabels']);

function checkEndpointFields(kind: string, ep: Doc): void {
  const unknown = Object.keys(ep).filter((k) => !KNOWN_ENDPOINT_FIELDS.has(k));
  assert.deepEqual(unknown, [], `${kind} endpoint fields this test does not translate yet: ${unknown}`);
}

/**
 * What Prometheus' kubernetes_sd_configs with role pod discovers (discovery/kubernetes/pod.go):
 * one target per container port of every pod that has an IP, `__address__` = IP:port, the
 * pod's labels and annotations as __meta_kubernetes_pod_label_* / _labelpresent_* etc.
 */
async function discoverPods(api: CoreV1Api, namespaces: string[] | undefined): Promise<Doc[]> {
  const pods: V1Pod[] = namespaces
    ? (await Promise.all(namespaces.map((namespace) => api.listNamespacedPod({ namespace })))).flatMap(
        (l) => l.items,
      )
    : (await api.listPodForAllNamespaces()).items;
  const groups: Doc[] = [];
  for (const pod of pods) {
    const ip = pod.status?.podIP;
    if (!ip) continue;
    const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
    const podLabels: Record<string, string> = {
      __meta_kubernetes_namespace: pod.metadata?.namespace ?? '',
      __meta_kubernetes_pod_name: pod.metadata?.name ?? '',
      __meta_kubernetes_pod_ip: ip,
      __meta_kubernetes_pod_ready: ready === 'True' ? 'true' : ready === 'False' ? 'false' : 'unknown',
      __meta_kubernetes_pod_phase: pod.status?.phase ?? '',
      __meta_kubernetes_pod_node_name: pod.spec?.nodeName ?? '',
      __meta_kubernetes_pod_host_ip: pod.status?.hostIP ?? '',
      __meta_kubernetes_pod_uid: pod.metadata?.uid ?? '',
      ...(owner
        ? {
            __meta_kubernetes_pod_controller_kind: owner.kind,
            __meta_kubernetes_pod_controller_name: owner.name,
          }
        : {}),
    };
    for (const [k, v] of Object.entries(pod.metadata?.labels ?? {})) {
      podLabels[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
      podLabels[`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`] = 'true';
    }
    for (const [k, v] of Object.entries(pod.metadata?.annotations ?? {})) {
      podLabels[`__meta_kubernetes_pod_annotation_${sanitize(k)}`] = v;
      podLabels[`__meta_kubernetes_pod_annotationpresent_${sanitize(k)}`] = 'true';
    }
    const containers = [
      ...(pod.spec?.initContainers ?? []).map((c) => ({ c, init: 'true' })),
      ...(pod.spec?.containers ?? []).map((c) => ({ c, init: 'false' })),
    ];
    for (const { c, init } of containers) {
      const container = {
        __meta_kubernetes_pod_container_name: c.name,
        __meta_kubernetes_pod_container_image: c.image ?? '',
        __meta_kubernetes_pod_container_init: init,
      };
      const ports = c.ports ?? [];
      if (ports.length === 0) groups.push({ targets: [ip], labels: { ...podLabels, ...container } });
      for (const port of ports)
        groups.push({
          targets: [`${ip}:${port.containerPort}`],
          labels: {
            ...podLabels,
            ...container,
            __meta_kubernetes_pod_container_port_name: port.name ?? '',
            __meta_kubernetes_pod_container_port_number: String(port.containerPort),
            __meta_kubernetes_pod_container_port_protocol: port.protocol ?? 'TCP',
          },
        });
    }
  }
  return groups;
}

/** Serves discoverPods() for Prometheus' http_sd_configs. */
async function startPodDiscovery(api: CoreV1Api, namespaces: string[] | undefined): Promise<Server> {
  const server = createServer((_req, res) => {
    discoverPods(api, namespaces).then(
      (groups) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(groups));
      },
      (err) => {
        res.writeHead(500);
        res.end(String(err));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(POD_SD.port, POD_SD.host, resolve));
  return server;
}

/** The namespaces a monitor's namespaceSelector names (undefined: any). */
function monitorNamespaces(m: Doc): string[] | undefined {
  return m.spec.namespaceSelector?.any
    ? undefined
    : (m.spec.namespaceSelector?.matchNames ?? [m.metadata.namespace]);
}

/** prometheus-operator's scrape config for the PodMonitor's first endpoint (interval: ours). */
function podMonitorJob(pm: Doc): Doc {
  const ep = pm.spec.podMetricsEndpoints[0];
  checkEndpointFields('PodMonitor', ep);
  const selector = pm.spec.selector ?? {};
  assert.equal(selector.matchExpressions, undefined, 'PodMonitor matchExpressions are not translated');
  assert.ok(ep.port, 'the PodMonitor endpoint names its port');
  return {
    job_name: `podMonitor/${pm.metadata.namespace}/${pm.metadata.name}/0`,
    honor_labels: ep.honorLabels ?? false,
    scrape_interval: SCRAPE_INTERVAL,
    metrics_path: ep.path ?? '/metrics',
    // kubernetes_sd_configs: [{ role: pod, namespaces: monitorNamespaces(pm) }], served by the test
    http_sd_configs: [{ url: `http://${POD_SD.host}:${POD_SD.port}/pods`, refresh_interval: '1s' }],
    relabel_configs: [
      { source_labels: ['job'], target_label: '__tmp_prometheus_job_name' },
      { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' },
      ...Object.keys(selector.matchLabels ?? {})
        .sort()
        .map((k) => ({
          action: 'keep',
          source_labels: [
            `__meta_kubernetes_pod_label_${sanitize(k)}`,
            `__meta_kubernetes_pod_labelpresent_${sanitize(k)}`,
          ],
          regex: `(${selector.matchLabels[k]});true`,
        })),
      { action: 'keep', source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: ep.port },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { target_label: 'job', replacement: `${pm.metadata.namespace}/${pm.metadata.name}` },
      { target_label: 'endpoint', replacement: ep.port },
    ],
  };
}

/**
 * The controller runs as a process, not behind its Service: a static target with the labels
 * prometheus-operator gives a ServiceMonitor target (namespace, service, pod, container,
 * job = the Service's name, endpoint = the port's name) and the ServiceMonitor's honorLabels.
 * The ServiceMonitor must select the chart's metrics Service and name one of its ports.
 */
function serviceMonitorJob(sm: Doc, docs: Doc[]): Doc {
  const ep = sm.spec.endpoints[0];
  checkEndpointFields('ServiceMonitor', ep);
  const services = docs.filter(
    (d) =>
      d.kind === 'Service' &&
      Object.entries(sm.spec.selector.matchLabels ?? {}).every(([k, v]) => d.metadata.labels?.[k] === v) &&
      (sm.spec.namespaceSelector?.matchNames ?? [sm.metadata.namespace]).includes(d.metadata.namespace),
  );
  assert.equal(services.length, 1, 'the ServiceMonitor selects exactly the metrics Service');
  const svc = services[0]!;
  const port = svc.spec.ports.find((p: Doc) => p.name === ep.port);
  assert.ok(port, `the Service has the ServiceMonitor's port ${ep.port}`);
  const deployment = docs.find((d) => d.kind === 'Deployment')!;
  const container = deployment.spec.template.spec.containers.find((c: Doc) =>
    (c.ports ?? []).some((p: Doc) => p.name === port.targetPort || p.containerPort === port.targetPort),
  );
  assert.ok(container, "the Service's targetPort is a port of the controller container");
  return {
    job_name: `serviceMonitor/${sm.metadata.namespace}/${sm.metadata.name}/0`,
    honor_labels: ep.honorLabels ?? false,
    scrape_interval: SCRAPE_INTERVAL,
    metrics_path: ep.path ?? '/metrics',
    static_configs: [
      {
        targets: [METRICS],
        labels: {
          namespace: svc.metadata.namespace,
          service: svc.metadata.name,
          pod: `${deployment.metadata.name}-0`,
          container: container.name,
          job: svc.metadata.name,
          endpoint: ep.port,
        },
      },
    ],
  };
}

// ---- Prometheus HTTP API ---------------------------------------------------------------

interface PromSeries {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}

async function promApi(path: string, params: Array<[string, string]>): Promise<any> {
  const url = new URL(`http://${PROM}${path}`);
  for (const [k, v] of params) url.searchParams.append(k, v);
  const res = await fetch(url);
  const body = (await res.json()) as { status: string; data: any; error?: string };
  if (body.status !== 'success') throw new Error(`${path}: ${body.error}`);
  return body.data;
}

async function queryRange(expr: string, start: number, end: number, step: number): Promise<PromSeries[]> {
  const data = await promApi('/api/v1/query_range', [
    ['query', expr],
    ['start', String(start)],
    ['end', String(end)],
    ['step', String(step)],
  ]);
  return data.result as PromSeries[];
}

async function queryInstant(expr: string, time: number): Promise<PromSeries[]> {
  const data = await promApi('/api/v1/query', [
    ['query', expr],
    ['time', String(time)],
  ]);
  return (data.result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((r) => ({
    metric: r.metric,
    values: [r.value],
  }));
}

const hasFiniteValue = (s: PromSeries) => s.values.some(([, v]) => Number.isFinite(Number(v)));

// ---- Grafana's side: variables, targets, annotations -----------------------------------

/** A variable's value as Grafana formats it into PromQL: allValue raw, one value regex-escaped. */
type VarValues = Record<string, string>;

const regexEscape = (v: string) => v.replace(/[\\^$*+?.()|[\]{}]/g, '\\\\$&');

function durationSeconds(d: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(d);
  assert.ok(m, `duration ${d}`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** Substitutes $var, ${var}, ${var:fmt} and [[var]]; an unknown variable throws. */
function interpolate(expr: string, vars: VarValues): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, a, b, c) => {
    const name = (a ?? b ?? c) as string;
    const value = vars[name];
    if (value === undefined) throw new Error(`unknown variable ${whole} in ${expr}`);
    return value;
  });
}

interface Check {
  /** How the failure list names it: `panel "Title" target A`, `variable $x`, `annotation "Name"`. */
  where: string;
  pass: string;
  expr: string;
  series: number;
  error?: string;
}

interface Run {
  start: number;
  end: number;
}

/** Every panel, rows' nested panels included, in dashboard order. */
function allPanels(panels: Doc[]): Doc[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

function builtins(run: Run): VarValues {
  const range = Math.round(run.end - run.start);
  return {
    __rate_interval: RATE_INTERVAL,
    __interval: `${STEP_SECONDS}s`,
    __interval_ms: String(STEP_SECONDS * 1000),
    __range: `${range}s`,
    __range_s: String(range),
    __range_ms: String(range * 1000),
    datasource: 'prometheus',
  };
}

/** `label_values(selector, label)` / `label_values(label)`: what Grafana asks Prometheus. */
async function variableValues(query: string, run: Run): Promise<string[]> {
  const m = /^\s*label_values\(\s*(?:(.*),\s*)?(\w+)\s*\)\s*$/s.exec(query);
  if (!m) throw new Error(`variable query form not handled by this test: ${query}`);
  const params: Array<[string, string]> = [
    ['start', String(run.start)],
    ['end', String(run.end)],
  ];
  if (m[1]) params.push(['match[]', m[1]]);
  return (await promApi(`/api/v1/label/${m[2]}/values`, params)) as string[];
}

/** Grafana's annotation events: consecutive active points within `step` merge into one. */
function annotationEvents(series: PromSeries[], useValueForTime: boolean, stepSeconds: number): number[] {
  const events: number[] = [];
  for (const s of series) {
    let lastEnd: number | undefined;
    for (const [t, v] of s.values) {
      const time = useValueForTime ? Math.floor(Number(v)) : Math.floor(t) * 1000;
      if (!(useValueForTime ? Number.isFinite(Number(v)) : Number(v) > 0)) continue;
      if (lastEnd !== undefined && lastEnd + stepSeconds * 1000 >= time) {
        lastEnd = time;
        continue;
      }
      events.push(time);
      lastEnd = time;
    }
  }
  return events;
}

interface DashboardResults {
  checks: Check[];
  /** Results by `where` and pass, for the number checks. */
  series: Map<string, PromSeries[]>;
  /** Annotation events (ms) by annotation name and pass. */
  events: Map<string, number[]>;
  variables: Record<string, Record<string, string[]>>;
}

/**
 * Runs every query of the dashboard for one assignment of the template variables: `chosen`
 * names the concrete value of some (which their query must offer); the others are All.
 */
async function runDashboard(
  dash: Doc,
  run: Run,
  chosen: Record<string, string>,
  out: DashboardResults,
): Promise<void> {
  const pass = Object.keys(chosen).length
    ? Object.entries(chosen)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')
    : 'All';
  const vars = builtins(run);
  const record = (check: Check) => out.checks.push(check);
  for (const v of dash.templating.list as Doc[]) {
    if (v.type === 'datasource') continue;
    if (v.type !== 'query') throw new Error(`variable type ${v.type} ($${v.name}) not handled by this test`);
    const query = typeof v.query === 'string' ? v.query : v.query.query;
    const expr = interpolate(query, vars);
    let values: string[] = [];
    let error: string | undefined;
    try {
      values = await variableValues(expr, run);
    } catch (err) {
      error = (err as Error).message;
    }
    record({ where: `variable $${v.name}`, pass, expr, series: values.length, error });
    out.variables[pass] ??= {};
    out.variables[pass]![v.name] = values;
    const value = chosen[v.name];
    if (value !== undefined) {
      record({
        where: `variable $${v.name} offers "${value}" (it offers ${JSON.stringify(values)})`,
        pass,
        expr,
        series: values.includes(value) ? 1 : 0,
      });
      vars[v.name] = regexEscape(value);
    } else {
      assert.ok(v.includeAll && v.allValue, `$${v.name} has an All option with an allValue`);
      vars[v.name] = v.allValue;
    }
  }

  for (const panel of allPanels(dash.panels)) {
    if (panel.type === 'row' || panel.type === 'text') continue;
    const targets = (panel.targets ?? []).filter((t: Doc) => !t.hide);
    if (targets.length === 0) {
      record({ where: `panel "${panel.title}" (no targets)`, pass, expr: '', series: 0 });
      continue;
    }
    for (const t of targets) {
      const where = `panel "${panel.title}" target ${t.refId}`;
      const expr = interpolate(t.expr, vars);
      const kinds =
        t.instant === true && t.range !== true ? ['instant'] : t.instant ? ['instant', 'range'] : ['range'];
      for (const kind of kinds) {
        let series: PromSeries[] = [];
        let error: string | undefined;
        try {
          series =
            kind === 'instant'
              ? await queryInstant(expr, run.end)
              : await queryRange(expr, run.start, run.end, STEP_SECONDS);
        } catch (err) {
          error = (err as Error).message;
        }
        const useful = series.filter(hasFiniteValue);
        record({ where: `${where} (${kind})`, pass, expr, series: useful.length, error });
        out.series.set(`${panel.title}/${t.refId}/${kind}/${pass}`, useful);
      }
    }
  }

  for (const a of dash.annotations.list as Doc[]) {
    if (a.builtIn) continue;
    assert.equal(a.datasource?.type, 'prometheus', `annotation ${a.name} on a Prometheus data source`);
    const expr = interpolate(a.expr, vars);
    const step = durationSeconds(a.step ?? '60s');
    let events: number[] = [];
    let error: string | undefined;
    try {
      events = annotationEvents(await queryRange(expr, run.start, run.end, step), !!a.useValueForTime, step);
    } catch (err) {
      error = (err as Error).message;
    }
    record({ where: `annotation "${a.name}"`, pass, expr, series: events.length, error });
    out.events.set(`${a.name}/${pass}`, events);
  }
}

// ---- the test ----------------------------------------------------------------------------

describe('Grafana dashboard against a real Prometheus scraping an end-to-end run', {
  timeout: 1_200_000,
}, () => {
  let docs: Doc[];
  const run: Run = { start: 0, end: 0 };
  let oneOff: Doc;
  let scheduled: Doc;

  before(async () => {
    writeFileSync(clockFile, '0');
    [docs, cp, lab] = await Promise.all([
      renderChart(),
      startControlPlane({ podCidr: '127.0.101.0/24' }),
      startTestLab({ base: '127.0.76', dnsPort: 11353, apiPort: 11380 }),
    ]);
    const admin = cp.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    const custom = admin.makeApiClient(CustomObjectsApi);
    experiments = experimentClient(custom, NS);
    schedules = scheduleClient(custom, NS);
    const controllerKubeconfig = await prepareOperatorNamespace(cp, {
      dir: tmp,
      namespace: NS,
      alsoNamespaces: ['monitoring'],
      secrets: { 'lab-db': LAB_PASSWORD },
    });
    // Prometheus' own identity: list and watch pods, nothing else.
    const promRbac = kubectl(
      ['apply', '-f', '-'],
      [
        {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: 'prometheus', namespace: 'monitoring' },
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: 'prometheus-pods' },
          rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: 'prometheus-pods' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'prometheus-pods' },
          subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: 'monitoring' }],
        },
      ]
        .map((d) => stringify(d))
        .join('---\n'),
    );
    assert.equal(promRbac.code, 0, promRbac.out);

    const podMonitor = docs.find((d) => d.kind === 'PodMonitor');
    const serviceMonitor = docs.find((d) => d.kind === 'ServiceMonitor');
    assert.ok(podMonitor && serviceMonitor, 'the chart renders a PodMonitor and a ServiceMonitor');
    podSd = await startPodDiscovery(
      cp.kubeConfig(serviceAccountToken(cp, 'prometheus', 'monitoring')).makeApiClient(CoreV1Api),
      monitorNamespaces(podMonitor),
    );
    const controllerScrape = serviceMonitorJob(serviceMonitor, docs);
    controllerJob = controllerScrape.static_configs[0].labels.job;
    proberJob = `${podMonitor.metadata.namespace}/${podMonitor.metadata.name}`;
    const config = {
      global: { scrape_interval: SCRAPE_INTERVAL, scrape_timeout: SCRAPE_INTERVAL },
      scrape_configs: [controllerScrape, podMonitorJob(podMonitor)],
    };
    writeFileSync(join(tmp, 'prometheus.yml'), stringify(config));
    mkdirSync(join(tmp, 'prometheus-data'));
    const log = openSync(join(tmp, 'prometheus.log'), 'a');
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(tmp, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(tmp, 'prometheus-data')}`,
        `--web.listen-address=${PROM}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', log, log] },
    );
    operator = spawnOperator({
      kubeconfig: controllerKubeconfig,
      listen: METRICS,
      logFile: join(tmp, 'operator.log'),
      env: { FAILWATCH_CLOCK_OFFSET_FILE: clockFile },
    });
    await waitFor('Prometheus ready', async () => {
      if (prometheus!.exitCode !== null) throw new GiveUp(`prometheus exited ${prometheus!.exitCode}`);
      return (await fetch(`http://${PROM}/-/ready`)).status === 200 ? true : undefined;
    });
    await waitFor('the controller scraped', async () =>
      (await queryInstant(`up{job="${controllerJob}"} == 1`, Date.now() / 1000)).length === 1
        ? true
        : undefined,
    );
  });

  after(async () => {
    await stopProcess(operator, 'SIGKILL');
    await stopProcess(prometheus, 'SIGTERM');
    podSd?.close();
    await cp?.stop();
    await lab?.down();
  });

  it('ships the dashboard in the chart ConfigMap unchanged', () => {
    const cm = docs.find((d) => d.kind === 'ConfigMap' && d.data?.['failwatch.json']);
    assert.ok(cm, 'a ConfigMap carries failwatch.json');
    assert.deepEqual(JSON.parse(cm.data['failwatch.json']), JSON.parse(readFileSync(DASHBOARD, 'utf8')));
  });

  it('runs an experiment and a FailoverSchedule run on the lab while Prometheus scrapes', async () => {
    const runsStart = Date.now() / 1000;
    const doc = labExperiment(lab, EXPERIMENT, NS);
    await experiments.create(doc);
    // The prober pods are found through the apiserver and scraped while they probe.
    await waitFor(
      'prober pods scraped',
      async () => {
        const up = await queryInstant(`up{job="${proberJob}"} == 1`, Date.now() / 1000);
        return up.length === doc.spec.endpoints.length ? true : undefined;
      },
      60_000,
    );
    oneOff = await waitFor(`${EXPERIMENT} done`, finished(EXPERIMENT), 180_000);
    assert.equal(oneOff.status.phase, 'Completed', JSON.stringify(oneOff.status.conditions));
    await waitFor('the lab to be idle', labIdle(lab));

    // A daily schedule whose tick the controller's clock is moved just past: one run, and the
    // next tick a day away (so the next-run series exists and no second failover starts).
    await schedules.create({
      apiVersion: 'failwatch.io/v1alpha1',
      kind: 'FailoverSchedule',
      metadata: { name: SCHEDULE, namespace: NS },
      spec: { schedule: '0 3 * * *', timeZone: 'UTC', experimentTemplate: { spec: doc.spec } },
    });
    const next = await waitFor(
      'nextScheduleTime',
      async () => (await schedules.get(SCHEDULE)).status?.nextScheduleTime as string | undefined,
    );
    writeFileSync(clockFile, String((Date.parse(next) + 2000 - Date.now()) / 1000));
    const child = await waitFor('the scheduled run', async () => (await experiments.runsOf(SCHEDULE))[0]);
    scheduled = await waitFor(`${child.metadata.name} done`, finished(child.metadata.name), 180_000);
    assert.equal(scheduled.status.phase, 'Completed', JSON.stringify(scheduled.status.conditions));

    // Everything the controller derives from the finished runs has been scraped.
    const now = () => Date.now() / 1000;
    await waitFor(
      'results and schedule series in Prometheus',
      async () => {
        const ready = await Promise.all([
          queryInstant(`failwatch_schedule_runs{schedule="${SCHEDULE}"}`, now()),
          queryInstant(`failwatch_experiment_verdict{experiment="${scheduled.metadata.name}"}`, now()),
          queryInstant(
            `failwatch_experiment_trigger_timestamp_seconds{experiment=~"${EXPERIMENT}|${scheduled.metadata.name}"}`,
            now(),
          ),
          queryInstant(`failwatch_experiments{phase="Completed"} >= 2`, now()),
        ]);
        return ready[0].length > 0 && ready[1].length > 0 && ready[2].length === 2 && ready[3].length > 0
          ? true
          : undefined;
      },
      30_000,
    );
    await waitFor('prober pods gone', async () =>
      (await core.listNamespacedPod({ namespace: NS })).items.length === 0 ? true : undefined,
    );
    // The user opens the dashboard (its default time range) once every annotation query's
    // step grid has had a point after the last run ended: Grafana samples them only there.
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Doc;
    const maxStep = Math.max(
      ...(dash.annotations.list as Doc[])
        .filter((a) => !a.builtIn)
        .map((a) => durationSeconds(a.step ?? '60s')),
    );
    const lastChange = Date.parse(scheduled.status.completionTime) / 1000;
    await sleep(Math.max(0, (lastChange + maxStep + 3) * 1000 - Date.now()));
    run.end = Math.ceil(Date.now() / 1000);
    assert.equal(dash.time.to, 'now');
    const from = /^now-(\w+)$/.exec(dash.time.from);
    assert.ok(from, `dashboard time.from ${dash.time.from}`);
    run.start = run.end - durationSeconds(from[1]!);
    console.log(
      `runs: ${EXPERIMENT} write downtime ${oneOff.status.endpoints[0].writeDowntimeSeconds} s, ${scheduled.metadata.name} ${scheduled.status.endpoints[0].writeDowntimeSeconds} s; both in ${Math.round(lastChange - runsStart)} s; dashboard range ${dash.time.from}..${dash.time.to}`,
    );
  });

  it('every panel target, variable and annotation returns data, with All and with each concrete value', async () => {
    assert.ok(run.end > run.start, 'the runs finished');
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Doc;
    const out: DashboardResults = { checks: [], series: new Map(), events: new Map(), variables: {} };
    await runDashboard(dash, run, {}, out);
    // Concrete values as a user picks them: the namespace, each experiment that ran, and the
    // cluster endpoint (the one every panel has data for in both runs).
    for (const experiment of [EXPERIMENT, scheduled.metadata.name])
      await runDashboard(dash, run, { namespace: NS, experiment, endpoint: 'cluster' }, out);
    const all = out.variables.All!;
    const empty = out.checks.filter((c) => c.series === 0);
    const panels = new Set(out.checks.filter((c) => c.where.startsWith('panel')).map((c) => c.where));
    console.log(
      `${out.checks.length} queries (${panels.size} panel targets, ${Object.keys(out.variables).length} variable passes), ${empty.length} empty`,
    );
    for (const c of out.checks) console.log(`  ${c.series.toString().padStart(3)}  [${c.pass}] ${c.where}`);
    assert.deepEqual(
      empty.map((c) => `[${c.pass}] ${c.where}${c.error ? `: ${c.error}` : ''}\n    ${c.expr}`),
      [],
      'dashboard queries that returned nothing',
    );

    // The variables offer exactly what the runs measured (no scrape label leaks in).
    const endpointNames = oneOff.spec.endpoints.map((e: Doc) => e.name).sort();
    assert.deepEqual(all.namespace, [NS]);
    assert.deepEqual([...all.experiment!].sort(), [EXPERIMENT, scheduled.metadata.name].sort());
    assert.deepEqual([...all.endpoint!].sort(), endpointNames);

    // Numbers: what the panels show is what the runs' status says.
    for (const exp of [oneOff, scheduled]) {
      const pass = `namespace=${NS} experiment=${exp.metadata.name} endpoint=cluster`;
      const cluster = exp.status.endpoints.find((e: Doc) => e.name === 'cluster');
      const last = (s: PromSeries) => Number(s.values.at(-1)![1]);
      const downtime = out.series.get(`Last downtime per endpoint/A/instant/${pass}`)!;
      const byKind = Object.fromEntries(downtime.map((s) => [s.metric.kind, last(s)]));
      assert.deepEqual(
        byKind,
        { write: cluster.writeDowntimeSeconds, read: cluster.readDowntimeSeconds },
        `${exp.metadata.name}: downtime panel vs status`,
      );
      const history = out.series.get(`Downtime history across runs/A/range/${pass}`)!;
      assert.equal(last(history.find((s) => s.metric.kind === 'write')!), cluster.writeDowntimeSeconds);
      const verdicts = out.series.get(`Verdicts/A/instant/${pass}`)!;
      assert.deepEqual(
        verdicts.map((s) => s.metric.verdict),
        [exp.status.verdict],
      );

      // Attempts by error class: a non-ok class while failing over, none before the trigger.
      const t0 = Date.parse(exp.status.triggerTime) / 1000;
      const t1 = Date.parse(exp.status.completionTime) / 1000;
      const classes = out.series.get(`Attempts by error class/A/range/${pass}`)!;
      const bad = classes.filter((s) => s.metric.class !== 'ok');
      const during = bad.filter((s) => s.values.some(([t, v]) => t >= t0 && t <= t1 + 15 && Number(v) > 0));
      assert.ok(during.length > 0, `${exp.metadata.name}: a non-ok class during the failover`);
      // A baseline attempt over the slow threshold is a real figure on a loaded machine (the
      // baseline tolerates a few; the counters are compared with status below): only slow.
      const before = bad.filter((s) => s.values.some(([t, v]) => t < t0 && Number(v) > 0));
      assert.deepEqual(
        before.map((s) => s.metric.class).filter((c) => c !== 'slow'),
        [],
        'no error class but slow before the trigger',
      );
      console.log(
        `${exp.metadata.name}: classes during the failover: ${during.map((s) => s.metric.class).join(', ')}`,
      );

      // The success rate dips by at least half of what the measured write downtime implies.
      const rate = out.series.get(`Probe success rate/A/range/${pass}`)!;
      const write = rate.find((s) => s.metric.kind === 'write')!;
      const minDuring = Math.min(
        ...write.values.filter(([t]) => t >= t0 && t <= t1).map(([, v]) => Number(v)),
      );
      const window = durationSeconds(RATE_INTERVAL);
      const expectedDip = Math.min(cluster.writeDowntimeSeconds, window) / window;
      assert.ok(
        minDuring < 1 - expectedDip / 2,
        `success rate min ${minDuring} during a ${cluster.writeDowntimeSeconds} s write outage`,
      );

      // The counters as last scraped hold exactly the errors the results counted.
      const counted = await queryInstant(
        `sum by (class) (max_over_time(failwatch_probe_attempts_total{namespace="${NS}", experiment="${exp.metadata.name}", endpoint="cluster", class!="ok"}[${run.end - run.start}s])) > 0`,
        run.end,
      );
      assert.deepEqual(
        Object.fromEntries(counted.map((s) => [s.metric.class, Number(s.values[0]![1])])),
        cluster.errors,
        `${exp.metadata.name}: error counts in Prometheus vs status`,
      );

      // The trigger annotation sits at T0.
      const triggers = out.events.get(`Failover triggered/${pass}`)!;
      assert.deepEqual(
        triggers.map((ms) => Math.abs(ms - Date.parse(exp.status.triggerTime)) <= 1),
        [true],
        `${exp.metadata.name}: one trigger annotation at ${exp.status.triggerTime}, got ${triggers.map((ms) => new Date(ms).toISOString())}`,
      );
    }
    assert.equal(out.events.get('Failover triggered/All')!.length, 2, 'one trigger annotation per run');
    const scheduleDowntime = out.series.get('Schedule last downtime/A/instant/All')!;
    const cluster = scheduled.status.endpoints.find((e: Doc) => e.name === 'cluster');
    assert.equal(
      Number(
        scheduleDowntime.find((s) => s.metric.endpoint === 'cluster' && s.metric.kind === 'write')!
          .values[0]![1],
      ),
      cluster.writeDowntimeSeconds,
      'the schedule panel shows its run downtime',
    );
  });
});
