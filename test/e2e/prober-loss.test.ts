// A prober pod lost during a run (what a drain of an unreachable node does), on a real control plane (with a
// node agent running prober pods as processes) and the lab: the run is Inconclusive, never a
// Pass; the time without a prober is a coverage gap in status, metrics and results, never
// downtime or lost writes; a replacement prober continues the lane.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';
import {
  experimentClient,
  LAB_PASSWORD,
  labExperiment,
  labIdle,
  prepareOperatorNamespace,
  spawnOperator,
  stopProcess,
  waiter,
} from '../helpers/operator-env.ts';

const NS = 'team';

/** The process group the node agent runs a pod's container in (its environment names the pod). */
function processGroupOfPod(name: string): number {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours
    }
    if (!environ.split('\0').includes(`HOSTNAME=${name}`)) continue;
    // /proc/<pid>/stat: "pid (comm) state ppid pgrp ...", comm may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  }
  assert.fail(`no process of pod ${name}`);
}
const tmp = mkdtempSync(join(tmpdir(), 'fw-loss-'));
const LOG = join(tmp, 'operator.log');
const METRICS = '127.0.71.5:18080';
let cp: ControlPlane;
let lab: TestLab;
let operator: ChildProcess | undefined;
let core: CoreV1Api;
let experiments: ReturnType<typeof experimentClient>;

const waitFor = waiter({ timeoutMs: 150_000, intervalMs: 100, logs: { operator: LOG } });
const failoversInLab = () => lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length;

describe('a prober pod lost during the outage', { timeout: 900_000 }, () => {
  before(async () => {
    cp = await startControlPlane();
    lab = await startTestLab({ base: '127.0.71', dnsPort: 11453, apiPort: 11480 });
    const admin = cp.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    experiments = experimentClient(admin.makeApiClient(CustomObjectsApi), NS);
    const kubeconfig = await prepareOperatorNamespace(cp, {
      dir: tmp,
      namespace: NS,
      secrets: { 'lab-db': LAB_PASSWORD },
    });
    operator = spawnOperator({ kubeconfig, listen: METRICS, logFile: LOG });
  });

  after(async () => {
    await stopProcess(operator);
    await cp?.stop();
    await lab?.down();
  });

  it('is Inconclusive with the gap in status, no invented downtime or lost writes, and a replacement that goes on', async () => {
    await waitFor('the lab to be idle', labIdle(lab));
    const before = failoversInLab();
    await experiments.create(labExperiment(lab, 'lost', NS));
    const observing = await waitFor(
      'lost Observing',
      experiments.phaseIs('lost', ['Observing', 'Completed', 'Failed']),
    );
    assert.equal(observing.status.phase, 'Observing');
    const t0 = Date.parse(observing.status.triggerTime);
    // 2 s into the outage (the lab stops the writer right after the call) the prober's node
    // goes dark: its processes freeze (no attempts, its API silent), and 2.5 s later the pod is
    // deleted, as a drain of an unreachable node would. The gap is then longer than the
    // coverage limit (max(5 x 300 ms, 1 s)) whatever the replacement's start-up takes: a
    // deletion alone can be replaced within the limit on a fast machine, and then there is no
    // gap to report (coverage complete, the verdict stands).
    await sleep(Math.max(0, t0 + 2000 - Date.now()));
    const group = processGroupOfPod('lost-probe-cluster');
    const darkMs = Date.now();
    process.kill(-group, 'SIGSTOP');
    await sleep(2500);
    await core.deleteNamespacedPod({ name: 'lost-probe-cluster', namespace: NS });
    process.kill(-group, 'SIGCONT');
    const done = await waitFor('lost Completed', experiments.phaseIs('lost', ['Completed', 'Failed']));
    assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
    assert.equal(failoversInLab(), before + 1, 'exactly one failover');
    const truth = lab.state().groundTruth.filter((s) => s.failover === before + 1);
    const at = (step: string) => (truth.find((s) => s.step === step)!.atMs - t0) / 1000;
    const st = done.status;
    const cluster = st.endpoints.find((e: { name: string }) => e.name === 'cluster');
    const others = st.endpoints.filter((e: { name: string }) => e.name !== 'cluster');
    console.log(
      `prober dark at +${((darkMs - t0) / 1000).toFixed(3)} s, deleted 2.5 s later; verdict ${st.verdict}; cluster write downtime ${cluster.writeDowntimeSeconds} s, read ${cluster.readDowntimeSeconds} s, lost writes ${cluster.lostWrites}, recovered ${cluster.recovered}; coverage ${JSON.stringify(cluster.coverage)}; truth: writer stopped +${at('old-writer-stopped')} s, cluster DNS +${at('cluster-endpoint-updated')} s; completed +${((Date.parse(st.completionTime) - t0) / 1000).toFixed(1)} s; reasons ${JSON.stringify(st.verdictReasons)}`,
    );

    // Never a Pass, and not a Fail made of missing data.
    assert.equal(st.verdict, 'Inconclusive');
    assert.equal(cluster.verdict, 'Inconclusive');
    assert.deepEqual(
      st.inconclusive.map((f: { reason: string; endpoint?: string }) => [f.reason, f.endpoint]),
      [['CoverageGap', 'cluster']],
    );
    const passed = st.conditions.find((c: { type: string }) => c.type === 'Passed');
    assert.deepEqual([passed.status, passed.reason], ['Unknown', 'Inconclusive']);

    // The gap, in status: from the last attempt pulled before the deletion to the replacement's first.
    assert.equal(cluster.coverage.complete, false);
    assert.ok(cluster.coverage.gaps >= 1);
    const writeGap = cluster.coverage.firstGaps.find((g: { kind: string }) => g.kind === 'write');
    assert.ok(writeGap, JSON.stringify(cluster.coverage));
    assert.ok(
      Math.abs(writeGap.startSeconds - (darkMs - t0) / 1000) <= 3,
      `the gap starts when the prober went dark (${writeGap.startSeconds} s)`,
    );
    assert.ok(writeGap.endSeconds > writeGap.startSeconds + 1, 'the gap lasts until the replacement probes');

    // No downtime or lost writes invented: the endpoint's measured outage stays inside what the
    // lab did (the writer was back when DNS moved), and the replacement's read-back covers every
    // generation's rows.
    assert.ok(
      cluster.writeDowntimeSeconds < at('cluster-endpoint-updated') + 1,
      `${cluster.writeDowntimeSeconds} s`,
    );
    assert.equal(cluster.lostWrites, 0);
    assert.equal(cluster.recovered, true, 'the replacement saw the endpoint serving');
    assert.ok(
      (Date.parse(st.completionTime) - t0) / 1000 < 60,
      'observation ended on recovery, not at maxDuration',
    );
    for (const other of others) {
      assert.equal(other.coverage.complete, true, `${other.name} ${JSON.stringify(other.coverage)}`);
      assert.notEqual(other.verdict, 'Fail', `${other.name}: ${JSON.stringify(st.verdictReasons)}`);
    }

    // The lane goes on after the gap (results.json), and the replacement was announced.
    const cm = await core.readNamespacedConfigMap({ name: 'lost-results', namespace: NS });
    const results = JSON.parse(cm.data!['results.json']!);
    const lane = results.endpoints
      .find((e: { name: string }) => e.name === 'cluster')
      .coverage.lanes.find((l: { kind: string }) => l.kind === 'write');
    assert.ok(
      lane.lastAttempt.seconds > writeGap.endSeconds + 1,
      `samples after the gap: ${JSON.stringify(lane)}`,
    );
    assert.equal(results.verdict.result, 'Inconclusive');
    const events = await core.listNamespacedEvent({
      namespace: NS,
      fieldSelector: 'involvedObject.name=lost',
    });
    const replaced = events.items.find((e) => e.reason === 'ProberReplaced');
    assert.match(replaced?.message ?? '', /lost-probe-cluster .*replaced by lost-probe-cluster-r1/);
    assert.ok(events.items.some((e) => e.reason === 'Inconclusive'));
    const metrics = await (await fetch(`http://${METRICS}/metrics`)).text();
    assert.match(
      metrics,
      /failwatch_experiment_coverage_gaps\{[^}]*experiment="lost"[^}]*endpoint="cluster"[^}]*kind="write"[^}]*\} [1-9]/,
    );
    assert.match(
      metrics,
      /failwatch_experiment_verdict\{[^}]*experiment="lost"[^}]*verdict="Inconclusive"\} 1/,
    );
  });

  it('replaces a shared prober pod (sharing Zone) as a whole: every endpoint of it gaps, goes on and audits', async () => {
    await waitFor('the lab to be idle', labIdle(lab));
    const before = failoversInLab();
    const doc = labExperiment(lab, 'lost-shared', NS, {
      edit: (d) => {
        d.spec.probers = { sharing: 'Zone' };
      },
    });
    const names: string[] = doc.spec.endpoints.map((e: { name: string }) => e.name);
    await experiments.create(doc);
    const observing = await waitFor(
      'lost-shared Observing',
      experiments.phaseIs('lost-shared', ['Observing', 'Completed', 'Failed']),
    );
    assert.equal(observing.status.phase, 'Observing');
    const pods = await core.listNamespacedPod({
      namespace: NS,
      labelSelector: 'failwatch.io/experiment=lost-shared',
    });
    assert.deepEqual(
      pods.items.map((p) => [p.metadata!.name, p.metadata!.annotations!['failwatch.io/endpoints']]),
      [['lost-shared-probe-shared', names.join(',')]],
      'one pod probes every endpoint',
    );
    const t0 = Date.parse(observing.status.triggerTime);
    // As above: the node goes dark 2 s into the outage, the pod is deleted 2.5 s later.
    await sleep(Math.max(0, t0 + 2000 - Date.now()));
    const group = processGroupOfPod('lost-shared-probe-shared');
    const darkMs = Date.now();
    process.kill(-group, 'SIGSTOP');
    await sleep(2500);
    await core.deleteNamespacedPod({ name: 'lost-shared-probe-shared', namespace: NS });
    process.kill(-group, 'SIGCONT');
    const done = await waitFor(
      'lost-shared Completed',
      experiments.phaseIs('lost-shared', ['Completed', 'Failed']),
    );
    assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
    assert.equal(failoversInLab(), before + 1, 'exactly one failover');
    const st = done.status;
    console.log(
      `shared prober dark at +${((darkMs - t0) / 1000).toFixed(3)} s, deleted 2.5 s later; verdict ${st.verdict}; ${st.endpoints.map((e: Record<string, unknown>) => `${e.name}: write ${e.writeDowntimeSeconds} s, read ${e.readDowntimeSeconds} s, lost ${e.lostWrites}`).join('; ')}`,
    );
    // Every endpoint of the pod lost its prober at once: each one's gap, none invented as downtime.
    assert.equal(st.verdict, 'Inconclusive');
    assert.deepEqual(
      st.inconclusive.map((f: { reason: string; endpoint?: string }) => [f.reason, f.endpoint]).sort(),
      names.map((n) => ['CoverageGap', n]).sort(),
    );
    const cm = await core.readNamespacedConfigMap({ name: 'lost-shared-results', namespace: NS });
    const results = JSON.parse(cm.data!['results.json']!);
    for (const name of names) {
      const e = st.endpoints.find((x: { name: string }) => x.name === name);
      assert.equal(e.recovered, true, `${name}: the replacement saw the endpoint serving`);
      if (e.lostWrites !== undefined && e.lostWrites !== null)
        assert.equal(e.lostWrites, 0, `${name}: every generation's writes read back`);
      const gap = e.coverage.firstGaps[0];
      assert.ok(
        Math.abs(gap.startSeconds - (darkMs - t0) / 1000) <= 3,
        `${name}: gap at ${gap.startSeconds} s`,
      );
      // The lane goes on after the gap in the replacement pod.
      const lanes = results.endpoints.find((x: { name: string }) => x.name === name).coverage.lanes;
      for (const lane of lanes)
        assert.ok(
          lane.lastAttempt.seconds > gap.endSeconds + 1,
          `${name}/${lane.kind}: ${JSON.stringify(lane)}`,
        );
    }
    const events = await core.listNamespacedEvent({
      namespace: NS,
      fieldSelector: 'involvedObject.name=lost-shared',
    });
    const replaced = events.items.filter((e) => e.reason === 'ProberReplaced');
    assert.equal(replaced.length, 1, 'one replacement pod for all the endpoints');
    assert.match(
      replaced[0]!.message ?? '',
      new RegExp(
        `^endpoints ${names.join(', ')}: prober pod lost-shared-probe-shared .*replaced by lost-shared-probe-shared-r1`,
      ),
    );
  });
});
