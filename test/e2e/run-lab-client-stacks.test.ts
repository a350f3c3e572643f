// Which client sees what (examples/lab-client-stacks-postgresql.yaml and -mysql.yaml): one
// failover of each of the lab's Aurora clusters (default profile: DNS moves about 12 s after the
// call) seen through the cluster endpoint by the plain driver following DNS and by the AWS
// Advanced NodeJS Wrapper (failover2; on PostgreSQL also its default plugins), with RDS Proxy
// beside them, all on one time axis. The wrapper runs its own topology logic against the lab's
// emulation of Aurora's aurora_replica_status() / aurora_db_instance_identifier() (PostgreSQL,
// which these tests also query) and its Aurora MySQL dialect reading the lab's topology tables
// (MariaDB).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { EndpointResult, Results } from '../../src/analysis/results.ts';
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
const EXAMPLE = 'lab-client-stacks-postgresql.yaml';
const WRAPPER = 'aws-advanced-nodejs-wrapper';
const tmp = mkdtempSync(join(tmpdir(), 'fw-stacks-'));
let lab: TestLab;

/** aurora_replica_status() and aurora_db_instance_identifier() as one instance answers them. */
async function topologyAt(host: string): Promise<{ self: string; writer: string[]; members: string[] }> {
  const client = new pg.Client({
    host,
    port: 5432,
    user: 'failwatch',
    password: 'failwatch-lab',
    database: 'app',
    ssl: { ca: readFileSync(lab.state().tls.caFile!, 'utf8') },
  });
  await client.connect();
  try {
    const self = await client.query<{ id: string }>(
      'SELECT pg_catalog.aurora_db_instance_identifier() AS id',
    );
    const rows = await client.query<{ server_id: string; session_id: string }>(
      'SELECT server_id, session_id FROM pg_catalog.aurora_replica_status()',
    );
    return {
      self: self.rows[0]!.id,
      writer: rows.rows.filter((r) => r.session_id === 'MASTER_SESSION_ID').map((r) => r.server_id),
      members: rows.rows.map((r) => r.server_id).sort(),
    };
  } finally {
    await client.end();
  }
}

const steps = (n: number) => groundTruthSteps(lab, n);

/**
 * The topology probe on cluster-driver saw the writer go when the lab stopped it and come back
 * when the new writer took writes; each endpoint's outage splits into phases that add up to it:
 * the driver waited for DNS, the wrapper did not.
 */
function assertPhases(doc: Results, at: ReturnType<typeof steps>, t0: number) {
  const driver = endpoint(doc, 'cluster-driver');
  const wrapper = endpoint(doc, 'cluster-wrapper');
  const ms = (seconds: number) => t0 + seconds * 1000;
  const noWriter = driver.topology!.windows.filter((w) => w.end !== null && w.end.seconds > 0);
  assert.equal(noWriter.length, 1, JSON.stringify(driver.topology!.windows));
  assert.equal(
    driver.topology!.errors.read_only !== undefined ||
      driver.topology!.errors.connection_refused !== undefined,
    true,
  );
  assert.ok(driver.writerFlip, 'the topology probe names the new writer');
  assert.notEqual(driver.writerFlip!.fromServer, driver.writerFlip!.toServer);
  const split = [driver, wrapper].map((e) => {
    const p = e.phases;
    assert.ok(p, `${e.name}: phases`);
    const sum = p.detectionSeconds + p.promotionSeconds + (p.dnsSeconds ?? 0) + p.recoverySeconds;
    const length = p.window.end.seconds - p.window.start.seconds;
    assert.ok(Math.abs(sum - length) <= 0.004, `${e.name}: phases add up to ${sum}, the window is ${length}`);
    assert.ok(
      [p.detectionSeconds, p.promotionSeconds, p.dnsSeconds ?? 0, p.recoverySeconds].every((x) => x >= 0),
      JSON.stringify(p),
    );
    return p;
  });
  const [d, w] = split as [NonNullable<EndpointResult['phases']>, NonNullable<EndpointResult['phases']>];
  console.log(
    `phases (s): driver ${JSON.stringify([d.detectionSeconds, d.promotionSeconds, d.dnsSeconds, d.recoverySeconds])}, wrapper ${JSON.stringify([w.detectionSeconds, w.promotionSeconds, w.dnsSeconds, w.recoverySeconds])}; no writer T0+${d.writerLost.seconds} .. T0+${d.writerFound.seconds} (${d.writerBefore} -> ${d.writerAfter})`,
  );
  // The lab fences a MariaDB writer (read-only) before it stops it: the writer is gone from then.
  assertEdgeBetween(
    ms(d.writerLost.seconds),
    at('failover-requested'),
    at('old-writer-stopped'),
    100,
    'the topology probe lost the writer when it was fenced or stopped',
  );
  assertEdge(
    ms(d.writerFound.seconds),
    at('new-writer-accepting-writes'),
    100,
    'the topology probe found the new writer when it took writes',
  );
  assert.equal(d.writerAfter, driver.writerFlip!.toServer);
  // The driver waited for DNS: its DNS phase runs from the new writer to its DNS flip.
  assert.ok(d.dnsSeconds !== null && d.dnsSeconds > 3, `driver DNS phase ${d.dnsSeconds}`);
  assert.ok(d.dnsFlip && Math.abs(d.dnsFlip.seconds - driver.dnsFlipSeconds!) < 0.001);
  // The wrapper recovered before its DNS answer changed: no DNS phase.
  assert.equal(w.dnsSeconds, null, JSON.stringify(w));
  assert.ok(wrapper.dnsFlipSeconds !== null && wrapper.dnsFlipSeconds > w.window.end.seconds);
  assert.ok(w.promotionSeconds > 1, `the wrapper waited for the promotion: ${w.promotionSeconds}`);
}

/** When an endpoint's last write window closed (asserted closed), and times as T0+s. */
function afterT0(t0: number) {
  return {
    end: (e: EndpointResult) => {
      const w = e.write?.windows.at(-1);
      assert.ok(w?.end, `${e.name}: a closed write window: ${JSON.stringify(e.write)}`);
      return t0 + w.end.seconds * 1000;
    },
    rel: (ms: number) => ((ms - t0) / 1000).toFixed(2),
  };
}

describe('client stacks side by side: the plain driver, the AWS Advanced NodeJS Wrapper and the proxy', {
  timeout: 600_000,
}, () => {
  before(async () => {
    lab = await startTestLab({
      base: '127.0.114',
      dnsPort: 13353,
      apiPort: 13380,
      profile: 'default',
      engines: 'postgresql,mysql',
    });
  });
  after(async () => {
    await lab?.down();
  });

  it("the lab emulates Aurora's topology: every instance names itself and the writer", async () => {
    for (const [host, self] of [
      ['127.0.114.11', 'lab-pg-1'],
      ['127.0.114.12', 'lab-pg-2'],
    ] as const) {
      const t = await topologyAt(host);
      assert.deepEqual(t, { self, writer: ['lab-pg-1'], members: ['lab-pg-1', 'lab-pg-2'] }, host);
    }
  });

  it('one failover: the wrapper reconnects when the new writer takes writes, the driver when DNS moves', async () => {
    const { code, stdout, stderr, doc } = await runManifest(
      tmp,
      'stacks',
      labManifest(lab, (t) => t, EXAMPLE),
      ENV,
    );
    console.log(stdout);
    assert.equal(doc.run.end, 'Completed', stderr);
    assert.equal(code, 0, JSON.stringify(doc.verdict));
    assert.ok(!`${stdout}${stderr}`.includes(ENV.FAILWATCH_LAB_PASSWORD), 'the password is never printed');
    const failovers = lab.state().groundTruth.filter((s) => s.step === 'failover-requested');
    assert.equal(failovers.length, 1);
    assert.equal(failovers[0]!.cluster, 'lab-pg');
    const at = steps(failovers[0]!.failover);
    const t0 = Date.parse(doc.trigger.time!);
    const driver = endpoint(doc, 'cluster-driver');
    const wrapper = endpoint(doc, 'cluster-wrapper');
    const wrapperDefault = endpoint(doc, 'cluster-wrapper-default');
    const proxy = endpoint(doc, 'proxy');
    assert.deepEqual(
      [driver.client, wrapper.client, wrapperDefault.client, proxy.client],
      ['driver', WRAPPER, WRAPPER, 'driver'],
    );
    const { end, rel } = afterT0(t0);
    console.log(
      `write downtime: driver ${driver.write!.downtimeSeconds} s (recovered T0+${rel(end(driver))}), wrapper failover2 ${wrapper.write!.downtimeSeconds} s (T0+${rel(end(wrapper))}), wrapper default plugins ${wrapperDefault.write!.downtimeSeconds} s (T0+${rel(end(wrapperDefault))}), proxy ${proxy.write!.downtimeSeconds} s (T0+${rel(end(proxy))}); truth: writer stopped T0+${rel(at('old-writer-stopped'))}, new writer takes writes T0+${rel(at('new-writer-accepting-writes'))}, DNS T0+${rel(at('cluster-endpoint-updated'))}`,
    );
    // The driver follows DNS; the wrapper follows the topology, seconds earlier.
    assertEdge(
      end(driver),
      at('cluster-endpoint-updated'),
      100,
      'the driver recovers when DNS names the new writer',
    );
    assertEdge(
      end(wrapper),
      at('new-writer-accepting-writes'),
      100,
      'the wrapper recovers when the new writer takes writes',
    );
    assert.ok(
      end(wrapper) < at('cluster-endpoint-updated') - 2000,
      `the wrapper recovered before DNS moved: T0+${rel(end(wrapper))} vs T0+${rel(at('cluster-endpoint-updated'))}`,
    );
    assert.ok(
      wrapper.write!.downtimeSeconds! < driver.write!.downtimeSeconds! - 3,
      `wrapper ${wrapper.write!.downtimeSeconds} s vs driver ${driver.write!.downtimeSeconds} s`,
    );
    // The call the failover held ends in FailoverSuccessError (connection_lost), the rest wait (slow).
    assert.ok((wrapper.errors.connection_lost ?? 0) >= 1, JSON.stringify(wrapper.errors));
    assert.equal(
      wrapper.errors.connection_refused ?? 0,
      0,
      'the wrapper never dialled the stale DNS name into a refusal',
    );
    assert.ok((driver.errors.connection_refused ?? 0) > 0, JSON.stringify(driver.errors));
    for (const e of [driver, wrapper, wrapperDefault, proxy]) assert.equal(e.lostWrites, 0, e.name);
    assertPhases(doc, at, t0);
    assert.ok(proxy.phases && proxy.phases.dnsSeconds === null, JSON.stringify(proxy.phases));
    assert.match(stdout, /failover phases of each outage/);
    assert.ok(wrapper.roleFlip && wrapper.roleFlip.seconds * 1000 + t0 < at('cluster-endpoint-updated'));
    // The emulation follows the failover: both instances now name lab-pg-2.
    for (const host of ['127.0.114.11', '127.0.114.12'])
      assert.deepEqual((await topologyAt(host)).writer, ['lab-pg-2'], host);
  });

  it('MySQL: the wrapper (its Aurora MySQL dialect on the lab tables) reconnects before DNS moves, mysql2 when it does', async () => {
    const { code, stdout, stderr, doc } = await runManifest(
      tmp,
      'stacks-mysql',
      labManifest(lab, (t) => t, 'lab-client-stacks-mysql.yaml'),
      ENV,
    );
    console.log(stdout);
    assert.equal(doc.run.end, 'Completed', stderr);
    assert.equal(code, 0, JSON.stringify(doc.verdict));
    const failovers = lab
      .state()
      .groundTruth.filter((s) => s.step === 'failover-requested' && s.cluster === 'lab-my');
    assert.equal(failovers.length, 1);
    const at = steps(failovers[0]!.failover);
    const t0 = Date.parse(doc.trigger.time!);
    const driver = endpoint(doc, 'cluster-driver');
    const wrapper = endpoint(doc, 'cluster-wrapper');
    assert.deepEqual([driver.client, wrapper.client], ['driver', WRAPPER]);
    const { end, rel } = afterT0(t0);
    console.log(
      `MySQL write downtime: driver ${driver.write!.downtimeSeconds} s (recovered T0+${rel(end(driver))}), wrapper failover2 ${wrapper.write!.downtimeSeconds} s (T0+${rel(end(wrapper))}); truth: writer stopped T0+${rel(at('old-writer-stopped'))}, new writer takes writes T0+${rel(at('new-writer-accepting-writes'))}, DNS T0+${rel(at('cluster-endpoint-updated'))}; wrapper errors ${JSON.stringify(wrapper.errors)}`,
    );
    assertEdge(
      end(driver),
      at('cluster-endpoint-updated'),
      100,
      'mysql2 recovers when DNS names the new writer',
    );
    assertEdge(
      end(wrapper),
      at('new-writer-accepting-writes'),
      100,
      'the wrapper recovers when the new writer takes writes',
    );
    assert.ok(end(wrapper) < at('cluster-endpoint-updated') - 2000, 'the wrapper recovered before DNS moved');
    assert.ok(
      wrapper.write!.downtimeSeconds! < driver.write!.downtimeSeconds! - 3,
      `wrapper ${wrapper.write!.downtimeSeconds} s vs driver ${driver.write!.downtimeSeconds} s`,
    );
    // Every error has its class. One attempt in about ten runs (one CI run in December 2026)
    // failed with an error classed `other` at the moment the old writer went away, where other
    // runs see one connection_lost; its message is not known yet, so one such attempt is
    // allowed and printed (results.json keeps it in errorExamples) until it can be classed.
    const other = wrapper.write!.errorExamples.other;
    if (other) console.log(`MySQL wrapper: an error classed other: ${JSON.stringify(other)}`);
    assert.ok(
      (wrapper.errors.other ?? 0) <= 1,
      `every error has its class: ${JSON.stringify(wrapper.errors)}; ${JSON.stringify(other)}`,
    );
    for (const e of [driver, wrapper]) assert.equal(e.lostWrites, 0, e.name);
    assertPhases(doc, at, t0);
  });
});
