// The README's operator steps (section "Kubernetes: the operator"), run as written on a fresh
// control plane: the shell block is taken from README.md and only its placeholders are
// substituted (the test's own cluster for `make dev-cluster`, a free metrics port, a dry-run
// lab experiment for `my-experiment.yaml`). `kubectl get failoverexperiments -w` must show
// the experiment Completed with verdict DryRun; the status says why, and the lab never failed over.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';
import { experimentClient, LAB_PASSWORD, labExperiment, SYSTEM_NS, waiter } from '../helpers/operator-env.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'fw-readme-op-'));
const LOG = join(tmp, 'readme-steps.log');
const METRICS = '127.0.93.1:18093';
const NS = 'default';
const waitFor = waiter({ timeoutMs: 120_000, intervalMs: 250, logs: { 'README steps': LOG } });

/** The first ```sh block after the heading `heading` of README.md, line by line. */
function readmeShellBlock(readme: string, heading: string): string[] {
  const at = readme.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README.md has the heading ${heading}`);
  const block = /```sh\n([\s\S]*?)\n```/.exec(readme.slice(at));
  assert.ok(block, `a sh block follows ${heading}`);
  return block[1]!.split('\n');
}

/** Replaces `from` with `to` in exactly one line, so that a changed README fails loudly. */
function substitute(lines: string[], from: RegExp, to: (line: string) => string): string[] {
  const hits = lines.filter((l) => from.test(l));
  assert.equal(hits.length, 1, `exactly one README line matches ${from}: ${JSON.stringify(lines)}`);
  return lines.map((l) => (from.test(l) ? to(l) : l));
}

let cp: ControlPlane;
let lab: TestLab;
let steps: ChildProcess | undefined;

describe("the README's operator steps on a fresh control plane", { timeout: 600_000 }, () => {
  before(async () => {
    [cp, lab] = await Promise.all([
      startControlPlane({ podCidr: '127.0.92.0/24' }),
      startTestLab({ base: '127.0.91', dnsPort: 12453, apiPort: 12480 }),
    ]);
  });
  after(async () => {
    if (steps?.pid && steps.exitCode === null) {
      const exited = new Promise((r) => steps!.once('exit', r));
      process.kill(-steps.pid, 'SIGTERM'); // the script's process group: bash, operator, kubectl
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (steps.exitCode === null) process.kill(-steps.pid, 'SIGKILL');
    }
    await cp?.stop();
    await lab?.down();
  });

  it('runs as written and ends with the dry run Completed, verdict DryRun, no failover', async () => {
    // The user's experiment: the lab's, credentials from a Secret, as a dry run.
    const writerBefore = lab.state().clusters[0]!.writerId;
    const core = cp.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'lab-db' }, stringData: { username: 'failwatch', password: LAB_PASSWORD } },
    });
    const experiment = labExperiment(lab, 'rehearsal', NS, {
      edit: (doc) => {
        delete doc.metadata.namespace; // as a user's file: kubectl puts it in the current namespace
        doc.spec.dryRun = true;
      },
    });
    const experimentFile = join(tmp, 'my-experiment.yaml');
    writeFileSync(experimentFile, stringify(experiment));

    let lines = readmeShellBlock(
      readFileSync(join(ROOT, 'README.md'), 'utf8'),
      '## Kubernetes: the operator',
    );
    lines = substitute(
      lines,
      /^make dev-cluster\b/,
      () => ': make dev-cluster # startControlPlane() stands in',
    );
    lines = substitute(
      lines,
      /^export KUBECONFIG=\.cache\/dev-cluster\/admin\.kubeconfig$/,
      () => `export KUBECONFIG=${cp.kubeconfigPath}`,
    );
    // The default metrics port 8080 may be taken on a shared test machine.
    lines = substitute(lines, /^npx failwatch operator /, (l) =>
      l.replace('--namespace failwatch-system', `--namespace failwatch-system --metrics-listen ${METRICS}`),
    );
    lines = substitute(lines, /my-experiment\.yaml/, (l) => l.replace('my-experiment.yaml', experimentFile));
    const script = ['set -euo pipefail', ...lines].join('\n');
    writeFileSync(join(tmp, 'steps.sh'), `${script}\n`);

    const log = openSync(LOG, 'a');
    steps = spawn('bash', ['-c', script], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', log],
      // The README's PATH: Node 24 and the dev tools from node_modules/.bin, kubectl from the system.
      env: {
        ...process.env,
        PATH: `${dirname(process.execPath)}:${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}`,
      },
    });
    closeSync(log);
    let watched = '';
    steps.stdout!.on('data', (d) => {
      watched += d;
      writeFileSync(LOG, d, { flag: 'a' });
    });
    let exit: number | null = null;
    steps.on('exit', (code) => {
      exit = code;
    });

    // What `kubectl get failoverexperiments -w` shows.
    const completed = await waitFor('the watch to show the experiment Completed', async () => {
      if (exit !== null) throw new Error(`the README steps exited with ${exit}`);
      return watched.split('\n').find((l) => /^rehearsal\s+(Completed|Failed)\b/.test(l));
    });
    // Columns: NAME PHASE REASON TARGET WORST DOWNTIME VERDICT AGE (no reason, no downtime here).
    assert.match(completed, /^rehearsal\s+Completed\s+lab-pg\s+DryRun\s+\S+$/, watched);
    assert.match(watched, /^NAME\s+PHASE\s+REASON\s+TARGET\s+WORST DOWNTIME\s+VERDICT\s+AGE$/m);

    // config/rbac.yaml made the namespace; the CRDs, RBAC and the controller's Lease are there.
    assert.equal(cp.kubectl(['get', 'namespace', SYSTEM_NS]).code, 0);
    assert.equal(cp.kubectl(['get', 'serviceaccount', 'failwatch-controller', '-n', SYSTEM_NS]).code, 0);

    const custom = cp.kubeConfig().makeApiClient(CustomObjectsApi);
    const done = await experimentClient(custom, NS).get('rehearsal');
    assert.equal(done.status.phase, 'Completed');
    assert.equal(done.status.verdict, 'DryRun');
    assert.equal(done.status.trigger, undefined, 'no trigger intent was recorded');
    assert.equal(done.status.triggerTime, undefined);
    const running = done.status.conditions.find((c: { type: string }) => c.type === 'Running');
    assert.equal(running.status, 'False');
    assert.equal(running.reason, 'DryRun');
    // 2 s of baseline at 100 ms per lane: about 20 good attempts in each of the 8 lanes.
    const counts = [...running.message.matchAll(/(\S+\/\S+) (\d+)\/(\d+) good/g)];
    assert.match(running.message, /^dry run: the baseline was healthy \(.*\); the failover was not called$/);
    assert.ok(counts.length >= 7, running.message);
    for (const [, lane, good, attempts] of counts) {
      assert.equal(good, attempts, `${lane} all good`);
      if (!lane!.endsWith('/dns')) assert.ok(Number(attempts) >= 10, `${lane}: ${attempts} attempts`);
    }

    // The lab's ground truth: no failover was requested, the writer is the one it was.
    const truth = lab.state();
    assert.equal(truth.groundTruth.filter((s) => s.step === 'failover-requested').length, 0);
    assert.equal(truth.clusters[0]!.writerId, writerBefore);

    // The Event, the prober pods gone and the target's lock released.
    const events = cp.kubectl(['get', 'events', '-n', NS, '--field-selector', 'reason=DryRun', '-o', 'name']);
    assert.equal(events.code, 0, events.out);
    assert.ok(events.out.trim().length > 0, 'a DryRun Event');
    await waitFor('the prober pods to be gone', async () => {
      const pods = await core.listNamespacedPod({
        namespace: NS,
        labelSelector: 'failwatch.io/experiment=rehearsal',
      });
      return pods.items.length === 0 ? true : undefined;
    });
    const leases = cp.kubeConfig().makeApiClient(CoordinationV1Api);
    const held = (await leases.listNamespacedLease({ namespace: SYSTEM_NS })).items.filter(
      (l) => l.metadata?.name?.startsWith('failwatch-target-') && l.spec?.holderIdentity,
    );
    assert.deepEqual(
      held.map((l) => l.metadata?.name),
      [],
      'no target lock held',
    );
  });
});
