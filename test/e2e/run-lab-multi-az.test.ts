// `failwatch run` against the lab's RDS Multi-AZ deployments. A Multi-AZ DB cluster
// (failwatch lab up --cluster-kind multi-az-db-cluster): RDS describes Engine postgres with a
// writer and two readable standbys; examples/lab-multi-az-db-cluster-postgresql.yaml fails it
// over once (FailoverDBCluster), the measured cluster write window ends when the lab's DNS
// names the new writer, and the results name the target kind. The Aurora example against the
// same cluster is refused before any call (TargetKindMismatch). A Multi-AZ DB instance
// (--cluster-kind multi-az-instance): examples/lab-multi-az-instance-postgresql.yaml reboots it
// with ForceFailover once; the standby takes over behind the instance's own endpoint.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DBClusterNotFoundFault,
  DBInstanceNotFoundFault,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import type { Results } from '../../src/analysis/results.ts';
import { failwatch } from '../helpers/cli.ts';
import { labManifest, runManifest, startTestLab, type TestLab } from '../helpers/lab.ts';
import { assertEdge } from '../helpers/timing.ts';

const ENV = { FAILWATCH_LAB_PASSWORD: 'failwatch-lab' };
const tmp = mkdtempSync(join(tmpdir(), 'fw-maz-'));
let lab: TestLab;

const run = (name: string, manifest: string) => runManifest(tmp, name, manifest, ENV);

/** The outage window of the failover: the longest (a lone slow attempt makes a short one). */
function failoverWindow<W extends { start: { seconds: number }; end?: { seconds: number } | null }>(
  windows: W[],
): W {
  assert.ok(windows.length > 0, 'an outage window');
  const length = (w: W) => (w.end?.seconds ?? Number.POSITIVE_INFINITY) - w.start.seconds;
  return windows.reduce((a, b) => (length(b) > length(a) ? b : a));
}

const failovers = () => lab.state().groundTruth.filter((s) => s.step === 'failover-requested');

function rdsClient(): RDSClient {
  return new RDSClient({
    endpoint: lab.state().apiUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
    maxAttempts: 1,
  });
}

/** The lab's truth steps of the run's failover, seconds after its T0. */
function truthOf(doc: Results): Record<string, number> {
  const n = failovers().at(-1)!.failover;
  const t0 = Date.parse(doc.trigger.time);
  return Object.fromEntries(
    lab
      .state()
      .groundTruth.filter((s) => s.failover === n)
      .map((s) => [s.step, (s.atMs - t0) / 1000]),
  );
}

describe('failwatch run: a Multi-AZ DB cluster on the lab (fast profile)', { timeout: 600_000 }, () => {
  before(async () => {
    lab = await startTestLab({
      base: '127.0.97',
      dnsPort: 12963,
      apiPort: 12990,
      clusterKind: 'multi-az-db-cluster',
    });
  });
  after(async () => {
    await lab?.down();
  });

  it('the lab describes a Multi-AZ DB cluster: Engine postgres, a writer and two readable standbys', async () => {
    const status = await failwatch(['lab', 'status', '--dir', lab.dir]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /cluster lab-pg \(Multi-AZ DB cluster, postgresql\) status available, writer lab-pg-1/,
    );
    const rds = rdsClient();
    try {
      const c = (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'lab-pg' })))
        .DBClusters?.[0];
      assert.equal(c?.Engine, 'postgres');
      assert.equal(c?.DBClusterInstanceClass, 'db.r6g.large');
      assert.equal(c?.MultiAZ, true);
      assert.deepEqual(
        c?.DBClusterMembers?.map((m) => `${m.DBInstanceIdentifier}${m.IsClusterWriter ? ' writer' : ''}`),
        ['lab-pg-1 writer', 'lab-pg-2', 'lab-pg-3'],
      );
    } finally {
      rds.destroy();
    }
  });

  it('the Aurora example is refused before any call: TargetKindMismatch, exit 3', async () => {
    const before = failovers().length;
    const { code, doc, stderr } = await run('aurora', labManifest(lab));
    assert.equal(code, 3, stderr);
    assert.equal(doc.run.end, 'Failed');
    assert.equal(doc.run.reason, 'TargetKindMismatch');
    assert.equal(doc.run.triggered, false);
    assert.match(
      doc.run.message,
      /lab-pg is a Multi-AZ DB cluster \(Engine postgres\), not an Aurora cluster: set target\.kind: multi-az-db-cluster/,
    );
    assert.equal(failovers().length, before, 'nothing was failed over');
  });

  it('examples/lab-multi-az-db-cluster-postgresql.yaml: one failover, the write window ends with the DNS update', async () => {
    const before = failovers().length;
    const writerBefore = lab.state().clusters[0]!.writerId;
    const { code, doc, stdout, stderr } = await run(
      'multi-az',
      labManifest(lab, (t) => t, 'lab-multi-az-db-cluster-postgresql.yaml'),
    );
    console.log(stdout);
    assert.equal(doc.run.end, 'Completed', stderr);
    assert.equal(doc.verdict.result, 'Pass', JSON.stringify(doc.verdict));
    assert.equal(code, 0);
    assert.equal(doc.trigger.action, 'FailoverDBCluster lab-pg');
    assert.equal(doc.trigger.targetKind, 'multi-az-db-cluster');
    assert.equal(failovers().length, before + 1, 'exactly one failover');

    const state = lab.state();
    const writerAfter = state.clusters[0]!.writerId;
    assert.notEqual(writerAfter, writerBefore, 'a standby became the writer');
    const truth = truthOf(doc);
    const cluster = doc.endpoints.find((e) => e.name === 'cluster')!;
    const window = failoverWindow(cluster.write!.windows);
    console.log(
      `multi-az: cluster write ${cluster.write!.downtimeSeconds} s (${window.start.seconds} -> ${window.end?.seconds}); truth ${JSON.stringify(truth)}`,
    );
    assert.ok(cluster.roleFlip, 'the probes saw the new writer');
    assert.equal(cluster.lostWrites, 0);
    // The fresh write window opens at the end of the last good write: before the old writer is
    // down, and at most about one 300 ms interval before T0 (the writer stops 0.2 s after it).
    // It closes with the first good write after DNS names the new writer (test/helpers/timing.ts:
    // how late a loaded machine may be).
    assert.ok(
      window.start.seconds >= -0.4 && window.start.seconds <= truth['old-writer-stopped']!,
      `window opens at ${window.start.seconds} s, the old writer was down at ${truth['old-writer-stopped']} s`,
    );
    assertEdge(
      window.end!.seconds * 1000,
      truth['cluster-endpoint-updated']! * 1000,
      300,
      'the window closes when DNS names the new writer',
    );
    const reader = doc.endpoints.find((e) => e.name === 'reader')!;
    assert.ok(reader.read, 'the reader endpoint was probed');
  });
});

describe('failwatch run: a Multi-AZ DB instance on the lab (fast profile)', { timeout: 600_000 }, () => {
  before(async () => {
    lab = await startTestLab({
      base: '127.0.99',
      dnsPort: 12983,
      apiPort: 12970,
      clusterKind: 'multi-az-instance',
    });
  });
  after(async () => {
    await lab?.down();
  });

  it('RDS shows one Multi-AZ DB instance lab-pg and neither a cluster nor the standby', async () => {
    const status = await failwatch(['lab', 'status', '--dir', lab.dir]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /cluster lab-pg \(Multi-AZ DB instance, postgresql: primary lab-pg-1, hidden standby\)/,
    );
    assert.match(status.stdout, /instance endpoint lab-pg\.cfwlab0\.lab\.failwatch\.local:5432/);
    const rds = rdsClient();
    try {
      const out = await rds.send(new DescribeDBInstancesCommand({}));
      assert.deepEqual(
        out.DBInstances?.map((i) => i.DBInstanceIdentifier),
        ['lab-pg'],
      );
      const i = out.DBInstances![0]!;
      assert.equal(i.MultiAZ, true);
      assert.equal(i.Engine, 'postgres');
      assert.equal(i.Endpoint?.Address, 'lab-pg.cfwlab0.lab.failwatch.local');
      assert.equal(i.DBClusterIdentifier, undefined);
      assert.equal(i.AvailabilityZone, 'us-east-1a');
      assert.equal(i.SecondaryAvailabilityZone, 'us-east-1b');
      await assert.rejects(
        rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'lab-pg-2' })),
        DBInstanceNotFoundFault,
      );
      await assert.rejects(
        rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'lab-pg' })),
        DBClusterNotFoundFault,
      );
    } finally {
      rds.destroy();
    }
  });

  it('examples/lab-multi-az-instance-postgresql.yaml: one forced failover, the endpoint follows the standby', async () => {
    const before = failovers().length;
    const primaryBefore = lab.state().clusters[0]!.writerId;
    const { code, doc, stdout, stderr } = await run(
      'multi-az-instance',
      labManifest(lab, (t) => t, 'lab-multi-az-instance-postgresql.yaml'),
    );
    console.log(stdout);
    assert.equal(doc.run.end, 'Completed', stderr);
    assert.equal(doc.verdict.result, 'Pass', JSON.stringify(doc.verdict));
    assert.equal(code, 0);
    assert.equal(doc.trigger.action, 'RebootDBInstance lab-pg (ForceFailover)');
    assert.equal(doc.trigger.targetKind, 'rds-instance');
    assert.equal(failovers().length, before + 1, 'exactly one failover');
    assert.notEqual(lab.state().clusters[0]!.writerId, primaryBefore, 'the standby became the primary');
    const messages = doc.trigger.events.map((e) => e.message);
    assert.ok(messages.includes('Multi-AZ instance failover started.'), JSON.stringify(messages));
    assert.ok(messages.includes('Multi-AZ instance failover completed.'), JSON.stringify(messages));

    const truth = truthOf(doc);
    const instance = doc.endpoints.find((e) => e.name === 'instance')!;
    const window = failoverWindow(instance.write!.windows);
    console.log(
      `multi-az instance: write ${instance.write!.downtimeSeconds} s (${window.start.seconds} -> ${window.end?.seconds}); truth ${JSON.stringify(truth)}`,
    );
    assert.ok(instance.roleFlip, 'the probes saw the new primary');
    assert.ok(instance.dnsFlip, 'the instance endpoint moved to the standby');
    assert.equal(instance.lostWrites, 0);
    assert.ok(
      window.start.seconds >= -0.4 && window.start.seconds <= truth['old-writer-stopped']!,
      `window opens at ${window.start.seconds} s, the primary was down at ${truth['old-writer-stopped']} s`,
    );
    assertEdge(
      window.end!.seconds * 1000,
      truth['cluster-endpoint-updated']! * 1000,
      300,
      'the window closes when DNS names the standby',
    );
  });
});
