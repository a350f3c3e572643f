// `failwatch run` of the operations beyond failover against the lab: a reboot without failover
// (examples/lab-reboot-postgresql.yaml) and an instance class change applied immediately
// (examples/lab-instance-class-mysql.yaml). Each restarts the real server of the writer in
// place: the measured write downtime agrees with the lab's ground truth, the writer stays the
// same, the lab saw exactly one request, and RDS shows the new class afterwards.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import type { GroundTruthStep } from '../../src/lab/model.ts';
import { failwatch } from '../helpers/cli.ts';
import { endpoint, labManifest, runManifest, startTestLab, type TestLab } from '../helpers/lab.ts';
import { assertSameDuration } from '../helpers/timing.ts';

const ENV = { FAILWATCH_LAB_PASSWORD: 'failwatch-lab' };
const tmp = mkdtempSync(join(tmpdir(), 'fw-ops-'));
let lab: TestLab;

const run = (name: string, manifest: string) => runManifest(tmp, name, manifest, ENV);

function only(steps: GroundTruthStep[], name: GroundTruthStep['step']): GroundTruthStep {
  const found = steps.filter((s) => s.step === name);
  assert.equal(found.length, 1, `ground truth has one ${name}: ${JSON.stringify(steps)}`);
  return found[0]!;
}

/** The run of one operation on one cluster, checked against the lab's ground truth. */
async function checkOperation(opts: {
  name: string;
  example: string;
  cluster: string;
  requested: 'reboot-requested' | 'modify-requested';
  action: RegExp;
}): Promise<{ measuredSeconds: number; truthSeconds: number }> {
  const writerBefore = lab.state().clusters.find((c) => c.id === opts.cluster)!.writerId;
  const { code, stdout, stderr, doc } = await run(
    opts.name,
    labManifest(lab, (t) => t, opts.example),
  );
  console.log(stdout);
  assert.equal(doc.run.end, 'Completed', stderr);
  assert.ok(code === 0 || code === 1, stderr);
  assert.notEqual(doc.verdict.result, 'Inconclusive', JSON.stringify(doc.verdict.inconclusive));
  assert.match(doc.trigger.action ?? '', opts.action);

  const state = lab.state();
  const truth = state.groundTruth.filter((s) => s.cluster === opts.cluster);
  const request = only(truth, opts.requested);
  const steps = truth.filter((s) => s.failover === request.failover);
  assert.deepEqual(
    truth.filter((s) => s.step === 'reboot-requested' || s.step === 'modify-requested').length,
    1,
    'exactly one reboot or modify request reached the lab',
  );
  assert.equal(request.detail?.split(' ')[0], writerBefore, 'the writer was the instance restarted');
  const stopping = only(steps, 'instance-stopping').atMs;
  const stopped = only(steps, 'instance-stopped').atMs;
  const started = only(steps, 'instance-started').atMs;
  only(steps, 'instance-available');
  const truthSeconds = (started - stopped) / 1000;

  // No new writer: the lab's writer, the probes' role flip.
  assert.equal(state.clusters.find((c) => c.id === opts.cluster)!.writerId, writerBefore);
  const cluster = endpoint(doc, 'cluster');
  assert.equal(cluster.roleFlip, null, 'no role flip');
  assert.equal(cluster.lostWrites, 0);
  const measuredSeconds = cluster.write!.downtimeSeconds;
  console.log(
    `${opts.name}: cluster write downtime ${measuredSeconds} s (windows ${JSON.stringify(cluster.write!.windows.map((w) => [w.start.seconds, w.end?.seconds]))}); ground truth instance-stopped -> instance-started ${truthSeconds} s (from instance-stopping ${(started - stopping) / 1000} s)`,
  );
  assert.equal(cluster.write!.windows.length, 1, 'one outage window');
  assertSameDuration(
    measuredSeconds,
    truthSeconds,
    300,
    'downtime vs the ground truth (instance-stopped to instance-started)',
  );
  return { measuredSeconds, truthSeconds };
}

describe('failwatch run: reboot and instance class change on the lab (fast profile)', {
  timeout: 900_000,
}, () => {
  before(async () => {
    lab = await startTestLab({
      base: '127.0.96',
      dnsPort: 12953,
      apiPort: 12980,
      engines: 'postgresql,mysql',
    });
  });
  after(async () => {
    await lab?.down();
  });

  it('reboot-db-instance: the PostgreSQL writer restarts in place, measured like the ground truth', async () => {
    await checkOperation({
      name: 'reboot',
      example: 'lab-reboot-postgresql.yaml',
      cluster: 'lab-pg',
      requested: 'reboot-requested',
      action: /^RebootDBInstance lab-pg-1 \(no failover\)$/,
    });
    const status = await failwatch(['lab', 'status', '--dir', lab.dir]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /reboot #\d+ of lab-pg at /);
    for (const step of [
      'reboot-requested',
      'instance-stopping',
      'instance-stopped',
      'instance-started',
      'instance-available',
    ])
      assert.match(status.stdout, new RegExp(`T0\\+ *[0-9.]+ s  ${step}`), step);
  });

  it('modify-db-instance-class: the MariaDB writer restarts with the new class', async () => {
    await checkOperation({
      name: 'class',
      example: 'lab-instance-class-mysql.yaml',
      cluster: 'lab-my',
      requested: 'modify-requested',
      action:
        /^ModifyDBInstance lab-my-1 \(DBInstanceClass db\.r6g\.large -> db\.r6g\.xlarge, ApplyImmediately\)$/,
    });
    const rds = new RDSClient({
      endpoint: lab.state().apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
      maxAttempts: 1,
    });
    try {
      const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'lab-my-1' }));
      const inst = out.DBInstances?.[0];
      assert.equal(inst?.DBInstanceClass, 'db.r6g.xlarge');
      assert.equal(inst?.DBInstanceStatus, 'available');
      assert.equal(inst?.PendingModifiedValues?.DBInstanceClass, undefined, 'nothing left pending');
      const other = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'lab-my-2' }));
      assert.equal(other.DBInstances?.[0]?.DBInstanceClass, 'db.r6g.large', 'the reader kept its class');
    } finally {
      rds.destroy();
    }
  });

  it('a reboot the lab ignores (failover profile noop): Inconclusive OperationNotObserved, one call', async () => {
    const set = await failwatch(['lab', 'set', '--dir', lab.dir, '--failover-profile', 'noop']);
    assert.equal(set.code, 0, set.stderr);
    try {
      const ignoredBefore = lab.state().groundTruth.filter((s) => s.step === 'operation-ignored').length;
      const { doc, stderr } = await run(
        'noop',
        labManifest(
          lab,
          (t) => t.replace('maxDuration: 2m', 'maxDuration: 12s'),
          'lab-reboot-postgresql.yaml',
        ),
      );
      assert.equal(doc.run.end, 'Completed', stderr);
      assert.equal(doc.verdict.result, 'Inconclusive');
      assert.deepEqual(
        doc.verdict.inconclusive.map((f) => f.reason),
        ['OperationNotObserved'],
        JSON.stringify(doc.verdict.inconclusive),
      );
      const truth = lab.state().groundTruth;
      assert.equal(truth.filter((s) => s.step === 'operation-ignored').length, ignoredBefore + 1, 'one call');
      assert.equal(
        truth.filter((s) => s.step === 'reboot-requested').length,
        1,
        'only the first test rebooted',
      );
      const errors = endpoint(doc, 'cluster').errors;
      assert.equal(
        (errors.connection_refused ?? 0) + (errors.admin_shutdown ?? 0) + (errors.starting_up ?? 0),
        0,
        `the writer never went away: ${JSON.stringify(errors)}`,
      );
    } finally {
      await failwatch(['lab', 'set', '--dir', lab.dir, '--failover-profile', 'aurora']);
    }
  });
});
