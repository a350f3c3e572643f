// `failwatch run` of Global Database operations (examples/lab-global-postgresql.yaml) against a
// lab whose PostgreSQL cluster is the primary of a Global Database (`failwatch lab up --global`):
// a switchover to the secondary loses nothing and its write window runs from the primary
// refusing writes to the global writer endpoint naming the promoted secondary; a failover back
// with AllowDataLoss while the secondary receives nothing loses every write acknowledged since,
// and the lost-write audit counts them (the RPO). A secondary that is not the global cluster's
// is refused in preflight.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { labResolver, resolveChain } from '../../src/lab/dns.ts';
import {
  endpoint,
  groundTruthSteps,
  labManifest,
  runManifest,
  startTestLab,
  type TestLab,
} from '../helpers/lab.ts';
import { assertEdge, assertEdgeBetween } from '../helpers/timing.ts';

const ENV = { FAILWATCH_LAB_PASSWORD: 'failwatch-lab' };
const EXAMPLE = 'lab-global-postgresql.yaml';
const WEST_ARN = 'arn:aws:rds:us-west-2:000000000000:cluster:lab-pg-west';
const EAST_ARN = 'arn:aws:rds:us-east-1:000000000000:cluster:lab-pg';
const tmp = mkdtempSync(join(tmpdir(), 'fw-global-'));
let lab: TestLab;

const run = (name: string, manifest: string) => runManifest(tmp, name, manifest, ENV);

const requests = () =>
  lab
    .state()
    .groundTruth.filter(
      (s) => s.step === 'global-switchover-requested' || s.step === 'global-failover-requested',
    );
const globalCluster = () => lab.state().globalClusters?.find((g) => g.id === 'lab-pg-global');

const steps = (n: number) => groundTruthSteps(lab, n);

describe('failwatch run: a Global Database switchover and a failover with data loss on the lab', {
  timeout: 600_000,
}, () => {
  before(async () => {
    lab = await startTestLab({ base: '127.0.110', dnsPort: 13153, apiPort: 13180, global: true });
  });
  after(async () => {
    await lab?.down();
  });

  it('the lab has the Global Database: lab-pg primary, lab-pg-west replicating from it', () => {
    const g = globalCluster();
    assert.deepEqual(g && [g.status, g.primaryClusterId, g.secondaryClusterIds], [
      'available',
      'lab-pg',
      ['lab-pg-west'],
    ]);
    const west = lab.state().clusters.find((c) => c.id === 'lab-pg-west');
    assert.deepEqual(
      west?.instances.map((i) => i.host),
      ['127.0.110.111', '127.0.110.112'],
    );
    assert.equal(west?.region, 'us-west-2');
  });

  it('a cluster that is not a secondary of the global cluster is refused in preflight, nothing called', async () => {
    const manifest = labManifest(
      lab,
      (t) => t.replace(WEST_ARN, 'arn:aws:rds:us-west-2:000000000000:cluster:elsewhere'),
      EXAMPLE,
    );
    const { code, doc } = await run('mismatch', manifest);
    assert.equal(code, 3);
    assert.equal(doc.run.reason, 'GlobalClusterMismatch', doc.run.message);
    assert.match(doc.run.message, /elsewhere is not a secondary cluster of global cluster lab-pg-global/);
    assert.equal(requests().length, 0);
  });

  it('switches over to lab-pg-west: the window from the primary read-only to the global endpoint moving, nothing lost', async () => {
    const { code, stdout, stderr, doc } = await run(
      'switchover',
      labManifest(lab, (t) => t, EXAMPLE),
    );
    console.log(stdout);
    assert.equal(doc.run.end, 'Completed', stderr);
    assert.equal(doc.verdict.result, 'Pass', JSON.stringify(doc.verdict));
    assert.equal(code, 0);
    assert.equal(doc.trigger.action, `SwitchoverGlobalCluster lab-pg-global (to ${WEST_ARN})`);
    assert.equal(requests().length, 1, 'exactly one switchover');
    const at = steps(requests()[0]!.failover);
    const t0 = Date.parse(doc.trigger.time!);
    const global = endpoint(doc, 'global');
    // The operation's window: the last one (a slow attempt before T0 can make an earlier one).
    const w = global.write!.windows.at(-1);
    assert.ok(w?.end, `one closed write window: ${JSON.stringify(global.write)}`);
    console.log(
      `global switchover: write ${global.write!.downtimeSeconds} s (${w.start.seconds} -> ${w.end.seconds}); truth: primary read-only ${(at('primary-read-only') - t0) / 1000} s, caught up ${(at('secondary-caught-up') - t0) / 1000} s, writable ${(at('new-primary-writable') - t0) / 1000} s, global endpoint ${(at('global-endpoint-updated') - t0) / 1000} s`,
    );
    assertEdgeBetween(
      t0 + w.start.seconds * 1000,
      at('global-switchover-requested'),
      at('primary-read-only'),
      300,
      'the window opens when the primary refuses writes',
    );
    assertEdge(
      t0 + w.end.seconds * 1000,
      at('global-endpoint-updated'),
      300,
      'the window closes when the global endpoint names the new primary',
    );
    assert.ok(global.roleFlip, 'the probes saw writes acknowledged by the secondary');
    for (const name of ['global', 'global-pooled']) assert.equal(endpoint(doc, name).lostWrites, 0, name);
    assert.deepEqual(
      [globalCluster()?.primaryClusterId, globalCluster()?.status],
      ['lab-pg-west', 'available'],
    );
    const chain = await resolveChain(
      labResolver({ host: '127.0.0.1', port: lab.dnsPort }),
      'lab-pg-global.global-cfwlab0.lab.failwatch.local',
    );
    assert.equal(chain.at(-1), 'a:127.0.110.111', chain.join(' '));
  });

  it('fails over back to lab-pg with AllowDataLoss while it receives nothing: every write acknowledged since is lost, and counted', async () => {
    // lab-pg (now the secondary) stops receiving from lab-pg-west before the run starts.
    const res = await fetch(`${lab.state().controlUrl}/replication`, {
      method: 'POST',
      body: JSON.stringify({ clusterId: 'lab-pg', instanceId: 'lab-pg-1', paused: true }),
    });
    assert.equal(res.status, 200, await res.text());
    const manifest = labManifest(
      lab,
      (t) =>
        t
          .replace(
            'clusterIdentifier: lab-pg\n    region: us-east-1',
            'clusterIdentifier: lab-pg-west\n    region: us-west-2',
          )
          .replace(
            'action: switchover-global-cluster',
            'action: failover-global-cluster\n    allowDataLoss: true',
          )
          .replace(`targetDbClusterIdentifier: ${WEST_ARN}`, `targetDbClusterIdentifier: ${EAST_ARN}`),
      EXAMPLE,
    );
    assert.match(manifest, /allowDataLoss: true/);
    const { code, stdout, stderr, doc } = await run('failover', manifest);
    console.log(stdout);
    assert.equal(doc.run.end, 'Completed', stderr);
    assert.equal(doc.verdict.result, 'Fail', 'maxLostWrites: 0 fails a run that lost writes');
    assert.equal(code, 1);
    assert.equal(doc.trigger.action, `FailoverGlobalCluster lab-pg-global (to ${EAST_ARN}, AllowDataLoss)`);
    assert.equal(requests().length, 2, 'one more call');
    const n = requests()[1]!.failover;
    assert.equal(requests()[1]!.step, 'global-failover-requested');
    assert.ok(
      !lab.state().groundTruth.some((s) => s.failover === n && s.step === 'secondary-caught-up'),
      'a failover with data loss does not wait for the secondary',
    );
    const fresh = endpoint(doc, 'global').lostWrites ?? 0;
    const pooled = endpoint(doc, 'global-pooled').lostWrites ?? 0;
    console.log(
      `global failover with data loss: lost writes ${fresh} (fresh, 300 ms), ${pooled} (pooled, 100 ms)`,
    );
    // The baseline alone (3 s) acknowledged about 10 fresh and 30 pooled writes on lab-pg-west.
    assert.ok(fresh >= 5, `${fresh} fresh writes lost`);
    assert.ok(pooled >= 15, `${pooled} pooled writes lost`);
    assert.deepEqual([globalCluster()?.primaryClusterId, globalCluster()?.status], ['lab-pg', 'available']);
  });
});
