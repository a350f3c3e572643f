// DNS probe and per-attempt resolution against a real DNS server (BIND, the lab's) whose
// CNAME is moved mid-run, in front of a real PostgreSQL primary and standby.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LAB_ZONE, startDns, stopDns, updateCname } from '../../src/lab/dns.ts';
import * as pg from '../../src/lab/postgres.ts';
import { DnsProbe } from '../../src/probe/dns-probe.ts';
import { Prober } from '../../src/probe/prober.ts';
import type { ProbeSample } from '../../src/probe/types.ts';
import { labEndpoint, pgInstance, stopAll, TempDir } from '../helpers/probe-servers.ts';

const dir = new TempDir();
// named only listens on addresses configured on an interface: loopback's is 127.0.0.1.
const dns = { dir: dir.sub('dns'), host: '127.0.0.1', port: 15340 };
const DNS_SERVER = `${dns.host}:${dns.port}`;
const primary = pgInstance(dir, 'pg1', '127.0.40.21');
const standby = pgInstance(dir, 'pg2', '127.0.40.22');
const CLUSTER = `cluster.${LAB_ZONE}`;
const PG1 = `pg-1.${LAB_ZONE}`;
const PG2 = `pg-2.${LAB_ZONE}`;
let dnsPid = 0;

before(async () => {
  dnsPid = await startDns(dns, [
    { name: CLUSTER, type: 'CNAME', value: PG1 },
    { name: PG1, type: 'A', value: primary.host },
    { name: PG2, type: 'A', value: standby.host },
  ]);
  await pg.initPrimary(primary);
  await pg.initReplica(standby, primary);
});

after(async () => {
  await stopDns(dnsPid);
  await stopAll([primary, standby], []);
  dir.remove();
});

describe('DNS probe', () => {
  it('answers with the CNAME chain and the addresses', async () => {
    const probe = new DnsProbe(CLUSTER, DNS_SERVER, 1000);
    assert.deepEqual(await probe.attempt(), {
      class: 'ok',
      dnsAnswer: [`cname:${PG1}`, `a:${primary.host}`],
    });
    assert.deepEqual(await new DnsProbe(PG2, DNS_SERVER, 1000).attempt(), {
      class: 'ok',
      dnsAnswer: [`a:${standby.host}`],
    });
  });

  it('reports a name that does not exist as dns_error', async () => {
    const o = await new DnsProbe(`nope.${LAB_ZONE}`, DNS_SERVER, 1000).attempt();
    assert.deepEqual([o.class, o.code], ['dns_error', 'ENOTFOUND']);
  });

  it('an IP address needs no lookup', async () => {
    assert.deepEqual(await new DnsProbe('127.0.40.21', undefined, 1000).attempt(), {
      class: 'ok',
      dnsAnswer: ['a:127.0.40.21'],
    });
  });
});

describe('a CNAME flip under fresh and pooled probers', () => {
  it('fresh attempts follow the flip at once; the pooled connection stays on the old server', async () => {
    const samples: ProbeSample[] = [];
    const common = { host: CLUSTER, port: 5432, dnsServer: DNS_SERVER, intervalMs: 25 };
    const fresh = new Prober({
      runId: 'dns-flip',
      endpoint: labEndpoint('postgresql', primary, {
        ...common,
        name: 'fresh',
        connectionMode: 'fresh',
        kinds: ['write', 'dns'],
      }),
      sink: (s) => samples.push(s),
    });
    const pooled = new Prober({
      runId: 'dns-flip',
      endpoint: labEndpoint('postgresql', primary, {
        ...common,
        name: 'pooled',
        connectionMode: 'pooled',
        kinds: ['write'],
      }),
      sink: (s) => samples.push(s),
    });
    await fresh.setup();
    fresh.start();
    pooled.start();
    // 1 s each side: 40 attempts at 25 ms; fresh TLS logins queue on a loaded 2-core machine
    // (13 of 40 finished in one run), so at least 5 on either side.
    await sleep(1000);
    const flipStart = Date.now();
    await updateCname(dns, CLUSTER, PG2);
    const flipDone = Date.now();
    await sleep(1000);
    await Promise.all([fresh.stop(), pooled.stop()]);
    await updateCname(dns, CLUSTER, PG1);

    const of = (endpoint: string, kind: string) =>
      samples.filter((s) => s.endpoint === endpoint && s.kind === kind).sort((a, b) => a.seq - b.seq);
    const dnsSamples = of('fresh', 'dns');
    const before = dnsSamples.filter((s) => s.endMs < flipStart);
    const afterFlip = dnsSamples.filter((s) => s.startMs > flipDone);
    assert.ok(
      before.length >= 15 && afterFlip.length >= 15,
      `${before.length} / ${afterFlip.length} DNS answers`,
    );
    for (const s of before) assert.deepEqual(s.dnsAnswer, [`cname:${PG1}`, `a:${primary.host}`]);
    for (const s of afterFlip) assert.deepEqual(s.dnsAnswer, [`cname:${PG2}`, `a:${standby.host}`]);

    const writes = of('fresh', 'write');
    const writesBefore = writes.filter((s) => s.endMs < flipStart);
    const writesAfter = writes.filter((s) => s.startMs > flipDone);
    assert.ok(
      writesBefore.length >= 5 && writesAfter.length >= 5,
      `${writesBefore.length} / ${writesAfter.length} writes`,
    );
    for (const s of writesBefore) {
      assert.equal(s.class, 'ok');
      assert.equal(s.connectAddr, primary.host);
      assert.deepEqual(s.server, { id: '127.0.40.21:5432', addr: primary.host, role: 'writer' });
    }
    for (const s of writesAfter) {
      assert.deepEqual([s.class, s.code, s.connectAddr], ['read_only', '25006', standby.host]);
    }

    const pooledWrites = of('pooled', 'write');
    assert.ok(pooledWrites.length >= 35, `${pooledWrites.length} pooled writes`);
    for (const s of pooledWrites) {
      assert.equal(s.class, 'ok', s.message);
      assert.equal(s.server?.id, '127.0.40.21:5432');
    }
  });
});
