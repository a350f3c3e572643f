// A hostile tenant, end to end, on a real control plane and the lab. Namespace `team-a` runs a
// real failover; `mallory` is a ServiceAccount with the `edit` ClusterRole (plus create/get on
// FailoverExperiments) in namespace `team-b`, using its real token. Mallory cannot:
// - read A's report (401 without a token, 403 with hers; the index does not list A's runs);
// - stop A's probers (401 without A's run token, with her own token or a guessed one; A's run
//   goes on to Completed with every sample);
// - fail over a target outside the allowlist (TargetNotAllowed, also the same name in another
//   region), or make the controller call a foreign URL (rdsEndpoint without
//   --allow-rds-endpoint-override: RdsEndpointNotAllowed, and the foreign URL gets 0 requests);
// - make the controller read a Secret of namespace A (it looks in B only), or name a Secret,
//   host or database that is not a name (refused by `kubectl apply` with the field path).
// Malformed requests to the prober API and the report pages get 4xx and both keep serving. The
// per-run token Secret and NetworkPolicy are checked by shape (the test node enforces no
// NetworkPolicies; the token is enforced for real).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi, NetworkingV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';
import {
  experimentClient,
  LAB_PASSWORD,
  labExperiment,
  prepareOperatorNamespace,
  SYSTEM_NS,
  serviceAccountToken,
  spawnOperator,
  stopProcess,
  waiter,
} from '../helpers/operator-env.ts';

const A = 'team-a';
const B = 'team-b';
const LISTEN = '127.0.77.5:18580';
const PAGES = `http://${LISTEN}`;
const FOREIGN = { host: '127.0.77.9', port: 18581 };
const CONTROLLER_LABELS = {
  'app.kubernetes.io/name': 'failwatch',
  'app.kubernetes.io/component': 'controller',
};
const NETWORK_POLICY = JSON.stringify({
  controllerPodSelector: { matchLabels: CONTROLLER_LABELS },
  scraperNamespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
  scraperPodSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
});
const tmp = mkdtempSync(join(tmpdir(), 'fw-sec-'));
const LOG = join(tmp, 'operator.log');

let cp: ControlPlane;
let lab: TestLab;
let operator: ChildProcess | undefined;
let saKubeconfig: string;
let core: CoreV1Api;
let networking: NetworkingV1Api;
let expA: ReturnType<typeof experimentClient>;
let expB: ReturnType<typeof experimentClient>;
let mallory: string;
let alice: string;
let foreign: Server;
const foreignRequests: string[] = [];

const waitFor = waiter({ timeoutMs: 120_000, intervalMs: 250, logs: { operator: LOG } });

function startOperator(override: boolean): ChildProcess {
  return spawnOperator({
    kubeconfig: saKubeconfig,
    listen: LISTEN,
    logFile: LOG,
    noRdsEndpointOverride: !override,
    args: ['--allowed-targets', 'us-east-1/lab-*', '--prober-network-policy', NETWORK_POLICY],
  });
}

async function restartOperator(override: boolean): Promise<void> {
  await stopProcess(operator);
  operator = startOperator(override);
  await waitFor('the operator to lead', async () =>
    (await fetch(`${PAGES}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined,
  );
}

/** kubectl as a bearer token (Mallory's), or the admin. */
function kubectlAs(token: string | undefined, args: string[], input?: string) {
  return cp.kubectl([...(token ? [`--token=${token}`] : []), ...args], input);
}

async function http(
  url: string,
  init: RequestInit & { token?: string } = {},
): Promise<{ status: number; body: string }> {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set('authorization', `Bearer ${init.token}`);
  const res = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** A client model as plain JSON (deepStrictEqual compares prototypes). */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value));

const conditionOf = (obj: Record<string, any>, type: string) =>
  (obj.status?.conditions ?? []).find((c: Record<string, any>) => c.type === type);

describe('a hostile tenant', { timeout: 900_000 }, () => {
  before(async () => {
    cp = await startControlPlane({
      podCidr: '127.0.102.0/24',
      // clusterrole-aggregation fills the `edit` ClusterRole Mallory is bound to.
      controllers: ['garbagecollector', 'namespace', 'serviceaccount', 'clusterrole-aggregation'],
    });
    lab = await startTestLab({ base: '127.0.72', dnsPort: 11453, apiPort: 11480 });
    const admin = cp.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    networking = admin.makeApiClient(NetworkingV1Api);
    const custom = admin.makeApiClient(CustomObjectsApi);
    expA = experimentClient(custom, A);
    expB = experimentClient(custom, B);
    saKubeconfig = await prepareOperatorNamespace(cp, {
      dir: tmp,
      namespace: A,
      alsoNamespaces: [B],
      secrets: { 'lab-db': LAB_PASSWORD },
    });
    // Mallory: `edit` in B, and FailoverExperiments in B (what a cluster admin grants a team).
    // Alice: may get FailoverExperiments in A.
    const rbac = cp.kubectl(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: ServiceAccount
metadata: { name: mallory, namespace: ${B} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: mallory-edit, namespace: ${B} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit }
subjects: [{ kind: ServiceAccount, name: mallory, namespace: ${B} }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: failwatch-user, namespace: ${B} }
rules:
  - { apiGroups: [failwatch.io], resources: [failoverexperiments], verbs: [get, list, watch, create, delete] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: mallory-failwatch, namespace: ${B} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: failwatch-user }
subjects: [{ kind: ServiceAccount, name: mallory, namespace: ${B} }]
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: alice, namespace: ${A} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: failwatch-viewer, namespace: ${A} }
rules:
  - { apiGroups: [failwatch.io], resources: [failoverexperiments], verbs: [get, list] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: alice-viewer, namespace: ${A} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: failwatch-viewer }
subjects: [{ kind: ServiceAccount, name: alice, namespace: ${A} }]
`,
    );
    assert.equal(rbac.code, 0, rbac.out);
    mallory = serviceAccountToken(cp, 'mallory', B);
    alice = serviceAccountToken(cp, 'alice', A);
    // `edit` is real: Mallory may read and write Secrets in B, nothing in A.
    await waitFor('edit to be aggregated', async () =>
      kubectlAs(mallory, ['auth', 'can-i', 'create', 'secrets', '-n', B]).out.trim() === 'yes'
        ? true
        : undefined,
    );
    assert.equal(kubectlAs(mallory, ['auth', 'can-i', 'get', 'secrets', '-n', A]).out.trim(), 'no');
    assert.equal(
      kubectlAs(mallory, ['auth', 'can-i', 'get', 'failoverexperiments', '-n', A]).out.trim(),
      'no',
    );
    foreign = createServer((req, res) => {
      foreignRequests.push(`${req.method} ${req.url}`);
      res.writeHead(500).end();
    });
    // Any TCP connection counts (a database driver would not send HTTP).
    foreign.on('connection', () => foreignRequests.push('connection'));
    await new Promise<void>((resolve) => foreign.listen(FOREIGN.port, FOREIGN.host, resolve));
    operator = startOperator(false);
    await waitFor('the operator to lead', async () =>
      (await fetch(`${PAGES}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined,
    );
  });

  after(async () => {
    await stopProcess(operator);
    foreign?.close();
    await cp?.stop();
    await lab?.down();
  });

  it('refuses names that are not names at kubectl apply, with the field path', () => {
    const cases: [string, (d: Record<string, any>) => void, RegExp][] = [
      [
        'host',
        (d) => (d.spec.endpoints[0].host = 'evil.example.com/x?y'),
        /spec\.endpoints\[0\]\.host: Invalid value/,
      ],
      [
        'database',
        (d) => (d.spec.endpoints[0].database = 'app"; DROP TABLE failwatch_probe; --'),
        /spec\.endpoints\[0\]\.database: Invalid value/,
      ],
      [
        'Secret in another namespace',
        (d) => (d.spec.endpoints[0].credentials.secretRef.name = '../team-a/lab-db'),
        /spec\.endpoints\[0\]\.credentials\.secretRef\.name: Invalid value/,
      ],
      [
        'Secret key',
        (d) => (d.spec.endpoints[0].credentials.secretRef.passwordKey = 'pass word'),
        /spec\.endpoints\[0\]\.credentials\.secretRef\.passwordKey: Invalid value/,
      ],
      [
        'CA Secret',
        (d) => (d.spec.endpoints[0].tls = { mode: 'verify-full', caSecretRef: { name: 'CA_Bundle' } }),
        /spec\.endpoints\[0\]\.tls\.caSecretRef\.name: Invalid value/,
      ],
    ];
    for (const [what, edit, message] of cases) {
      const doc = labExperiment(lab, 'bad-input', B, { edit });
      const r = kubectlAs(mallory, ['apply', '-f', '-'], stringify(doc));
      assert.notEqual(r.code, 0, `${what}: ${r.out}`);
      assert.match(r.out, message, what);
    }
    const ok = kubectlAs(
      mallory,
      ['apply', '--dry-run=server', '-f', '-'],
      stringify(labExperiment(lab, 'ok', B)),
    );
    assert.equal(ok.code, 0, ok.out);
  });

  it('cannot make the controller call a foreign URL: RdsEndpointNotAllowed before any call', async () => {
    const doc = labExperiment(lab, 'ssrf', B, {
      secret: 'b-db',
      edit: (d) => (d.spec.target.rdsEndpoint = `http://${FOREIGN.host}:${FOREIGN.port}/`),
    });
    const r = kubectlAs(mallory, ['apply', '-f', '-'], stringify(doc));
    assert.equal(r.code, 0, r.out);
    const failed = await waitFor('ssrf Failed', expB.phaseIs('ssrf', ['Failed', 'Completed']));
    const c = conditionOf(failed, 'Failed');
    assert.equal(c.reason, 'RdsEndpointNotAllowed');
    assert.match(c.message, /--allow-rds-endpoint-override/);
    assert.deepEqual(foreignRequests, [], 'the foreign URL got no request');
    assert.equal((await core.listNamespacedPod({ namespace: B })).items.length, 0, 'no prober pod');
    const tokens = await core.listNamespacedSecret({
      namespace: B,
      labelSelector: 'app.kubernetes.io/component=run-token',
    });
    assert.equal(tokens.items.length, 0, 'no run token');
  });

  it('cannot fail over a target outside the allowlist, nor the same name in another region', async () => {
    await restartOperator(true);
    for (const [name, edit] of [
      ['prod', (d: Record<string, any>) => (d.spec.target.clusterIdentifier = 'orders-prod-pg')],
      ['other-region', (d: Record<string, any>) => (d.spec.target.region = 'eu-west-1')],
    ] as const) {
      const doc = labExperiment(lab, name, B, { edit });
      assert.equal(kubectlAs(mallory, ['apply', '-f', '-'], stringify(doc)).code, 0);
      const failed = await waitFor(`${name} Failed`, expB.phaseIs(name, ['Failed', 'Completed']));
      const c = conditionOf(failed, 'Failed');
      assert.equal(c.reason, 'TargetNotAllowed', name);
      assert.match(c.message, /is not in the controller's allowed targets \(us-east-1\/lab-\*\)/);
    }
    assert.equal(lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length, 0);
  });

  it("never reads a Secret; a missing one in the experiment's own namespace blocks the run", async () => {
    // lab-db exists in A only: B's experiment waits for it in B.
    const doc = labExperiment(lab, 'borrow', B);
    assert.equal(kubectlAs(mallory, ['apply', '-f', '-'], stringify(doc)).code, 0);
    const blocked = await waitFor('borrow blocked', async () => {
      const o = await expB.get('borrow');
      return conditionOf(o, 'Blocked')?.reason === 'SecretNotFound' ? o : undefined;
    });
    assert.equal(conditionOf(blocked, 'Blocked').status, 'True');
    assert.match(conditionOf(blocked, 'Blocked').message, /Secret lab-db not found in namespace team-b/);
    // The controller read no Secret (RBAC: create only): the kubelet told it, through the prober
    // pods' status. They wait in B and never started.
    const pods = (await core.listNamespacedPod({ namespace: B })).items;
    assert.ok(pods.length >= 1, 'the prober pods wait for the Secret');
    for (const pod of pods) {
      const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
      assert.equal(waiting?.reason, 'CreateContainerConfigError', pod.metadata?.name);
      assert.equal(waiting?.message, 'secret "lab-db" not found');
    }
    assert.equal(
      kubectlAs(serviceAccountToken(cp, 'failwatch-controller', SYSTEM_NS), [
        'auth',
        'can-i',
        'get',
        'secrets',
        '-n',
        A,
      ]).out.trim(),
      'no',
      'the controller cannot read Secrets of a tenant namespace',
    );
    await expB.delete('borrow');
  });

  it("cannot stop A's probers or read their samples; A's run completes; the API answers bad input with 4xx", async () => {
    await expA.create(
      labExperiment(lab, 'gameday', A, {
        connectTimeout: '3s',
        edit: (d) => (d.spec.baseline.duration = '12s'),
      }),
    );
    const baseline = await waitFor('gameday in Baseline', expA.phaseIs('gameday', ['Baseline', 'Failed']));
    assert.equal(baseline.status.phase, 'Baseline', JSON.stringify(baseline.status.conditions));
    const pods = (
      await core.listNamespacedPod({ namespace: A, labelSelector: 'failwatch.io/experiment=gameday' })
    ).items;
    assert.ok(pods.length >= 3, `${pods.length} prober pods`);

    // The run token: a Secret owned by the experiment, read by the pods through secretKeyRef.
    const secret = await core.readNamespacedSecret({ namespace: A, name: 'gameday-run-token' });
    assert.equal(secret.metadata?.ownerReferences?.[0]?.uid, baseline.metadata.uid);
    assert.equal(secret.metadata?.labels?.['app.kubernetes.io/component'], 'run-token');
    const token = Buffer.from(secret.data!.token!, 'base64').toString();
    assert.equal(Buffer.from(token, 'base64url').length, 32);
    for (const pod of pods) {
      const env = pod.spec!.containers[0]!.env!;
      assert.deepEqual(plain(env.find((e) => e.name === 'FAILWATCH_API_TOKEN')?.valueFrom?.secretKeyRef), {
        name: 'gameday-run-token',
        key: 'token',
      });
      assert.ok(!JSON.stringify(pod).includes(token), 'the token itself is in no pod spec');
      assert.equal(pod.metadata?.annotations?.['prometheus.io/port'], '9091');
    }
    // The NetworkPolicy: owned by the experiment; the controller on 9090, the scraper on 9091.
    const policy = await networking.readNamespacedNetworkPolicy({ namespace: A, name: 'gameday-probers' });
    assert.equal(policy.metadata?.ownerReferences?.[0]?.uid, baseline.metadata.uid);
    assert.deepEqual(plain(policy.spec?.podSelector?.matchLabels), {
      'app.kubernetes.io/name': 'failwatch',
      'app.kubernetes.io/component': 'prober',
      'failwatch.io/experiment': 'gameday',
    });
    assert.deepEqual(plain(policy.spec?.policyTypes), ['Ingress']);
    const ingress = policy.spec!.ingress!;
    assert.equal(ingress.length, 2);
    assert.deepEqual(plain(ingress[0]!._from), [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': SYSTEM_NS } },
        podSelector: { matchLabels: CONTROLLER_LABELS },
      },
    ]);
    assert.deepEqual(plain(ingress[0]!.ports), [{ protocol: 'TCP', port: 9090 }]);
    assert.deepEqual(plain(ingress[1]!._from), [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
      },
    ]);
    assert.deepEqual(plain(ingress[1]!.ports), [{ protocol: 'TCP', port: 9091 }]);
    // Mallory can read neither (edit in B only).
    assert.notEqual(kubectlAs(mallory, ['get', 'secret', 'gameday-run-token', '-n', A]).code, 0);

    // Mallory reaches every prober directly (no network plugin here), without A's token.
    let refused = 0;
    for (const pod of pods) {
      const api = `http://${pod.status!.podIP}:9090`;
      for (const [path, method] of [
        ['/stop', 'POST'],
        ['/audit', 'POST'],
        ['/samples?from=0', 'GET'],
        ['/status', 'GET'],
      ] as const)
        for (const t of [undefined, mallory, 'guessed-token-0000000000000000000000000000', `${token}x`]) {
          const r = await http(`${api}${path}`, { method, token: t });
          assert.equal(
            r.status,
            401,
            `${method} ${path} with ${t === undefined ? 'no token' : 'a wrong token'}`,
          );
          refused++;
        }
      // Malformed, with and without the token: 4xx, never 5xx.
      for (const [path, init] of [
        ['/samples?from=-5', { token }],
        ['/samples?from=abc&limit=x', { token }],
        ['/samples?from=1e999', { token }],
        ['/samples/../../etc/passwd', { token }],
        ['/%2e%2e/%2e%2e/etc/passwd', { token }],
        ['/audit', { method: 'POST', token, headers: { 'content-type': 'application/json' }, body: '[1,2' }],
        [
          '/audit',
          {
            method: 'POST',
            token,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ from: { host: FOREIGN.host, port: FOREIGN.port } }),
          },
        ],
        [
          '/stop',
          {
            method: 'POST',
            token,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ x: 'y'.repeat(200_000) }),
          },
        ],
        ['/status', { headers: { authorization: `Bearer ${'z'.repeat(20_000)}` } }],
      ] as const) {
        const r = await http(`${api}${path}`, init as RequestInit & { token?: string }).catch(() => ({
          status: 431,
          body: 'connection closed',
        }));
        assert.ok(r.status >= 400 && r.status < 500, `${path}: ${r.status} ${r.body.slice(0, 200)}`);
      }
      const st = await http(`${api}/status`, { token });
      assert.equal(st.status, 200);
      assert.equal(JSON.parse(st.body).state, 'probing', `${pod.metadata!.name} still probing`);
    }
    assert.deepEqual(foreignRequests, [], 'no audit connected to the foreign address');
    console.log(
      `prober API: ${refused} requests without the run token refused with 401 across ${pods.length} pods`,
    );

    const done = await waitFor('gameday done', expA.phaseIs('gameday', ['Completed', 'Failed']), 240_000);
    assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
    assert.equal(done.status.resultsRef.reportSha256.length, 64);
    const cm = await core.readNamespacedConfigMap({
      namespace: A,
      name: done.status.resultsRef.configMapName,
    });
    const results = JSON.parse(cm.data!['results.json']!);
    const attempts: string[] = [];
    for (const e of results.endpoints)
      for (const kind of ['write', 'read'])
        if (e[kind]) {
          assert.ok(e[kind].attempts > 50, `${e.name}/${kind}: ${e[kind].attempts} attempts`);
          attempts.push(`${e.name}/${kind} ${e[kind].attempts}`);
        }
    console.log(`A's run despite the attacks: ${done.status.verdict}; attempts ${attempts.join(', ')}`);
  });

  it("cannot read A's report: 401 without a token, 403 with hers, and the index hides A", async () => {
    const page = `${PAGES}/reports/${A}/gameday`;
    const anonymous = await http(page);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.body, /kubectl create token/);
    assert.equal((await http(page, { token: 'not-a-kubernetes-token' })).status, 401);
    const forbidden = await http(page, { token: mallory });
    assert.equal(forbidden.status, 403);
    assert.doesNotMatch(forbidden.body, /gameday<\/|Completed/);
    // Not even whether it exists.
    assert.equal((await http(`${PAGES}/reports/${A}/no-such-run`, { token: mallory })).status, 403);
    const index = await http(`${PAGES}/reports`, { token: mallory });
    assert.equal(index.status, 200);
    assert.doesNotMatch(index.body, /team-a/);
    assert.match(index.body, /<td>team-b<\/td><td>prod<\/td>/);

    const own = await http(page, { token: alice });
    assert.equal(own.status, 200);
    assert.match(own.body, /<g class="lane"/);
    const aliceIndex = await http(`${PAGES}/reports`, { token: alice });
    assert.match(aliceIndex.body, /<td>team-a<\/td><td>gameday<\/td>/);
    assert.doesNotMatch(aliceIndex.body, /team-b/);
  });

  it('serves a changed report never, and answers malformed page requests with 4xx', async () => {
    const done = await expA.get('gameday');
    const name = done.status.resultsRef.configMapName;
    const cm = await core.readNamespacedConfigMap({ namespace: A, name });
    // Someone with edit in A changes the stored page; the digest in the status no longer matches.
    await core.replaceNamespacedConfigMap({
      namespace: A,
      name,
      body: {
        metadata: cm.metadata,
        data: { ...cm.data, 'report.html': '<html><body><script>steal()</script>forged</body></html>' },
      },
    });
    const page = await http(`${PAGES}/reports/${A}/gameday`, { token: alice });
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.body, /steal\(\)|forged/);
    assert.match(page.body, /no longer matches the digest/);

    for (const [path, init] of [
      ['/reports/..%2f..%2fetc/passwd', { token: alice }],
      ['/reports/team-a/..%2F..%2Fsecrets', { token: alice }],
      ['/reports/team-a/gameday/../../../etc/passwd', { token: alice }],
      ['/reports/TEAM-A/x', { token: alice }],
      [`/reports/${'a'.repeat(300)}/x`, { token: alice }],
      ['/reports', { headers: { authorization: `Bearer ${'q'.repeat(20_000)}` } }],
      ['/reports', { headers: { authorization: 'Basic YWxpY2U6cHc=' } }],
      ['/reports', { method: 'POST', token: alice, body: 'x'.repeat(2_000_000) }],
    ] as const) {
      const r = await http(`${PAGES}${path}`, init as RequestInit & { token?: string }).catch(() => ({
        status: 431,
        body: 'connection closed',
      }));
      assert.ok(r.status >= 400 && r.status < 500, `${path}: ${r.status} ${r.body.slice(0, 200)}`);
    }
    assert.equal((await http(`${PAGES}/reports`, { token: alice })).status, 200, 'still serving');
    assert.equal((await http(`${PAGES}/healthz`)).status, 200);
  });

  it('deletes the run token and the NetworkPolicy with the experiment (owner references)', async () => {
    await expA.delete('gameday');
    const selector = { namespace: A, labelSelector: 'failwatch.io/experiment=gameday' };
    await waitFor('the token Secret and the NetworkPolicy to go', async () => {
      const secrets = (await core.listNamespacedSecret(selector)).items;
      const policies = (await networking.listNamespacedNetworkPolicy(selector)).items;
      return secrets.length + policies.length === 0 ? true : undefined;
    });
  });
});
