// `failwatch run` of a Blue/Green switchover (examples/lab-blue-green-postgresql.yaml) against
// a lab with a Blue/Green deployment (`failwatch lab up --blue-green`): a green PostgreSQL
// cluster replicating from blue. The lab fences blue, waits for green to catch up, renames and
// promotes: the measured write window runs from blue refusing writes to green taking them,
// nothing acknowledged is lost, the probes see the role flip to another server, and the names
// really moved. A deployment whose blue is not the target, and one already switched over, are
// refused in preflight without a call.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labResolver, resolveChain } from '../../src/lab/dns.ts';
import type { GroundTruthStep } from '../../src/lab/model.ts';
import { endpoint, labManifest, runManifest, startTestLab, type TestLab } from '../helpers/lab.ts';
import { assertEdge, assertEdgeBetween } from '../helpers/timing.ts';

const ENV = { FAILWATCH_LAB_PASSWORD: 'failwatch-lab' };
const EXAMPLE = 'lab-blue-green-postgresql.yaml';
const BGD = 'bgd-labpg00000000000';
const tmp = mkdtempSync(join(tmpdir(), 'fw-bg-'));
let lab: TestLab;

const run = (name: string, manifest: string) => runManifest(tmp, name, manifest, ENV);

function switchovers(cluster = 'lab-pg'): GroundTruthStep[] {
  return lab.state().groundTruth.filter((s) => s.step === 'switchover-requested' && s.cluster === cluster);
}

type LabStateWithBlueGreen = ReturnType<TestLab['state']> & {
  blueGreenDeployments?: { id: string; status: string; sourceClusterId: string; targetClusterId: string }[];
};
const deployment = () =>
  (lab.state() as LabStateWithBlueGreen).blueGreenDeployments?.find((b) => b.id === BGD);

describe('failwatch run: a Blue/Green switchover on the lab (fast profile)', { timeout: 600_000 }, () => {
  before(async () => {
    lab = await startTestLab({
      base: '127.0.108',
      dnsPort: 13053,
      apiPort: 13080,
      engines: 'postgresql,mysql',
      blueGreen: true,
    });
  });
  after(async () => {
    await lab?.down();
  });

  it('the lab has the deployment: green replicates from blue, AVAILABLE', () => {
    const bg = deployment();
    assert.deepEqual(bg && [bg.status, bg.sourceClusterId, bg.targetClusterId], [
      'AVAILABLE',
      'lab-pg',
      'lab-pg-green-lab000',
    ]);
    const green = lab.state().clusters.find((c) => c.id === 'lab-pg-green-lab000');
    assert.deepEqual(
      green?.instances.map((i) => i.host),
      ['127.0.108.61', '127.0.108.62'],
    );
  });

  it('a deployment whose blue environment is not the target is refused in preflight, nothing called', async () => {
    const manifest = labManifest(
      lab,
      (t) => t.replace('clusterIdentifier: lab-pg\n', 'clusterIdentifier: lab-pg-green-lab000\n'),
      EXAMPLE,
    );
    const { code, doc } = await run('mismatch', manifest);
    assert.equal(code, 3);
    assert.equal(doc.run.end, 'Failed');
    assert.equal(doc.run.reason, 'BlueGreenSourceMismatch', doc.run.message);
    assert.match(
      doc.run.message,
      /switches over arn:aws:rds:us-east-1:000000000000:cluster:lab-pg, not the target DB cluster lab-pg-green-lab000/,
    );
    assert.equal(doc.run.triggered, false);
    assert.equal(switchovers().length, 0);
    assert.equal(deployment()?.status, 'AVAILABLE');
  });

  it('switches over: write window from blue read-only to green writable, nothing lost, names moved', async () => {
    const { code, stdout, stderr, doc } = await run(
      'switchover',
      labManifest(lab, (t) => t, EXAMPLE),
    );
    console.log(stdout);
    assert.equal(doc.run.end, 'Completed', stderr);
    assert.equal(doc.verdict.result, 'Pass', JSON.stringify(doc.verdict));
    assert.equal(code, 0);
    assert.equal(doc.trigger.action, `SwitchoverBlueGreenDeployment ${BGD} (SwitchoverTimeout 60 s)`);
    assert.equal(switchovers().length, 1, 'exactly one switchover');
    const messages = doc.trigger.events.map((e) => e.message);
    assert.ok(messages.includes('Switchover started on blue/green deployment.'), messages.join('; '));
    assert.ok(messages.includes('Switchover completed on blue/green deployment.'), messages.join('; '));

    const n = switchovers()[0]!.failover;
    const truth = lab.state().groundTruth.filter((s) => s.failover === n);
    const at = (step: GroundTruthStep['step']) => {
      const s = truth.find((x) => x.step === step);
      assert.ok(s, `ground truth has ${step}: ${JSON.stringify(truth)}`);
      return s.atMs;
    };
    const t0 = Date.parse(doc.trigger.time!);
    const rel = (ms: number) => ((ms - t0) / 1000).toFixed(3);
    const cluster = endpoint(doc, 'cluster');
    // The switchover's window: the last one (a slow attempt before T0 can make an earlier one).
    const w = cluster.write!.windows.at(-1);
    assert.ok(w?.end, `one closed write window: ${JSON.stringify(cluster.write)}`);
    console.log(
      `blue/green: cluster write ${cluster.write!.downtimeSeconds} s (${w.start.seconds} -> ${w.end.seconds}); truth: blue read-only ${rel(at('blue-read-only'))} s, green caught up ${rel(at('green-caught-up'))} s, names moved ${rel(at('cluster-endpoint-updated'))} s, green writable ${rel(at('green-writable'))} s; errors ${JSON.stringify(cluster.errors)}`,
    );
    assertEdgeBetween(
      t0 + w.start.seconds * 1000,
      at('switchover-requested'),
      at('blue-read-only'),
      300,
      'the window opens when blue refuses writes',
    );
    assertEdge(
      t0 + w.end.seconds * 1000,
      at('green-writable'),
      300,
      'the window closes when green takes writes',
    );
    assert.ok(
      (cluster.errors.read_only ?? 0) > 0,
      `writes met a read-only writer: ${JSON.stringify(cluster.errors)}`,
    );
    assert.ok(cluster.roleFlip, 'the probes saw writes acknowledged by another server (green)');
    for (const name of ['cluster', 'cluster-pooled', 'proxy'])
      assert.equal(endpoint(doc, name).lostWrites, 0, `${name}: nothing acknowledged was lost`);

    // The names moved: lab-pg is green now (its writer on green's address), blue is lab-pg-old1.
    const state = lab.state();
    assert.equal(deployment()?.status, 'SWITCHOVER_COMPLETED');
    const pg = state.clusters.find((c) => c.id === 'lab-pg')!;
    assert.equal(pg.instances.find((i) => i.id === pg.writerId)?.host, '127.0.108.61');
    assert.ok(state.clusters.some((c) => c.id === 'lab-pg-old1'));
    const chain = await resolveChain(
      labResolver({ host: '127.0.0.1', port: lab.dnsPort }),
      'lab-pg.cluster-cfwlab0.lab.failwatch.local',
    );
    assert.equal(chain.at(-1), 'a:127.0.108.61', chain.join(' '));
  });

  it('the same deployment again: refused in preflight (SWITCHOVER_COMPLETED), nothing called', async () => {
    const { code, doc } = await run(
      'again',
      labManifest(lab, (t) => t, EXAMPLE),
    );
    assert.equal(code, 3);
    assert.equal(doc.run.reason, 'TargetNotAvailable', doc.run.message);
    assert.match(
      doc.run.message,
      new RegExp(`Blue/Green deployment ${BGD} is SWITCHOVER_COMPLETED, not AVAILABLE`),
    );
    assert.equal(switchovers().length, 1, 'still one switchover');
  });

  const mysqlSwitchover = (edit: (t: string) => string = (t) => t) =>
    labManifest(
      lab,
      (t) =>
        edit(
          t.replace(
            '  trigger:\n    type: aws-rds\n',
            '  trigger:\n    type: aws-rds\n    action: switchover-blue-green-deployment\n    blueGreenDeploymentIdentifier: bgd-labmy00000000000\n',
          ),
        ),
      'lab-aurora-mysql.yaml',
    );
  const greenReplication = async (paused: boolean) => {
    const res = await fetch(`${lab.state().controlUrl}/replication`, {
      method: 'POST',
      body: JSON.stringify({ clusterId: 'lab-my-green-lab000', instanceId: 'lab-my-1-green-lab000', paused }),
    });
    assert.equal(res.status, 200, await res.text());
  };

  it('a switchover RDS rolls back (green never catches up within switchoverTimeout): Inconclusive SwitchoverRolledBack, blue serves again', async () => {
    await greenReplication(true);
    try {
      const manifest = mysqlSwitchover((t) =>
        t
          .replace('bgd-labmy00000000000\n', 'bgd-labmy00000000000\n    switchoverTimeout: 30s\n')
          // The rolled-back attempt keeps blue read-only for the 30 s: within the SLO here, so
          // that the verdict is the rollback's, not an SLO's.
          .replace('maxWriteDowntime: 30s', 'maxWriteDowntime: 2m'),
      );
      assert.match(manifest, /switchoverTimeout: 30s/);
      const { code, stderr, doc } = await run('mysql-rollback', manifest);
      assert.equal(doc.run.end, 'Completed', stderr);
      assert.equal(doc.verdict.result, 'Inconclusive', JSON.stringify(doc.verdict));
      assert.deepEqual(
        doc.verdict.inconclusive.map((f) => f.reason),
        ['SwitchoverRolledBack'],
      );
      assert.match(
        doc.verdict.inconclusive[0]!.message,
        /AVAILABLE again, not switched over: Switchover rolled back: green did not catch up with blue within SwitchoverTimeout/,
      );
      assert.equal(code, 5);
      const failed = lab
        .state()
        .groundTruth.filter((s) => s.cluster === 'lab-my' && s.step === 'switchover-failed');
      assert.equal(failed.length, 1, 'the lab rolled back once');
      const my = lab.state().clusters.find((c) => c.id === 'lab-my')!;
      assert.equal(my.instances.find((i) => i.id === my.writerId)?.host, '127.0.108.31', 'blue still serves');
      assert.equal(
        lab.state().blueGreenDeployments?.find((b) => b.id === 'bgd-labmy00000000000')?.status,
        'AVAILABLE',
      );
      console.log(`blue/green rollback: ${doc.verdict.inconclusive[0]!.message}`);
    } finally {
      await greenReplication(false);
    }
  });

  it('MariaDB: the same switchover of lab-my (read_only fence, GTID catch-up, cascading readers), nothing lost', async () => {
    const manifest = mysqlSwitchover();
    assert.match(manifest, /bgd-labmy00000000000/);
    const { code, stderr, doc } = await run('mysql', manifest);
    assert.equal(doc.run.end, 'Completed', stderr);
    assert.equal(doc.verdict.result, 'Pass', JSON.stringify(doc.verdict));
    assert.equal(code, 0);
    assert.equal(switchovers('lab-my').length, 2, 'the rolled-back attempt and this one');
    const n = switchovers('lab-my')[1]!.failover;
    const truth = lab.state().groundTruth.filter((s) => s.failover === n);
    const at = (step: GroundTruthStep['step']) => truth.find((x) => x.step === step)!.atMs;
    const t0 = Date.parse(doc.trigger.time!);
    const cluster = endpoint(doc, 'cluster');
    // The switchover's window: the last one (a slow attempt before T0 can make an earlier one).
    const w = cluster.write!.windows.at(-1);
    assert.ok(w?.end, `one closed write window: ${JSON.stringify(cluster.write)}`);
    console.log(
      `blue/green mysql: cluster write ${cluster.write!.downtimeSeconds} s (${w.start.seconds} -> ${w.end.seconds}); green writable ${((at('green-writable') - t0) / 1000).toFixed(3)} s; errors ${JSON.stringify(cluster.errors)}`,
    );
    assertEdge(
      t0 + w.end.seconds * 1000,
      at('green-writable'),
      300,
      'the window closes when green takes writes',
    );
    for (const e of doc.endpoints)
      if (e.lostWrites !== null) assert.equal(e.lostWrites, 0, `${e.name}: nothing acknowledged was lost`);
    const my = lab.state().clusters.find((c) => c.id === 'lab-my')!;
    assert.equal(my.instances.find((i) => i.id === my.writerId)?.host, '127.0.108.81');
  });
});
