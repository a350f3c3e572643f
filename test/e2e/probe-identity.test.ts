// Fresh and pooled probes report which server answered and its role, against a real
// PostgreSQL primary + streaming replica and a real MariaDB primary + replica.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as maria from '../../src/lab/mariadb.ts';
import * as pg from '../../src/lab/postgres.ts';
import { Prober } from '../../src/probe/prober.ts';
import { readBackWrites } from '../../src/probe/read-back.ts';
import { createProbeDriver } from '../../src/probe/sql-driver.ts';
import type { AttemptOutcome, ConnectionMode, ProbeSample } from '../../src/probe/types.ts';
import { labEndpoint, mariaInstance, pgInstance, stopAll, TempDir } from '../helpers/probe-servers.ts';

const dir = new TempDir();
const pgPrimary = pgInstance(dir, 'pg1', '127.0.40.11');
const pgReplica = pgInstance(dir, 'pg2', '127.0.40.12');
const myPrimary = mariaInstance(dir, 'my1', '127.0.41.11', 11);
const myReplica = mariaInstance(dir, 'my2', '127.0.41.12', 12);

before(async () => {
  await Promise.all([
    (async () => {
      await pg.initPrimary(pgPrimary);
      await pg.initReplica(pgReplica, pgPrimary);
    })(),
    (async () => {
      await maria.initPrimary(myPrimary);
      await maria.initReplica(myReplica, myPrimary);
    })(),
  ]);
});

after(async () => {
  await stopAll([pgPrimary, pgReplica], [myPrimary, myReplica]);
  dir.remove();
});

const MODES: ConnectionMode[] = ['fresh', 'pooled'];

/** The outcome without reconnectMs, which only a pooled driver's first attempt (it connects) may carry. */
function withoutConnect(outcome: AttemptOutcome, mode: ConnectionMode, seq: number): AttemptOutcome {
  const { reconnectMs, ...rest } = outcome;
  if (reconnectMs !== undefined)
    assert.ok(
      mode === 'pooled' && seq === 0 && reconnectMs >= 0,
      `reconnectMs ${reconnectMs} at seq ${seq} (${mode})`,
    );
  return rest;
}

describe('PostgreSQL server identity and role', () => {
  for (const connectionMode of MODES) {
    it(`${connectionMode}: the primary answers writes and reads as writer, the standby reads as reader`, async () => {
      const primary = createProbeDriver(labEndpoint('postgresql', pgPrimary, { connectionMode }), 'identity');
      const standby = createProbeDriver(labEndpoint('postgresql', pgReplica, { connectionMode }), 'identity');
      await primary.setup(true);
      await standby.setup(false);
      try {
        for (let seq = 0; seq < 3; seq++) {
          const write = await primary.attempt('write', {
            seq: seq + (connectionMode === 'pooled' ? 100 : 0),
            clientMs: Date.now(),
          });
          assert.deepEqual(withoutConnect(write, connectionMode, seq), {
            class: 'ok',
            server: { id: '127.0.40.11:5432', addr: '127.0.40.11', role: 'writer' },
            connectAddr: '127.0.40.11',
          });
          const read = await standby.attempt('read', { seq, clientMs: Date.now() });
          assert.deepEqual(withoutConnect(read, connectionMode, seq), {
            class: 'ok',
            server: { id: '127.0.40.12:5432', addr: '127.0.40.12', role: 'reader' },
            connectAddr: '127.0.40.12',
          });
        }
        const refused = await standby.attempt('write', { seq: 1000, clientMs: Date.now() });
        assert.equal(refused.class, 'read_only');
        assert.equal(refused.code, '25006');
      } finally {
        await Promise.all([primary.close(), standby.close()]);
      }
    });
  }

  it('a pooled prober at 20 ms keeps one connection and writes rows that replicate to the standby', async () => {
    const samples: ProbeSample[] = [];
    const endpoint = labEndpoint('postgresql', pgPrimary, {
      connectionMode: 'pooled',
      intervalMs: 20,
      name: 'pooled-pg',
    });
    // Ticks the loaded machine's event loop reached too late are skipped (counted, not run).
    let skippedWrites = 0;
    const prober = new Prober({
      runId: 'identity-run',
      endpoint,
      sink: (s) => samples.push(s),
      onSkip: (kind) => {
        if (kind === 'write') skippedWrites++;
      },
    });
    await prober.setup();
    const before = Number(
      await pg.psqlLocal(
        pgPrimary,
        'SELECT count(*) FROM pg_stat_activity WHERE application_name = $$failwatch$$',
      ),
    );
    const startedAt = performance.now();
    prober.start();
    await sleep(500);
    const during = Number(
      await pg.psqlLocal(
        pgPrimary,
        'SELECT count(*) FROM pg_stat_activity WHERE application_name = $$failwatch$$',
      ),
    );
    const ranMs = performance.now() - startedAt;
    await prober.stop();

    const writes = samples.filter((s) => s.kind === 'write');
    const expected = Math.floor(ranMs / 20) + 1;
    // Every tick due is accounted for, an attempt or a skip, except those still waiting for a
    // late event loop when the prober stopped (at most its worst lag's worth of ticks).
    const lagMaxMs = prober.schedulers().get('write')!.stats().lag.maxMs;
    const counted = writes.length + skippedWrites;
    assert.ok(
      counted <= expected + 1 && counted >= expected - 1 - Math.ceil(lagMaxMs / 20),
      `${writes.length} writes and ${skippedWrites} skipped ticks in ${ranMs.toFixed(0)} ms at 20 ms (worst lag ${lagMaxMs} ms)`,
    );
    assert.equal(writes.filter((s) => s.class === 'ok').length, writes.length);
    assert.ok(samples.every((s) => s.server?.id === '127.0.40.11:5432' && s.server.role === 'writer'));
    assert.equal(before, 0);
    assert.ok(during >= 1 && during <= 4, `${during} pooled connections (write + read)`);

    await sleep(300); // streaming replication
    const rows = await readBackWrites(endpoint, 'identity-run', {
      from: { host: pgReplica.host, port: pgReplica.port },
    });
    assert.deepEqual(rows.map((r) => r.key).sort(), writes.map((s) => s.writeKey).sort());
    for (const row of rows) {
      const sample = writes.find((s) => s.writeKey === row.key)!;
      // The server stamped the row between the attempt's start and end (same machine clock).
      assert.ok(
        row.serverMs >= sample.startMs - 5 && row.serverMs <= sample.endMs + 5,
        `${row.key} stamped in its attempt`,
      );
    }
  });
});

describe('MariaDB server identity and role', () => {
  for (const connectionMode of MODES) {
    it(`${connectionMode}: the primary answers as writer, the read_only replica as reader`, async () => {
      const primary = createProbeDriver(labEndpoint('mysql', myPrimary, { connectionMode }), 'identity');
      const replica = createProbeDriver(labEndpoint('mysql', myReplica, { connectionMode }), 'identity');
      await primary.setup(true);
      try {
        for (let seq = 0; seq < 3; seq++) {
          const write = await primary.attempt('write', {
            seq: seq + (connectionMode === 'pooled' ? 100 : 0),
            clientMs: Date.now(),
          });
          assert.equal(write.class, 'ok', write.message);
          assert.equal(write.server?.role, 'writer');
          assert.match(write.server?.id ?? '', /:3306\/11$/);
          assert.equal(write.server?.addr, '127.0.41.11');
          const read = await replica.attempt('read', { seq, clientMs: Date.now() });
          assert.equal(read.class, 'ok', read.message);
          assert.equal(read.server?.role, 'reader');
          assert.match(read.server?.id ?? '', /:3306\/12$/);
          assert.equal(read.connectAddr, '127.0.41.12');
        }
      } finally {
        await Promise.all([primary.close(), replica.close()]);
      }
    });
  }

  it('reads back the rows written through the primary from the replica', async () => {
    const endpoint = labEndpoint('mysql', myPrimary, { name: 'my-cluster' });
    const driver = createProbeDriver(endpoint, 'my-run');
    await driver.setup(true);
    const started = Date.now();
    for (let seq = 0; seq < 5; seq++)
      assert.equal((await driver.attempt('write', { seq, clientMs: Date.now() })).class, 'ok');
    await driver.close();
    await maria.waitForGtid(myReplica, await maria.gtidCurrentPos(myPrimary), 10);
    const rows = await readBackWrites(endpoint, 'my-run', {
      from: { host: myReplica.host, port: myReplica.port },
    });
    assert.deepEqual(
      rows.map((r) => r.key),
      [0, 1, 2, 3, 4].map((seq) => `my-cluster#${seq}`),
    );
    for (const row of rows)
      assert.ok(Math.abs(row.serverMs - started) < 5000, 'server timestamps are epoch ms');
  });
});
