// Suite `helm` of the documented commands (test/helpers/doc-blocks.ts): docs/install.md's
// `helm install` and `helm upgrade` exactly as written, on a dev-cluster control plane
// (kube-controller-manager with the Deployment and ReplicaSet controllers, the node agent running
// the chart's pod template with the image's /app mapped onto the checkout and the pod's
// ServiceAccount token): the controller pod becomes Ready and runs the Kubernetes lab example to a
// verdict, read with kubectl only. Then the blocks that read its results (results.md's report
// pages and ConfigMap, troubleshooting.md's log recipe) and the chart's NOTES.txt commands as
// helm prints them. The node agent has no kubelet API: `kubectl logs` and `port-forward` go
// through test/helpers/kubectl-node-shim.ts (log files, pods on loopback addresses).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type DocBlock, suiteBlocks, where } from '../helpers/doc-blocks.ts';
import { DocShell, type Placeholder, userCheckout } from '../helpers/doc-runner.ts';
import { type ControlPlane, DEV_CLUSTER_CONTROLLERS, startControlPlane } from '../helpers/kube.ts';
import { writeKubectlShim } from '../helpers/kubectl-node-shim.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LAB = { base: '127.0.71', dnsPort: 11653, apiPort: 11680 };
const EXAMPLE = 'examples/lab-kubernetes-aurora-postgresql.yaml';
const RUN = 'lab-aurora-postgresql';
/** The documented port-forward's local port (the chart's metrics.port). */
const FORWARD_PORT = 8080;
const blocks = suiteBlocks('helm');
let cp: ControlPlane;
let lab: TestLab;
let helmBin: string;
let shell: DocShell;

/** Shell words of one command: spaces split, single and double quotes group, `\` escapes outside quotes. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else word = (word ?? '') + ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word ??= '';
    } else if (ch === '\\' && i + 1 < line.length) {
      word = (word ?? '') + line[++i];
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + ch;
  }
  if (word !== undefined) words.push(word);
  return words;
}

function kubectl(args: string[], input?: string): { code: number; out: string } {
  return cp.kubectl(args, input);
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      const pods = kubectl(['get', 'pods', '-A', '-o', 'wide']).out;
      const events = kubectl(['get', 'events', '-n', 'failwatch-system']).out;
      throw new Error(`timed out waiting for ${what}\n${pods}\n${events}`);
    }
    await sleep(500);
  }
}

/** The documented placeholders of the helm suite's blocks, with what this cluster has. */
function placeholders(block: DocBlock): Placeholder[] {
  if (block.code.includes('<service-account>'))
    return [
      { text: '<service-account>', value: 'report-reader' },
      { text: '<namespace>', value: 'default' },
    ];
  if (block.code.includes('e2e-results'))
    return [
      { text: '-n team', value: '-n default' },
      { text: 'e2e-results', value: `${RUN}-results` },
    ];
  if (block.code.includes('NS/NAME')) return [{ text: 'NS/NAME', value: `default/${RUN}` }];
  return [];
}

/** Someone who may read the experiments of `default` (the report pages' RBAC), and someone who may not. */
function reportReaders(): void {
  for (const sa of ['report-reader', 'nobody'])
    assert.equal(kubectl(['create', 'serviceaccount', sa, '-n', 'default']).code, 0);
  const role = kubectl([
    'create',
    'role',
    'experiment-reader',
    '-n',
    'default',
    '--verb=get,list',
    '--resource=failoverexperiments.failwatch.io',
  ]);
  assert.equal(role.code, 0, role.out);
  const binding = kubectl([
    'create',
    'rolebinding',
    'experiment-reader',
    '-n',
    'default',
    '--role=experiment-reader',
    '--serviceaccount=default:report-reader',
  ]);
  assert.equal(binding.code, 0, binding.out);
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 120; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`)
      .then(() => true)
      .catch(() => false);
    if (ok) return;
    await sleep(250);
  }
  throw new Error(`nothing answers on 127.0.0.1:${port}`);
}

describe('the documented helm commands, as written, on the dev cluster (suite helm)', {
  timeout: 900_000,
}, () => {
  before(async () => {
    assert.deepEqual(
      blocks.map((b) => b.file),
      ['docs/install.md', 'docs/install.md', 'docs/results.md', 'docs/results.md', 'docs/troubleshooting.md'],
      'install, upgrade, report pages, the report by hand, the log recipe',
    );
    const [helm, plane, started] = await Promise.all([
      promisify(execFile)('bash', [join(ROOT, 'scripts/build-helm')], { maxBuffer: 1 << 24 }),
      startControlPlane({ controllers: DEV_CLUSTER_CONTROLLERS, podCidr: '127.0.104.0/24' }),
      startTestLab(LAB),
    ]);
    helmBin = helm.stdout.trim();
    cp = plane;
    lab = started;
    // install.md: "run step 2 as written against the dev cluster (make dev-cluster,
    // export KUBECONFIG=$PWD/.cache/dev-cluster/admin.kubeconfig)".
    const checkout = userCheckout('fw-docs-helm-');
    mkdirSync(join(checkout, '.cache/dev-cluster'));
    symlinkSync(cp.kubeconfigPath, join(checkout, '.cache/dev-cluster/admin.kubeconfig'));
    const realKubectl = spawnSync('bash', ['-c', 'command -v kubectl'], { encoding: 'utf8' }).stdout.trim();
    const shim = writeKubectlShim(realKubectl, cp.podLogDir);
    // scripts/build-helm's binary is versioned (helm-v3.x.y): the docs call it `helm`.
    symlinkSync(helmBin, join(shim, 'helm'));
    shell = new DocShell(checkout, {
      KUBECONFIG: join(checkout, '.cache/dev-cluster/admin.kubeconfig'),
      HELM_CACHE_HOME: join(cp.dir, 'helm'),
      PATH: `${shim}:${dirname(process.execPath)}:${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}`,
    });
  });

  after(async () => {
    await shell?.stopAll();
    await cp?.stop();
    await lab?.down();
  });

  it('parses a command the way a shell does', () => {
    assert.deepEqual(shellWords(`--set 'a\\.b=c' --set x\\.y=z "q r"`), [
      '--set',
      'a\\.b=c',
      '--set',
      'x.y=z',
      'q r',
    ]);
  });

  let notes = '';
  it('docs/install.md: helm install and helm upgrade as written', async () => {
    const [install, upgrade] = blocks as [DocBlock, DocBlock];
    assert.match(install.code, /^helm install failwatch charts\/failwatch/);
    assert.match(
      install.code,
      /--set 'serviceAccount\.annotations\.eks\\\.amazonaws\\\.com\/role-arn=arn:aws:iam::123456789012:role\/failwatch'/,
    );
    notes = (await shell.run(install)).stdout;
    await shell.run(upgrade);
    const sa = kubectl(['get', 'serviceaccount', 'failwatch', '-n', 'failwatch-system', '-o', 'json']);
    assert.equal(
      JSON.parse(sa.out).metadata.annotations['eks.amazonaws.com/role-arn'],
      'arn:aws:iam::123456789012:role/failwatch',
    );
  });

  it('gets a Ready controller pod that runs the lab example to a verdict', async () => {
    const started = Date.now();
    const pod = await until(
      'a Ready controller pod',
      () => {
        const r = kubectl(['get', 'pods', '-n', 'failwatch-system', '-o', 'json']);
        const ready = (JSON.parse(r.out).items as any[]).find((p) =>
          p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready;
      },
      180_000,
    );
    console.log(
      `controller pod ${pod.metadata.name} Ready ${((Date.now() - started) / 1000).toFixed(1)} s after helm install`,
    );
    assert.ok(pod.metadata.ownerReferences.some((o: any) => o.kind === 'ReplicaSet'));
    const available = kubectl([
      'rollout',
      'status',
      'deploy/failwatch',
      '-n',
      'failwatch-system',
      '--timeout=60s',
    ]);
    assert.equal(available.code, 0, available.out);
    // The node agent runs no probes: ask the controller's own /readyz (leader, caches synced)
    // on the pod's address, as the chart's readinessProbe would.
    const readyz = `http://${pod.status.podIP}:8080/readyz`;
    let ready: { status: number; body: string } | undefined;
    for (let i = 0; i < 120 && ready?.status !== 200; i++) {
      ready = await fetch(readyz)
        .then(async (r) => ({ status: r.status, body: await r.text() }))
        .catch(() => undefined);
      if (ready?.status !== 200) await sleep(500);
    }
    assert.equal(ready?.status, 200, ready?.body);
    const metrics = await (await fetch(`http://${pod.status.podIP}:8080/metrics`)).text();
    assert.match(metrics, /failwatch_build_info\{version="[^"]+",node_version="[^"]+"\} 1/);

    // The lab example, as its header says (the test lab's addresses instead of the default's).
    const secrets = readFileSync(join(ROOT, EXAMPLE), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('#   kubectl create secret'))
      .map((l) => l.slice('#   '.length).replace('/tmp/failwatch-lab/', `${lab.dir}/`));
    assert.equal(secrets.length, 2, secrets.join('\n'));
    for (const secret of secrets) {
      const created = kubectl(shellWords(secret).slice(1));
      assert.equal(created.code, 0, created.out);
    }
    const manifest = readFileSync(join(ROOT, EXAMPLE), 'utf8')
      .replaceAll('127.0.10.1:10080', `${LAB.base}.1:${LAB.apiPort}`)
      .replaceAll('127.0.0.1:10053', `127.0.0.1:${LAB.dnsPort}`);
    const applied = kubectl(['apply', '-f', '-'], manifest);
    assert.equal(applied.code, 0, applied.out);
    const phase = await until(
      'the example to end',
      () => {
        const out = kubectl(['get', 'failoverexperiment', RUN, '-o', 'jsonpath={.status.phase}']).out;
        return ['Completed', 'Failed'].includes(out) ? out : undefined;
      },
      300_000,
    );
    const row = kubectl(['get', 'failoverexperiments']).out;
    console.log(row);
    assert.equal(phase, 'Completed', row);
    assert.match(row, /lab-aurora-postgresql\s+Completed\s+lab-pg\s+\d+\.\d+s\s+Pass/);
    assert.equal(lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length, 1);
    reportReaders();
  });

  for (const block of blocks.slice(2))
    it(`${where(block)}: ${block.code.split('\n')[0]}`, async () => {
      const run = await shell.run(block, placeholders(block), 120_000);
      if (block.code.includes('e2e-results')) {
        const page = readFileSync(join(shell.cwd, 'report.html'), 'utf8');
        assert.match(page, /^<!doctype html>/i);
        assert.match(page, /lab-aurora-postgresql/);
      }
      if (block.code.includes('/reports')) assert.match(run.stdout, /<!doctype html>/i);
    });

  it("runs the chart's NOTES.txt commands as helm printed them: /reports 200 with a token, 401 without, 403 for others", async () => {
    const line = (label: string) => {
      const l = notes.split('\n').find((x) => x.trimStart().startsWith(label));
      assert.ok(l, `NOTES has a line starting ${label}:\n${notes}`);
      return l.trim();
    };
    const forward = line('Metrics:').slice('Metrics:'.length).trim();
    assert.equal(forward, `kubectl -n failwatch-system port-forward svc/failwatch-metrics ${FORWARD_PORT}`);
    const token = line('TOKEN=$(kubectl create token');
    const curl = line('curl -H "Authorization: Bearer $TOKEN"');
    const notesBlock: DocBlock = {
      file: 'charts/failwatch/templates/NOTES.txt',
      line: 0,
      lang: 'sh',
      code: '',
      expect: [],
      unknownMarkers: [],
    };
    // The port-forward stays running (a second terminal), then the two lines.
    const forwarding = shell.run({
      ...notesBlock,
      code: forward,
      until: /^Forwarding from 127\.0\.0\.1:8080/m,
    });
    await forwarding;
    await waitForPort(FORWARD_PORT);
    const reader = await shell.run({ ...notesBlock, code: `${token}\n${curl}` }, [
      { text: '<service-account>', value: 'report-reader' },
      { text: '<namespace>', value: 'default' },
    ]);
    assert.match(reader.stdout, /<a href="reports\/default\/lab-aurora-postgresql">/);
    const index = `http://127.0.0.1:${FORWARD_PORT}/reports`;
    assert.equal((await fetch(index)).status, 401, 'no token');
    const other = kubectl(['create', 'token', 'nobody', '-n', 'default']).out.trim();
    const forbidden = await fetch(`${index}/default/${RUN}`, {
      headers: { authorization: `Bearer ${other}` },
    });
    assert.equal(forbidden.status, 403, 'a token that may not read the namespace');
    const allowed = kubectl(['create', 'token', 'report-reader', '-n', 'default']).out.trim();
    const ok = await fetch(index, { headers: { authorization: `Bearer ${allowed}` } });
    assert.equal(ok.status, 200);
  });
});
