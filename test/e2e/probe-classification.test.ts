// Every class of the error taxonomy produced by a real PostgreSQL or MariaDB doing the real
// thing (or, for the network classes, by a real socket), classified by the probe drivers.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import pgDriver from 'pg';
import * as maria from '../../src/lab/mariadb.ts';
import * as pg from '../../src/lab/postgres.ts';
import { createProbeDriver } from '../../src/probe/sql-driver.ts';
import type { AttemptOutcome, ProbeDriver, ProbeEndpointConfig } from '../../src/probe/types.ts';
import { labEndpoint, mariaInstance, pgInstance, stopAll, TempDir } from '../helpers/probe-servers.ts';

const dir = new TempDir();
const primary = pgInstance(dir, 'pg1', '127.0.40.1');
const standby = pgInstance(dir, 'pg2', '127.0.40.2');
const myPrimary = mariaInstance(dir, 'my1', '127.0.41.1', 1);
const myReplica = mariaInstance(dir, 'my2', '127.0.41.2', 2);
const CLOSED_PG = { host: '127.0.40.9', port: 5432 };
const CLOSED_MY = { host: '127.0.41.9', port: 3306 };

let seq = 0;
const ctx = () => ({ seq: seq++, clientMs: Date.now() });
const drivers: ProbeDriver[] = [];
function driver(config: ProbeEndpointConfig): ProbeDriver {
  const d = createProbeDriver(config, 'classification');
  drivers.push(d);
  return d;
}
type Target = { host: string; port: number };
const pgDrv = (target: Target = primary, o: Partial<ProbeEndpointConfig> = {}) =>
  driver(labEndpoint('postgresql', target, o));
const myDrv = (target: Target = myPrimary, o: Partial<ProbeEndpointConfig> = {}) =>
  driver(labEndpoint('mysql', target, o));

async function timed(p: Promise<AttemptOutcome>): Promise<AttemptOutcome & { ms: number }> {
  const t0 = performance.now();
  const outcome = await p;
  return { ...outcome, ms: performance.now() - t0 };
}

/** A pg client of the lab user, for holding locks and connections. */
async function labClient(inst = primary): Promise<pgDriver.Client> {
  const c = new pgDriver.Client({
    host: inst.host,
    port: inst.port,
    user: pg.LAB_DB_USER,
    password: pg.LAB_DB_PASSWORD,
    database: pg.LAB_DB_NAME,
  });
  c.on('error', () => {});
  await c.connect();
  return c;
}

const failwatchPids = async (inst = primary) =>
  (
    await pg.psqlLocal(
      inst,
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'failwatch' ORDER BY backend_start",
    )
  )
    .split('\n')
    .filter(Boolean)
    .map(Number);

/** The backend pid of the one connection `opening` makes. */
async function newBackend(opening: () => Promise<unknown>, inst = primary): Promise<number> {
  const before = new Set(await failwatchPids(inst));
  await opening();
  const fresh = (await failwatchPids(inst)).filter((pid) => !before.has(pid));
  assert.equal(fresh.length, 1, `one new backend, got ${fresh.length}`);
  return fresh[0]!;
}

/** Connects fresh every few ms until `ok`, tallying classes; the attempts are real. */
async function hammer(d: ProbeDriver, limitMs: number): Promise<AttemptOutcome[]> {
  const seen: AttemptOutcome[] = [];
  const until = performance.now() + limitMs;
  while (performance.now() < until) {
    const o = await d.attempt('read', ctx());
    seen.push(o);
    if (o.class === 'ok') break;
    await sleep(2);
  }
  return seen;
}

let silentServer: Server;
const silentSockets: Socket[] = [];

before(async () => {
  silentServer = createServer((socket) => silentSockets.push(socket)); // accepts, never answers
  await new Promise<void>((resolve) => silentServer.listen(5432, '127.0.40.8', resolve));
  await Promise.all([
    (async () => {
      await pg.initPrimary(primary);
      await pg.initReplica(standby, primary);
      await pgDrv(primary).setup(true);
    })(),
    (async () => {
      await maria.initPrimary(myPrimary);
      await maria.initReplica(myReplica, myPrimary);
      await myDrv(myPrimary).setup(true);
    })(),
  ]);
});

after(async () => {
  await Promise.all(drivers.map((d) => d.close()));
  for (const s of silentSockets) s.destroy();
  silentServer.close();
  await stopAll([primary, standby], [myPrimary, myReplica]);
  dir.remove();
});

describe('PostgreSQL errors', () => {
  for (const connectionMode of ['fresh', 'pooled'] as const) {
    it(`read_only: a ${connectionMode} write to a hot standby is 25006`, async () => {
      await sleep(200); // the probe table has replicated
      const o = await pgDrv(standby, { connectionMode }).attempt('write', ctx());
      assert.equal(o.class, 'read_only');
      assert.equal(o.code, '25006');
      assert.match(o.message ?? '', /read-only transaction/);
    });
  }

  it('auth_error: a wrong password is 28P01', async () => {
    const o = await pgDrv(primary, { password: 'wrong' }).attempt('read', ctx());
    assert.deepEqual([o.class, o.code], ['auth_error', '28P01']);
    assert.match(o.message ?? '', /password authentication failed for user "failwatch"/);
  });

  it('too_many_connections: a role at its CONNECTION LIMIT gets 53300', async () => {
    await pg.psqlLocal(primary, 'ALTER ROLE failwatch CONNECTION LIMIT 1');
    const holder = await labClient();
    try {
      const o = await pgDrv().attempt('read', ctx());
      assert.deepEqual([o.class, o.code], ['too_many_connections', '53300']);
    } finally {
      await holder.end();
      await pg.psqlLocal(primary, 'ALTER ROLE failwatch CONNECTION LIMIT -1');
    }
    assert.equal((await pgDrv().attempt('read', ctx())).class, 'ok');
  });

  it('connection_refused: nothing listens on the address', async () => {
    const o = await timed(pgDrv(CLOSED_PG).attempt('read', ctx()));
    assert.deepEqual([o.class, o.code], ['connection_refused', 'ECONNREFUSED']);
    assert.ok(o.ms < 500, `refused in ${o.ms} ms`);
  });

  it('connect_timeout: a server that accepts and never answers is cut at the connect deadline', async () => {
    for (const connectionMode of ['fresh', 'pooled'] as const) {
      const o = await timed(
        pgDrv({ host: '127.0.40.8', port: 5432 }, { connectionMode, connectTimeoutMs: 300 }).attempt(
          'write',
          ctx(),
        ),
      );
      assert.equal(o.class, 'connect_timeout');
      assert.ok(o.ms >= 299 && o.ms < 800, `${connectionMode}: ended after ${o.ms} ms`);
    }
  });

  it('query_timeout: a write blocked by a table lock is cut at the query deadline, and the pooled connection replaced', async () => {
    const d = pgDrv(primary, { connectionMode: 'pooled', queryTimeoutMs: 400 });
    const before = await newBackend(async () => assert.equal((await d.attempt('write', ctx())).class, 'ok'));
    const locker = await labClient();
    await locker.query('BEGIN; LOCK TABLE failwatch_probe IN ACCESS EXCLUSIVE MODE');
    try {
      const o = await timed(d.attempt('write', ctx()));
      assert.equal(o.class, 'query_timeout');
      assert.ok(o.ms >= 399 && o.ms < 900, `ended after ${o.ms} ms`);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    const next = await d.attempt('write', ctx());
    assert.equal(next.class, 'ok');
    await sleep(100);
    const after = await failwatchPids();
    assert.ok(!after.includes(before), 'the timed-out connection was discarded, not reused');
  });

  it('admin_shutdown: pg_terminate_backend of an idle pooled connection shows on the next attempt, then it reconnects', async () => {
    const d = pgDrv(primary, { connectionMode: 'pooled' });
    const pid = await newBackend(async () => assert.equal((await d.attempt('read', ctx())).class, 'ok'));
    assert.equal(await pg.psqlLocal(primary, `SELECT pg_terminate_backend(${pid})`), 't');
    await sleep(100);
    const o = await d.attempt('read', ctx());
    assert.deepEqual([o.class, o.code], ['admin_shutdown', '57P01']);
    assert.match(o.message ?? '', /terminating connection due to administrator command/);
    const replacement = await newBackend(async () =>
      assert.equal((await d.attempt('read', ctx())).class, 'ok'),
    );
    assert.notEqual(replacement, pid);
  });

  it('admin_shutdown: pg_terminate_backend of a connection in the middle of a write', async () => {
    const d = pgDrv(primary, { connectionMode: 'pooled', queryTimeoutMs: 5000 });
    const pid = await newBackend(async () => assert.equal((await d.attempt('read', ctx())).class, 'ok'));
    const locker = await labClient();
    await locker.query('BEGIN; LOCK TABLE failwatch_probe IN ACCESS EXCLUSIVE MODE');
    const pending = timed(d.attempt('write', ctx()));
    await sleep(200);
    await pg.psqlLocal(primary, `SELECT pg_terminate_backend(${pid})`);
    const o = await pending;
    await locker.query('ROLLBACK');
    await locker.end();
    assert.deepEqual([o.class, o.code], ['admin_shutdown', '57P01']);
    assert.ok(o.ms >= 190 && o.ms < 3000, `failed after ${o.ms} ms, not at the deadline`);
  });

  it("connection_lost and crash_shutdown: kill -9 of one backend drops it and the postmaster's crash restart ends the others with 57P02", async () => {
    const victim = pgDrv(primary, { connectionMode: 'pooled', name: 'victim' });
    const bystander = pgDrv(primary, { connectionMode: 'pooled', name: 'bystander' });
    const victimPid = await newBackend(async () =>
      assert.equal((await victim.attempt('read', ctx())).class, 'ok'),
    );
    assert.equal((await bystander.attempt('read', ctx())).class, 'ok');
    process.kill(victimPid, 'SIGKILL');
    const fresh = hammer(pgDrv(primary), 20_000); // connects through the crash recovery
    await sleep(150);
    const lost = await victim.attempt('read', ctx());
    assert.equal(lost.class, 'connection_lost');
    assert.match(lost.message ?? '', /Connection terminated unexpectedly/);
    const crashed = await bystander.attempt('read', ctx());
    assert.deepEqual([crashed.class, crashed.code], ['crash_shutdown', '57P02']);
    assert.match(crashed.message ?? '', /crash of another server process/);
    const seen = await fresh;
    assert.equal(seen.at(-1)?.class, 'ok', 'the server came back');
    assert.equal((await bystander.attempt('read', ctx())).class, 'ok');
  });

  it('starting_up: connections while PostgreSQL replays WAL after an immediate stop get 57P03', async () => {
    await pg.psqlLocal(
      primary,
      'CREATE TABLE IF NOT EXISTS filler AS SELECT g, md5(g::text) AS t FROM generate_series(1, 600000) g',
      'app',
    );
    await pg.stop(primary, 'immediate');
    const d = pgDrv(primary);
    await pg.startNoWait(primary);
    const seen = await hammer(d, 60_000);
    const startingUp = seen.filter((o) => o.class === 'starting_up');
    assert.ok(startingUp.length >= 1, `57P03 seen ${startingUp.length} times`);
    assert.ok(startingUp.every((o) => o.code === '57P03'));
    assert.ok(startingUp.some((o) => /starting up|not yet accepting connections/.test(o.message ?? '')));
    assert.equal(seen.at(-1)?.class, 'ok');
    assert.ok(seen.every((o) => ['starting_up', 'connection_refused', 'ok'].includes(o.class)));
    await pg.psqlLocal(primary, 'DROP TABLE filler', 'app');
  });

  it('starting_up: new connections during a smart shutdown get 57P03 "shutting down"', async () => {
    const holder = await labClient();
    const stopping = pg.stop(primary, 'smart');
    await sleep(300);
    const o = await pgDrv().attempt('read', ctx());
    await holder.end();
    await stopping;
    await pg.start(primary);
    assert.deepEqual([o.class, o.code], ['starting_up', '57P03']);
    assert.match(o.message ?? '', /shutting down/);
  });

  it('admin_shutdown then connection_refused: a fast shutdown under a pooled prober', async () => {
    const d = pgDrv(primary, { connectionMode: 'pooled' });
    assert.equal((await d.attempt('read', ctx())).class, 'ok');
    await pg.stop(primary, 'fast');
    const first = await d.attempt('read', ctx());
    const second = await d.attempt('read', ctx());
    await pg.start(primary);
    const third = await d.attempt('read', ctx());
    assert.deepEqual([first.class, first.code], ['admin_shutdown', '57P01']);
    assert.deepEqual([second.class, second.code], ['connection_refused', 'ECONNREFUSED']);
    assert.equal(third.class, 'ok');
  });

  it('admin_shutdown: an immediate stop tells pooled connections "immediate shutdown" (57P01)', async () => {
    const d = pgDrv(primary, { connectionMode: 'pooled' });
    assert.equal((await d.attempt('read', ctx())).class, 'ok');
    await pg.stop(primary, 'immediate');
    const o = await d.attempt('read', ctx());
    await pg.start(primary);
    assert.deepEqual([o.class, o.code], ['admin_shutdown', '57P01']);
    assert.match(o.message ?? '', /immediate shutdown/);
  });

  it('tls_error: TLS required by the client, not offered by the server', async () => {
    const o = await pgDrv(primary, { tls: { mode: 'require' } }).attempt('read', ctx());
    assert.equal(o.class, 'tls_error');
    assert.equal(o.message, 'The server does not support SSL connections');
  });
});

describe('errors before any database answers', () => {
  it('dns_error: a name that does not resolve', async () => {
    const o = await pgDrv({ host: 'no-such-endpoint.invalid', port: 5432 }).attempt('read', ctx());
    assert.equal(o.class, 'dns_error');
    assert.ok(['ENOTFOUND', 'EAI_AGAIN'].includes(o.code ?? ''), o.code);
  });

  it('dns_error: the configured DNS server is down', async () => {
    const o = await pgDrv(
      { host: 'cluster.example.test', port: 5432 },
      { dnsServer: '127.0.40.9:5399' },
    ).attempt('read', ctx());
    assert.deepEqual([o.class, o.code], ['dns_error', 'ECONNREFUSED']);
  });

  it('dns_error: the configured DNS server does not answer within the connect deadline', async () => {
    const silentDns = createSocket('udp4');
    await new Promise<void>((resolve) => silentDns.bind(5399, '127.0.40.8', resolve));
    try {
      const d = pgDrv(
        { host: 'cluster.example.test', port: 5432 },
        { dnsServer: '127.0.40.8:5399', connectTimeoutMs: 300 },
      );
      const o = await timed(d.attempt('read', ctx()));
      assert.equal(o.class, 'dns_error', o.message);
      assert.ok(o.ms >= 299 && o.ms < 800, `${o.ms} ms`);
    } finally {
      silentDns.close();
    }
  });
});

describe('MariaDB errors', () => {
  it('read_only: a write to a read_only replica without SUPER is 1290', async () => {
    await maria.waitForGtid(myReplica, await maria.gtidCurrentPos(myPrimary), 10);
    for (const connectionMode of ['fresh', 'pooled'] as const) {
      const o = await myDrv(myReplica, { connectionMode }).attempt('write', ctx());
      assert.deepEqual([o.class, o.code], ['read_only', 'ER_OPTION_PREVENTS_STATEMENT']);
      assert.match(o.message ?? '', /--read-only/);
    }
  });

  it('auth_error: a wrong password is 1045', async () => {
    const o = await myDrv(myPrimary, { password: 'wrong' }).attempt('read', ctx());
    assert.deepEqual([o.class, o.code], ['auth_error', 'ER_ACCESS_DENIED_ERROR']);
  });

  it('too_many_connections: a user at MAX_USER_CONNECTIONS', async () => {
    await maria.sqlLocal(myPrimary, "ALTER USER 'failwatch'@'%' WITH MAX_USER_CONNECTIONS 1");
    const holder = myDrv(myPrimary, { connectionMode: 'pooled' });
    try {
      assert.equal((await holder.attempt('read', ctx())).class, 'ok');
      const o = await myDrv().attempt('read', ctx());
      assert.deepEqual([o.class, o.code], ['too_many_connections', 'ER_USER_LIMIT_REACHED']);
    } finally {
      await holder.close();
      await maria.sqlLocal(myPrimary, "ALTER USER 'failwatch'@'%' WITH MAX_USER_CONNECTIONS 0");
    }
  });

  it('connection_refused and connect_timeout', async () => {
    const refused = await myDrv(CLOSED_MY).attempt('read', ctx());
    assert.deepEqual([refused.class, refused.code], ['connection_refused', 'ECONNREFUSED']);
    const silent = await timed(
      myDrv({ host: '127.0.40.8', port: 5432 }, { connectTimeoutMs: 300 }).attempt('read', ctx()),
    );
    assert.equal(silent.class, 'connect_timeout');
    assert.ok(silent.ms >= 299 && silent.ms < 800, `${silent.ms} ms`);
  });

  it('query_timeout: a write blocked by LOCK TABLES is cut at the query deadline', async () => {
    const locker = await mysql.createConnection({
      host: myPrimary.host,
      port: myPrimary.port,
      user: pg.LAB_DB_USER,
      password: pg.LAB_DB_PASSWORD,
      database: pg.LAB_DB_NAME,
    });
    await locker.query('LOCK TABLES failwatch_probe WRITE');
    try {
      const o = await timed(
        myDrv(myPrimary, { connectionMode: 'pooled', queryTimeoutMs: 400 }).attempt('write', ctx()),
      );
      assert.equal(o.class, 'query_timeout');
      assert.ok(o.ms >= 399 && o.ms < 900, `${o.ms} ms`);
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
    }
  });

  // MariaDB closes a killed connection without an error packet (no ER_CONNECTION_KILLED).
  it('connection_lost: KILL CONNECTION of a connection in the middle of a write', async () => {
    const d = myDrv(myPrimary, { connectionMode: 'pooled', queryTimeoutMs: 5000 });
    assert.equal((await d.attempt('read', ctx())).class, 'ok');
    const locker = await mysql.createConnection({
      host: myPrimary.host,
      port: myPrimary.port,
      user: pg.LAB_DB_USER,
      password: pg.LAB_DB_PASSWORD,
      database: pg.LAB_DB_NAME,
    });
    await locker.query('LOCK TABLES failwatch_probe WRITE');
    const pending = timed(d.attempt('write', ctx()));
    await sleep(200);
    const id = await maria.sqlLocal(
      myPrimary,
      "SELECT id FROM information_schema.processlist WHERE user = 'failwatch' AND info LIKE 'INSERT%'",
    );
    await maria.sqlLocal(myPrimary, `KILL CONNECTION ${id}`);
    const o = await pending;
    await locker.query('UNLOCK TABLES');
    await locker.end();
    assert.deepEqual([o.class, o.code], ['connection_lost', 'PROTOCOL_CONNECTION_LOST']);
    assert.ok(o.ms >= 190 && o.ms < 3000, `failed after ${o.ms} ms, not at the deadline`);
  });

  it('connection_lost: mariadbd killed under a pooled prober, then connection_refused', async () => {
    const d = myDrv(myPrimary, { connectionMode: 'pooled' });
    assert.equal((await d.attempt('write', ctx())).class, 'ok');
    await maria.stop(myPrimary, 'immediate');
    await sleep(50);
    const lost = await d.attempt('write', ctx());
    const refused = await d.attempt('write', ctx());
    await maria.start(myPrimary, { readOnly: false });
    assert.equal(lost.class, 'connection_lost');
    assert.ok(['PROTOCOL_CONNECTION_LOST', 'ECONNRESET'].includes(lost.code ?? ''), lost.code);
    assert.deepEqual([refused.class, refused.code], ['connection_refused', 'ECONNREFUSED']);
    assert.equal((await d.attempt('write', ctx())).class, 'ok');
  });

  it('tls_error: TLS required by the client, not offered by the server', async () => {
    const o = await myDrv(myPrimary, { tls: { mode: 'require' } }).attempt('read', ctx());
    assert.deepEqual([o.class, o.code], ['tls_error', 'HANDSHAKE_NO_SSL_SUPPORT']);
  });
});
