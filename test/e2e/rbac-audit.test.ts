// Least privilege, measured: the controller runs as its ServiceAccount with exactly the RBAC of
// config/rbac.yaml (the chart's, test/e2e/chart.test.ts) on a real kube-apiserver that writes an
// audit log (level Metadata). A workload that touches every rule runs twice: cluster-wide (the
// ClusterRole) and namespaced (--namespaces, the same rules in a Role per namespace, the
// chart's watchNamespaces). For each mode the audit log must show every rule of the controller
// used at least once, and no request of the controller denied (403). The table of used rules is
// printed.
// The workload: a lab run with the per-run NetworkPolicy whose results ConfigMap already exists
// (create, then update), a second run on the same target (TargetLocked: the lock holder is read),
// a run whose CA Secret is missing (SecretNotFound from the pod's FailedMount Event), a
// FailoverSchedule run refused by the allowlist and pruned by failedRunsHistoryLimit 0, and a
// report page request (TokenReview, SubjectAccessReview, the results ConfigMap).
// `*/finalizers update` is not a request: the OwnerReferencesPermissionEnforcement admission
// plugin (enabled here) checks it when the controller creates an object whose ownerReference
// sets blockOwnerDeletion, so it counts as used when such a create succeeded.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';
import {
  experimentClient,
  LAB_PASSWORD,
  labExperiment,
  prepareOperatorNamespace,
  SYSTEM_NS,
  scheduleClient,
  spawnOperator,
  stopProcess,
  waiter,
} from '../helpers/operator-env.ts';

type Doc = Record<string, any>;

const NS = ['team-a', 'team-b'] as const;
const LISTEN = '127.0.77.7:18590';
const PAGES = `http://${LISTEN}`;
const CONTROLLER_USER = `system:serviceaccount:${SYSTEM_NS}:failwatch-controller`;
const NETWORK_POLICY = JSON.stringify({
  controllerPodSelector: { matchLabels: { 'app.kubernetes.io/name': 'failwatch' } },
});
const tmp = mkdtempSync(join(tmpdir(), 'fw-audit-'));
const LOG = join(tmp, 'operator.log');

let cp: ControlPlane;
let lab: TestLab;
let operator: ChildProcess | undefined;
let saKubeconfig: string;
let core: CoreV1Api;
let custom: CustomObjectsApi;

const waitFor = waiter({ timeoutMs: 120_000, intervalMs: 250, logs: { operator: LOG } });

/** One RBAC rule as (scope, apiGroup, resource, verb[, resourceName]). */
interface Rule {
  /** '*' for a ClusterRole, else the Role's namespace. */
  scope: string;
  group: string;
  resource: string;
  verb: string;
  resourceNames?: string[];
}

interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  user: { username: string };
  objectRef?: {
    apiGroup?: string;
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
  };
  responseStatus?: { code?: number };
}

function rulesOf(docs: Doc[]): Rule[] {
  const out: Rule[] = [];
  for (const d of docs.filter((x) => x?.kind === 'ClusterRole' || x?.kind === 'Role'))
    for (const r of d.rules ?? [])
      for (const group of r.apiGroups ?? [''])
        for (const resource of r.resources ?? [])
          for (const verb of r.verbs ?? [])
            out.push({
              scope: d.kind === 'Role' ? d.metadata.namespace : '*',
              group,
              resource,
              verb,
              ...(r.resourceNames ? { resourceNames: r.resourceNames } : {}),
            });
  return out;
}

const ruleText = (r: Rule) =>
  `${r.scope === '*' ? 'cluster' : r.scope} ${r.group || 'core'} ${r.resource} ${r.verb}${r.resourceNames ? ` [${r.resourceNames}]` : ''}`;

/** The controller's requests in the audit log from byte `from` on (one per auditID). */
function controllerRequests(from: number): AuditEvent[] {
  // `from` is a byte offset (the file's size earlier): slice the bytes, not the decoded text
  // (Event messages carry non-ASCII characters), and leave out a last line still being written.
  const text = readFileSync(cp.auditLogPath!).subarray(from).toString('utf8');
  const lines = text.split('\n');
  if (!text.endsWith('\n')) lines.pop();
  const byId = new Map<string, AuditEvent>();
  for (const line of lines) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as AuditEvent;
    if (e.user?.username !== CONTROLLER_USER) continue;
    // A watch logs ResponseStarted, and ResponseComplete when it ends: keep the latest stage.
    byId.set(e.auditID, e);
  }
  return [...byId.values()];
}

function matches(rule: Rule, e: AuditEvent): boolean {
  const ref = e.objectRef;
  if (!ref?.resource) return false;
  const resource = ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource;
  return (
    (ref.apiGroup ?? '') === rule.group &&
    resource === rule.resource &&
    e.verb === rule.verb &&
    (rule.scope === '*' || ref.namespace === rule.scope) &&
    (!rule.resourceNames || rule.resourceNames.includes(ref.name ?? ''))
  );
}

/** Creates that the owner-reference admission plugin checked against `<owner>/finalizers update`. */
const OWNED_CREATES: Record<string, { group: string; resource: string }> = {
  'failoverexperiments/finalizers': { group: '', resource: 'pods' },
  'failoverschedules/finalizers': { group: 'failwatch.io', resource: 'failoverexperiments' },
};

function usage(rules: Rule[], requests: AuditEvent[]): { rule: Rule; count: number; how: string }[] {
  return rules.map((rule) => {
    const owned = rule.verb === 'update' ? OWNED_CREATES[rule.resource] : undefined;
    if (owned) {
      const count = requests.filter(
        (e) =>
          e.verb === 'create' &&
          (e.objectRef?.apiGroup ?? '') === owned.group &&
          e.objectRef?.resource === owned.resource &&
          (rule.scope === '*' || e.objectRef?.namespace === rule.scope) &&
          (e.responseStatus?.code ?? 0) < 300,
      ).length;
      return { rule, count, how: `admission (create ${owned.resource})` };
    }
    return { rule, count: requests.filter((e) => matches(rule, e)).length, how: 'request' };
  });
}

function printTable(mode: string, rows: { rule: Rule; count: number; how: string }[]): void {
  const lines = rows.map((r) => `  ${ruleText(r.rule).padEnd(72)} ${String(r.count).padStart(5)}  ${r.how}`);
  console.log(`RBAC rules used by the controller (${mode}):\n${lines.join('\n')}`);
}

function startOperator(args: string[]): ChildProcess {
  return spawnOperator({
    kubeconfig: saKubeconfig,
    listen: LISTEN,
    logFile: LOG,
    args: ['--allowed-targets', '*/lab-*', '--prober-network-policy', NETWORK_POLICY, ...args],
  });
}

/** The workload that uses every rule, in namespace `ns`; resolves when it is done. */
async function workload(ns: string): Promise<void> {
  const experiments = experimentClient(custom, ns);
  const schedules = scheduleClient(custom, ns);
  // Generous timeouts: a loaded machine must not make the baseline unhealthy.
  const patient = (d: Doc) => {
    for (const e of d.spec.endpoints) Object.assign(e, { slowThreshold: '2s', queryTimeout: '5s' });
  };
  const gameday = await experiments.create(
    labExperiment(lab, 'gameday', ns, { connectTimeout: '3s', edit: patient }),
  );
  // Its results ConfigMap exists already, as a controller restarted in Analyzing finds it: the
  // controller creates (409), then updates. (Owned by the run: under the owner-reference
  // admission plugin, replacing a ConfigMap with other owners would need configmaps delete.)
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: {
        name: 'gameday-results',
        ownerReferences: [
          {
            apiVersion: 'failwatch.io/v1alpha1',
            kind: 'FailoverExperiment',
            name: 'gameday',
            uid: gameday.metadata.uid,
            controller: true,
          },
        ],
      },
      data: { 'results.json': '{}' },
    },
  });
  await waitFor(
    'gameday running',
    experiments.phaseIs('gameday', ['Preflight', 'Baseline', 'Triggering', 'Observing']),
  );
  // The same target: blocked by gameday's lock (its holder is read: get failoverexperiments).
  await experiments.create(labExperiment(lab, 'second', ns, { edit: patient }));
  await waitFor('second TargetLocked', async () =>
    (await experiments.get('second')).status?.reason === 'TargetLocked' ? true : undefined,
  );
  await experiments.delete('second');
  // Another target whose CA Secret is missing: SecretNotFound from the pod's FailedMount Event.
  await experiments.create(
    labExperiment(lab, 'noca', ns, {
      edit: (d) => {
        d.spec.target.clusterIdentifier = 'lab-other';
        d.spec.endpoints = [d.spec.endpoints[0]];
        d.spec.endpoints[0].tls = { mode: 'verify-full', caSecretRef: { name: 'ca-missing' } };
      },
    }),
  );
  // A schedule whose run the allowlist refuses; failedRunsHistoryLimit 0 prunes it (delete).
  const template = labExperiment(lab, 'template', ns, {
    edit: (d) => (d.spec.target.clusterIdentifier = 'prod-orders'),
  });
  await schedules.create({
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverSchedule',
    metadata: { name: 'weekly', namespace: ns },
    spec: {
      schedule: '* * * * *',
      successfulRunsHistoryLimit: 0,
      failedRunsHistoryLimit: 0,
      experimentTemplate: { spec: template.spec },
    },
  });
  const noca = await waitFor('noca Blocked', async () => {
    const o = await experiments.get('noca');
    return o.status?.reason === 'SecretNotFound' ? o : undefined;
  });
  const blocked = noca.status.conditions.find((c: Doc) => c.type === 'Blocked');
  assert.match(blocked.message, /Secret ca-missing not found in namespace team-/);
  await experiments.delete('noca');
  const done = await waitFor(
    'gameday done',
    experiments.phaseIs('gameday', ['Completed', 'Failed']),
    180_000,
  );
  assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
  const page = await fetch(`${PAGES}/reports/${ns}/gameday`, {
    headers: { authorization: `Bearer ${cp.token}` },
  });
  assert.equal(page.status, 200, await page.text());
  // The schedule's run: created at the next minute, refused, then pruned.
  await waitFor(
    'a scheduled run created and pruned',
    async () => {
      const s = await schedules.get('weekly');
      const runs = await experiments.runsOf('weekly');
      return s.status?.lastScheduleTime && runs.length === 0 ? true : undefined;
    },
    90_000,
  );
}

function check(mode: string, rules: Rule[], from: number): void {
  const requests = controllerRequests(from);
  const denied = requests.filter((e) => e.responseStatus?.code === 403);
  const rows = usage(rules, requests);
  printTable(mode, rows);
  assert.deepEqual(
    denied.map(
      (e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource ?? ''} ${e.objectRef?.namespace}`,
    ),
    [],
    'no request of the controller was denied',
  );
  assert.deepEqual(
    rows.filter((r) => r.count === 0).map((r) => ruleText(r.rule)),
    [],
    'every rule was used',
  );
}

const reference = parseAllDocuments(readFileSync('config/rbac.yaml', 'utf8')).map((d) => d.toJSON() as Doc);

describe('the controller uses every RBAC rule it has and needs no other', { timeout: 600_000 }, () => {
  before(async () => {
    [cp, lab] = await Promise.all([
      startControlPlane({
        podCidr: '127.0.105.0/24',
        audit: true,
        admissionPlugins: ['OwnerReferencesPermissionEnforcement'],
      }),
      startTestLab({ base: '127.0.79', dnsPort: 11553, apiPort: 11580 }),
    ]);
    const admin = cp.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);
    saKubeconfig = await prepareOperatorNamespace(cp, {
      dir: tmp,
      namespace: NS[0],
      alsoNamespaces: [NS[1]],
      secrets: { 'lab-db': LAB_PASSWORD },
    });
    await core.createNamespacedSecret({
      namespace: NS[1],
      body: { metadata: { name: 'lab-db' }, stringData: { username: 'failwatch', password: LAB_PASSWORD } },
    });
  });

  after(async () => {
    await stopProcess(operator);
    await cp?.stop();
    await lab?.down();
  });

  it('cluster-wide (config/rbac.yaml as it is)', async () => {
    const from = statSync(cp.auditLogPath!).size;
    operator = startOperator([]);
    await workload(NS[0]);
    await stopProcess(operator);
    check('cluster-wide', rulesOf(reference), from);
  });

  it('namespaced (--namespaces, the same rules in a Role per namespace)', async () => {
    await stopProcess(operator); // (still running if the first mode failed)
    // The ClusterRole's grant goes; its rules come back as a Role in each watched namespace.
    const r = cp.kubectl(['delete', 'clusterrolebinding', 'failwatch-controller']);
    assert.equal(r.code, 0, r.out);
    const tenant = reference.find(
      (d) => d?.kind === 'ClusterRole' && d.metadata.name === 'failwatch-controller',
    )!;
    const roles = NS.flatMap((ns) => [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'failwatch', namespace: ns },
        rules: tenant.rules,
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'failwatch', namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'failwatch' },
        subjects: [{ kind: 'ServiceAccount', name: 'failwatch-controller', namespace: SYSTEM_NS }],
      },
    ]);
    const applied = cp.kubectl(['apply', '-f', '-'], roles.map((d) => stringify(d)).join('---\n'));
    assert.equal(applied.code, 0, applied.out);
    // A fresh start: the controller key and the leader Lease are created again.
    for (const args of [
      ['delete', 'secret', 'failwatch-run-token-key', '-n', SYSTEM_NS],
      ['delete', 'lease', 'failwatch-controller-leader', '-n', SYSTEM_NS],
    ])
      assert.equal(cp.kubectl(args).code, 0);
    const from = statSync(cp.auditLogPath!).size;
    operator = startOperator(['--namespaces', NS.join(',')]);
    await workload(NS[1]);
    await stopProcess(operator);
    const namespaced = [
      ...rulesOf(reference.filter((d) => d?.metadata?.name !== 'failwatch-controller')),
      ...rulesOf(roles),
    ];
    // team-a is watched but has no workload this time: there only the informers' list/watch
    // rules are used, the rest in the namespace that ran.
    const watched = ['failoverexperiments', 'failoverschedules', 'pods'];
    check(
      'namespaced',
      namespaced.filter(
        (r) => r.scope !== NS[0] || (['list', 'watch'].includes(r.verb) && watched.includes(r.resource)),
      ),
      from,
    );
    // Nothing cluster-wide but the two review APIs.
    const clusterWide = controllerRequests(from).filter(
      (e) => e.objectRef?.resource && !e.objectRef.namespace,
    );
    assert.deepEqual([...new Set(clusterWide.map((e) => `${e.verb} ${e.objectRef!.resource}`))].sort(), [
      'create subjectaccessreviews',
      'create tokenreviews',
    ]);
  });
});
