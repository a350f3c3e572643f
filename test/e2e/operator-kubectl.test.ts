// What a Kubernetes user sees, on a real control plane with the lab: the Kubernetes lab
// example run with the exact commands of its header, `kubectl get` columns (through the
// apiserver's Table output), conditions and their messages, the controller's log lines per
// experiment, /healthz when the controller cannot list, and the operator failing fast
// without an API server.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { MAIN } from '../helpers/cli.ts';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';
import {
  experimentClient,
  LAB_PASSWORD,
  labIdle,
  prepareOperatorNamespace,
  SYSTEM_NS,
  serviceAccountToken,
  spawnOperator,
  stopProcess,
  WRONG_PASSWORD,
  waiter,
} from '../helpers/operator-env.ts';

const NS = 'shop';
const EXAMPLE = 'examples/lab-kubernetes-aurora-postgresql.yaml';
const tmp = mkdtempSync(join(tmpdir(), 'fw-kubectl-'));
const LOG = join(tmp, 'operator.log');
const METRICS = '127.0.77.5:18480';
const LAB = { base: '127.0.77', dnsPort: 11453, apiPort: 11480 };
let cp: ControlPlane;
let lab: TestLab;
let operator: ChildProcess | undefined;
let saKubeconfig: string;
let core: CoreV1Api;
let custom: CustomObjectsApi;
const waitFor = waiter({ timeoutMs: 120_000, intervalMs: 250, logs: { operator: LOG } });

type Doc = Record<string, any>;

/** The example's text with the test lab's addresses instead of the default lab's. */
const exampleText = () =>
  readFileSync(EXAMPLE, 'utf8')
    .replaceAll('127.0.10.1:10080', `${LAB.base}.1:${LAB.apiPort}`)
    .replaceAll('127.0.0.1:10053', `127.0.0.1:${LAB.dnsPort}`);

/** The example as another experiment in NS (secret, target or name changed). */
function variant(name: string, edit: (doc: Doc) => void): string {
  const doc = parse(exampleText()) as Doc;
  doc.metadata = { name, namespace: NS };
  doc.spec.baseline.duration = '2s';
  edit(doc);
  return stringify(doc);
}

const useSecret = (name: string) => (doc: Doc) => {
  for (const e of doc.spec.endpoints) e.credentials = { secretRef: { name } };
};

/** GET with the admin token, as kubectl does (the Table Accept header for `kubectl get`). */
function apiGet(path: string, accept = 'application/json'): Promise<{ status: number; body: Doc }> {
  const url = new URL(path, cp.server);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { ca: cp.caPem, headers: { authorization: `Bearer ${cp.token}`, accept } },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** `kubectl get failoverexperiments` as the apiserver's Table: name → column → cell. */
async function table(namespace: string): Promise<Map<string, Record<string, unknown>>> {
  const { status, body } = await apiGet(
    `/apis/failwatch.io/v1alpha1/namespaces/${namespace}/failoverexperiments`,
    'application/json;as=Table;v=v1;g=meta.k8s.io',
  );
  assert.equal(status, 200);
  const names = (body.columnDefinitions as Doc[]).map((c) => c.name as string);
  return new Map(
    (body.rows as Doc[]).map((row) => [
      row.cells[0] as string,
      Object.fromEntries(names.map((n, i) => [n, row.cells[i]])),
    ]),
  );
}

/** The operator's JSON log lines about one experiment (the troubleshooting recipe's grep). */
function logLinesOf(key: string): Doc[] {
  return readFileSync(LOG, 'utf8')
    .split('\n')
    .filter((line) => line.includes(`"experiment":"${key}"`))
    .map((line) => JSON.parse(line) as Doc);
}

const condition = (obj: Doc, type: string) => obj.status?.conditions?.find((c: Doc) => c.type === type);

describe('a Kubernetes user with kubectl and the lab', { timeout: 1_200_000 }, () => {
  before(async () => {
    cp = await startControlPlane({ podCidr: '127.0.102.0/24' });
    lab = await startTestLab(LAB);
    core = cp.kubeConfig().makeApiClient(CoreV1Api);
    custom = cp.kubeConfig().makeApiClient(CustomObjectsApi);
    saKubeconfig = await prepareOperatorNamespace(cp, {
      dir: tmp,
      namespace: NS,
      secrets: { 'wrong-db': WRONG_PASSWORD },
    });
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'odd-db' }, stringData: { user: 'failwatch', pass: LAB_PASSWORD } },
    });
    // The example's CA Secret, for its variants in NS (the example's own one is made by its header).
    await core.createNamespacedSecret({
      namespace: NS,
      body: {
        metadata: { name: 'lab-ca' },
        stringData: { 'ca.crt': readFileSync(`${lab.dir}/tls/ca.crt`, 'utf8') },
      },
    });
    operator = spawnOperator({
      kubeconfig: saKubeconfig,
      listen: METRICS,
      logFile: LOG,
      args: ['--allowed-targets', 'us-east-1/lab-pg'],
    });
  });

  after(async () => {
    await stopProcess(operator);
    await cp?.stop();
    await lab?.down();
  });

  it('runs the Kubernetes lab example with the exact commands of its header', async () => {
    const header = readFileSync(EXAMPLE, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('#   kubectl '))
      .map((l) => l.slice('#   '.length));
    assert.equal(header.length, 4, header.join('\n'));
    const [caSecret, secret, apply, get] = header as [string, string, string, string];
    assert.match(caSecret, /^kubectl create secret generic lab-ca .*\/tmp\/failwatch-lab\/tls\/ca\.crt$/);
    assert.match(secret, /^kubectl create secret generic lab-db /);
    // Commands as written (no shell: none of them needs one); only the lab's directory differs.
    const caCreated = cp.kubectl(caSecret.replace('/tmp/failwatch-lab/', `${lab.dir}/`).split(' ').slice(1));
    assert.equal(caCreated.code, 0, caCreated.out);
    const created = cp.kubectl(secret.split(' ').slice(1));
    assert.equal(created.code, 0, created.out);
    assert.equal(apply, `kubectl apply -f ${EXAMPLE}`);
    const applied = cp.kubectl(['apply', '-f', '-'], exampleText());
    assert.equal(applied.code, 0, applied.out);
    assert.match(get, /^kubectl get failoverexperiments -w$/);
    const experiments = experimentClient(custom, 'default');
    const done = await waitFor(
      'the example to complete',
      experiments.phaseIs('lab-aurora-postgresql', ['Completed', 'Failed']),
      240_000,
    );
    assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
    assert.equal(done.status.verdict, 'Pass', JSON.stringify(done.status.verdictReasons));
    assert.equal(lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length, 1);
    // kubectl get: Phase, Reason (empty), Target from the spec, downtime with its unit, verdict.
    const row = (await table('default')).get('lab-aurora-postgresql')!;
    assert.deepEqual(Object.keys(row), [
      'Name',
      'Phase',
      'Reason',
      'Target',
      'Worst downtime',
      'Verdict',
      'Age',
    ]);
    assert.equal(row.Phase, 'Completed');
    assert.equal(row.Reason, null);
    assert.equal(row.Target, 'lab-pg');
    assert.match(String(row['Worst downtime']), /^\d+\.\d{1,2}s$/);
    const worst = Number(String(row['Worst downtime']).slice(0, -1));
    assert.ok(
      Math.abs(worst - done.status.worstDowntimeSeconds) < 0.06,
      `${worst} vs ${done.status.worstDowntimeSeconds}`,
    );
    assert.ok(worst > 0.5 && worst < 30, `worst downtime ${worst}s`);
    assert.equal(row.Verdict, 'Pass');
    // Finished: no stale Blocked=False LockHeld or ProbersReady; the verdict and the call stay.
    assert.equal(condition(done, 'Blocked'), undefined);
    assert.equal(condition(done, 'ProbersReady'), undefined);
    assert.equal(condition(done, 'Running').reason, 'Completed');
    assert.equal(condition(done, 'Passed').reason, 'WithinSLO');
    assert.equal(condition(done, 'Triggered').reason, 'FailoverCalled');
    // The log tells the story: one line per phase change, the call, the result.
    const lines = logLinesOf('default/lab-aurora-postgresql');
    const story = lines.filter((l) => l.level === 30).map((l) => l.msg);
    assert.deepEqual(story, [
      'phase Pending',
      'phase Preflight',
      'phase Baseline',
      'phase Triggering',
      'calling the failover',
      'phase Observing',
      'phase Analyzing',
      'phase Completed',
      'run completed',
    ]);
    console.log(
      `example: worst downtime ${row['Worst downtime']} (${done.status.worstDowntimeSeconds} s), ${lines.length} log lines for the experiment, ${story.length} at info`,
    );
    const result = lines.find((l) => l.msg === 'run completed')!;
    assert.equal(result.verdict, 'Pass');
    assert.equal(result.worstDowntimeSeconds, done.status.worstDowntimeSeconds);
    assert.deepEqual(Object.keys(result.endpoints).sort(), ['cluster', 'cluster-pooled', 'proxy', 'reader']);
    await waitFor('the lab to be idle', labIdle(lab));
  });

  it('shows why runs wait or failed, with the target, from the first moment', async () => {
    const experiments = experimentClient(custom, NS);
    for (const [name, edit] of [
      ['no-secret', useSecret('missing-db')],
      ['odd-keys', useSecret('odd-db')],
      [
        'not-allowed',
        (doc: Doc) => {
          doc.spec.target.clusterIdentifier = 'prod-orders';
        },
      ],
    ] as const) {
      const r = cp.kubectl(['apply', '-f', '-'], variant(name, edit));
      assert.equal(r.code, 0, r.out);
    }
    const oddKeys = await waitFor('odd-keys blocked', async () => {
      const o = await experiments.get('odd-keys');
      return condition(o, 'Blocked')?.reason === 'SecretKeyNotFound' ? o : undefined;
    });
    await waitFor('no-secret blocked', async () =>
      (await experiments.get('no-secret')).status?.reason === 'SecretNotFound' ? true : undefined,
    );
    const failed = await waitFor('not-allowed failed', experiments.phaseIs('not-allowed', ['Failed']));
    // Key names only, never values.
    assert.match(
      condition(oddKeys, 'Blocked').message,
      /^endpoint `[a-z-]+`: Secret odd-db has no key username: add the key or set usernameKey\/passwordKey$/,
    );
    assert.doesNotMatch(JSON.stringify(oddKeys.status), new RegExp(LAB_PASSWORD));
    assert.equal(condition(failed, 'Failed').reason, 'TargetNotAllowed');
    assert.equal(condition(failed, 'Blocked'), undefined);
    const rows = await table(NS);
    const cells = (name: string) => {
      const { Phase, Reason, Target, Verdict } = rows.get(name)!;
      return [Phase, Reason, Target, Verdict];
    };
    assert.deepEqual(cells('no-secret'), ['Pending', 'SecretNotFound', 'lab-pg', null]);
    assert.deepEqual(cells('odd-keys'), ['Pending', 'SecretKeyNotFound', 'lab-pg', null]);
    assert.deepEqual(cells('not-allowed'), ['Failed', 'TargetNotAllowed', 'prod-orders', null]);
    const printed = cp.kubectl(['get', 'failoverexperiments', '-n', NS]).out;
    assert.match(printed, /NAME\s+PHASE\s+REASON\s+TARGET\s+WORST DOWNTIME\s+VERDICT\s+AGE/);
    assert.match(printed, /not-allowed\s+Failed\s+TargetNotAllowed\s+prod-orders\s+\d+s/);
    // Logs: the wait and the failure, each once, with the experiment field of the recipe.
    // (A TargetLocked wait may come first: odd-keys and no-secret share the target.)
    const waits = logLinesOf(`${NS}/no-secret`).filter((l) => l.msg === 'waiting');
    assert.equal(waits.filter((l) => l.reason === 'SecretNotFound').length, 1);
    assert.equal(waits.at(-1)!.reason, 'SecretNotFound');
    const failure = logLinesOf(`${NS}/not-allowed`).map((l) => l.msg);
    assert.deepEqual(failure, ['phase Pending', 'phase Failed', 'run failed']);
  });

  it('says an endpoint once in a message (AuthenticationFailed)', async () => {
    const r = cp.kubectl(['apply', '-f', '-'], variant('bad-password', useSecret('wrong-db')));
    assert.equal(r.code, 0, r.out);
    const failed = await waitFor(
      'bad-password failed',
      experimentClient(custom, NS).phaseIs('bad-password', ['Failed']),
      180_000,
    );
    const message = condition(failed, 'Failed').message as string;
    assert.equal(condition(failed, 'Failed').reason, 'AuthenticationFailed');
    assert.equal(failed.status.reason, 'AuthenticationFailed');
    assert.match(message, /^endpoint `[a-z-]+`: /);
    assert.doesNotMatch(message, /endpoint `[a-z-]+`: endpoint `/);
    assert.doesNotMatch(readFileSync(LOG, 'utf8'), new RegExp(`${LAB_PASSWORD}|${WRONG_PASSWORD}`));
  });

  it('serves failwatch_build_info', async () => {
    const text = await (await fetch(`http://${METRICS}/metrics`)).text();
    const version = JSON.parse(readFileSync('package.json', 'utf8')).version;
    assert.match(
      text,
      new RegExp(`failwatch_build_info\\{version="${version}",node_version="${process.versions.node}"\\} 1`),
    );
  });

  it('answers /healthz 503 when it cannot list what it watches', async () => {
    // A ServiceAccount without RBAC: discovery works, lists are forbidden.
    cp.kubectl(['create', 'serviceaccount', 'nobody', '-n', SYSTEM_NS]);
    const kubeconfig = join(tmp, 'nobody.kubeconfig');
    writeFileSync(kubeconfig, cp.kubeConfig(serviceAccountToken(cp, 'nobody', SYSTEM_NS)).exportConfig());
    const listen = '127.0.77.6:18481';
    const child = spawnOperator({
      kubeconfig,
      listen,
      logFile: join(tmp, 'nobody.log'),
      args: ['--no-leader-elect'],
      env: { FAILWATCH_HEALTH_BROKEN_SECONDS: '3' },
    });
    try {
      const started = Date.now();
      const broken = await waitFor('/healthz 503', async () => {
        const res = await fetch(`http://${listen}/healthz`);
        return res.status === 503 ? ((await res.json()) as Doc) : undefined;
      });
      const seconds = (Date.now() - started) / 1000;
      console.log(`/healthz 503 after ${seconds.toFixed(1)} s: ${broken.reason}`);
      assert.ok(seconds < 20, `${seconds}s after the start`);
      assert.match(
        broken.reason,
        /^cannot list\/watch (failoverexperiments|prober pods|failoverschedules) for \d+s/,
      );
    } finally {
      await stopProcess(child);
    }
  });
});

/** Runs `failwatch operator` to its end: exit code, seconds and output. */
function runOperator(args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number | null; seconds: number; out: string }>((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [MAIN, 'operator', ...args], { env });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, seconds: (Date.now() - started) / 1000, out });
    });
  });
}

describe('failwatch operator without an API server', () => {
  const home = mkdtempSync(join(tmpdir(), 'fw-home-'));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home };

  it('exits 3 at once without a kubeconfig, saying what to pass', async () => {
    const r = await runOperator(['--metrics-listen', '127.0.77.7:18482'], env);
    assert.equal(r.code, 3, r.out);
    console.log(`no kubeconfig: exit ${r.code} after ${r.seconds.toFixed(2)} s`);
    assert.ok(r.seconds < 5, `${r.seconds}s`);
    assert.match(r.out, /"level":50/);
    assert.match(r.out, /no kubeconfig: not in a pod .* pass --kubeconfig FILE/);
  });

  it('exits 3 within the startup timeout when the API server does not answer', async () => {
    const kubeconfig = join(home, 'closed.kubeconfig');
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'c', cluster: { server: 'https://127.0.77.8:18483', 'insecure-skip-tls-verify': true } },
        ],
        users: [{ name: 'u', user: { token: 'x' } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'c',
      }),
    );
    const r = await runOperator(['--kubeconfig', kubeconfig, '--metrics-listen', '127.0.77.7:18482'], env);
    assert.equal(r.code, 3, r.out);
    console.log(`API server refusing: exit ${r.code} after ${r.seconds.toFixed(2)} s`);
    assert.ok(r.seconds >= 8 && r.seconds < 20, `${r.seconds}s`);
    assert.match(
      r.out,
      /cannot reach the API server at https:\/\/127\.0\.77\.8:18483 within 10 s: .*ECONNREFUSED/,
    );
  });
});
