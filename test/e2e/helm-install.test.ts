// docs/install.md's `helm install`, exactly as written, on the dev cluster's control plane
// (kube-controller-manager with the Deployment and ReplicaSet controllers, the node agent
// running the chart's pod template with the image's /app mapped onto the checkout and the
// pod's ServiceAccount token): the controller pod becomes Ready, and it runs the Kubernetes
// lab example to a verdict, read with kubectl only.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ControlPlane, DEV_CLUSTER_CONTROLLERS, startControlPlane } from '../helpers/kube.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LAB = { base: '127.0.71', dnsPort: 11653, apiPort: 11680 };
const EXAMPLE = 'examples/lab-kubernetes-aurora-postgresql.yaml';
let cp: ControlPlane;
let lab: TestLab;
let helmBin: string;

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

/** The `helm install` command of docs/install.md's quick start, continuation lines joined. */
function documentedHelmInstall(verb = 'install'): string[] {
  const lines = readFileSync(join(ROOT, 'docs/install.md'), 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith(`helm ${verb} failwatch`));
  assert.ok(start >= 0, `docs/install.md has a helm ${verb} command`);
  let command = '';
  for (let i = start; ; i++) {
    const line = lines[i]!;
    command += `${line.replace(/\\$/, '')} `;
    if (!line.endsWith('\\')) break;
  }
  return shellWords(command);
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

describe('helm install as docs/install.md says, on the dev cluster', { timeout: 900_000 }, () => {
  before(async () => {
    const [helm, plane, started] = await Promise.all([
      promisify(execFile)('bash', [join(ROOT, 'scripts/build-helm')], { maxBuffer: 1 << 24 }),
      startControlPlane({ controllers: DEV_CLUSTER_CONTROLLERS, podCidr: '127.0.104.0/24' }),
      startTestLab(LAB),
    ]);
    helmBin = helm.stdout.trim();
    cp = plane;
    lab = started;
  });

  after(async () => {
    await cp?.stop();
    await lab?.down();
  });

  it('parses the documented command the way a shell does', () => {
    assert.deepEqual(shellWords(`--set 'a\\.b=c' --set x\\.y=z "q r"`), [
      '--set',
      'a\\.b=c',
      '--set',
      'x.y=z',
      'q r',
    ]);
  });

  it('gets a Ready controller pod that runs the lab example to a verdict', async () => {
    const words = documentedHelmInstall();
    assert.equal(words[0], 'helm');
    assert.ok(
      words.includes(
        'serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/failwatch',
      ),
      words.join(' '),
    );
    const helm = spawnSync(helmBin, words.slice(1), {
      cwd: ROOT,
      env: { ...process.env, KUBECONFIG: cp.kubeconfigPath, HELM_CACHE_HOME: join(cp.dir, 'helm') },
      encoding: 'utf8',
    });
    assert.equal(helm.status, 0, `${helm.stdout}${helm.stderr}`);
    // The documented values for the lab (its RDS API and target), as written.
    const upgrade = spawnSync(helmBin, documentedHelmInstall('upgrade').slice(1), {
      cwd: ROOT,
      env: { ...process.env, KUBECONFIG: cp.kubeconfigPath, HELM_CACHE_HOME: join(cp.dir, 'helm') },
      encoding: 'utf8',
    });
    assert.equal(upgrade.status, 0, `${upgrade.stdout}${upgrade.stderr}`);
    const sa = kubectl(['get', 'serviceaccount', 'failwatch', '-n', 'failwatch-system', '-o', 'json']);
    assert.equal(
      JSON.parse(sa.out).metadata.annotations['eks.amazonaws.com/role-arn'],
      'arn:aws:iam::123456789012:role/failwatch',
    );
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
        const out = kubectl([
          'get',
          'failoverexperiment',
          'lab-aurora-postgresql',
          '-o',
          'jsonpath={.status.phase}',
        ]).out;
        return ['Completed', 'Failed'].includes(out) ? out : undefined;
      },
      300_000,
    );
    const row = kubectl(['get', 'failoverexperiments']).out;
    console.log(row);
    assert.equal(phase, 'Completed', row);
    assert.match(row, /lab-aurora-postgresql\s+Completed\s+lab-pg\s+\d+\.\d+s\s+Pass/);
    assert.equal(lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length, 1);
    // The controller's log, as the troubleshooting recipe reads it.
    const logs = readFileSync(cp.containerLogPath(pod, 'controller'), 'utf8');
    assert.match(logs, /"experiment":"default\/lab-aurora-postgresql".*"msg":"run completed"/);
  });
});
