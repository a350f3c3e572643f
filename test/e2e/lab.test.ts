// The lab with real processes, driven the way users drive it: the CLI, the real
// @aws-sdk/client-rds against the lab's RDS endpoint, real database clients.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tls from 'node:tls';
import {
  DBClusterNotFoundFault,
  DescribeDBClustersCommand,
  DescribeEventsCommand,
  FailoverDBClusterCommand,
  InvalidDBClusterStateFault,
  RDSClient,
} from '@aws-sdk/client-rds';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { LabState } from '../../src/lab/control.ts';
import { labResolver } from '../../src/lab/dns.ts';
import { LAB_DB_NAME, LAB_DB_PASSWORD, LAB_DB_USER } from '../../src/lab/postgres.ts';
import { failwatch, listenersWithPrefix, processesMentioning } from '../helpers/cli.ts';

const BASE = '127.0.70';
const parent = mkdtempSync(join(tmpdir(), 'fw-lab-e2e-'));
chmodSync(parent, 0o755);
const dir = join(parent, 'lab');
const labArgs = ['--dir', dir];
let state: LabState;
let rds: RDSClient;

function readState(): LabState {
  return JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as LabState;
}

async function waitAvailable(clusterId: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId }));
    if (out.DBClusters?.[0]?.Status === 'available') return;
    await sleep(100);
  }
  throw new Error(`${clusterId} not available after ${timeoutMs} ms`);
}

async function writerOf(clusterId: string): Promise<string> {
  const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId }));
  return out.DBClusters![0]!.DBClusterMembers!.find((m) => m.IsClusterWriter)!.DBInstanceIdentifier!;
}

/** A client as users make it: TLS checked against the lab CA (the lab refuses plain text). */
function pgClient(host: string, port: number, tls = true): pg.Client {
  return new pg.Client({
    host,
    port,
    user: LAB_DB_USER,
    password: LAB_DB_PASSWORD,
    database: LAB_DB_NAME,
    connectionTimeoutMillis: 2000,
    ssl: tls ? { ca: readFileSync(state.tls.caFile!, 'utf8') } : false,
  });
}

async function pgQuery<T extends pg.QueryResultRow>(host: string, port: number, sql: string): Promise<T[]> {
  const c = pgClient(host, port);
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end().catch(() => {});
  }
}

async function resolveEndpoint(name: string): Promise<string> {
  const [addr] = await labResolver(state.dns).resolve4(name);
  return addr!;
}

describe('failwatch lab (PostgreSQL and MariaDB clusters, fast profile)', { timeout: 600_000 }, () => {
  let upSeconds = 0;

  before(async () => {
    const up = await failwatch([
      'lab',
      'up',
      ...labArgs,
      '--profile',
      'fast',
      '--address-base',
      BASE,
      '--dns-port',
      '10353',
      '--api-port',
      '10380',
    ]);
    assert.equal(up.code, 0, up.stderr);
    upSeconds = Number(/lab up took ([\d.]+) s/.exec(up.stdout)?.[1]);
    state = readState();
    rds = new RDSClient({
      endpoint: state.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    });
  });

  after(async () => {
    const down = await failwatch(['lab', 'down', ...labArgs]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(processesMentioning(dir), [], 'no process of the lab survives `lab down`');
    assert.deepEqual(listenersWithPrefix(`${BASE}.`), [], 'no listening socket survives `lab down`');
    assert.equal(existsSync(dir), false, 'the lab directory is removed');
  });

  it('comes up with both clusters in under 60 s', () => {
    console.log(`lab up (2 clusters, 1 reader each, proxy, DNS, RDS API): ${upSeconds} s`);
    assert.ok(upSeconds > 0 && upSeconds < 60, `lab up took ${upSeconds} s`);
    assert.deepEqual(
      state.clusters.map((c) => [c.id, c.engine, c.writerId, c.instances.length]),
      [
        ['lab-pg', 'aurora-postgresql', 'lab-pg-1', 2],
        ['lab-my', 'aurora-mysql', 'lab-my-1', 2],
      ],
    );
  });

  it('speaks TLS like RDS: plain text refused by PostgreSQL and the proxy, verify-full on names and addresses', async () => {
    assert.equal(state.tls.caFile, join(dir, 'tls', 'ca.crt'));
    const pgc = state.clusters[0]!;
    const writer = pgc.instances[0]!;
    const proxy = pgc.proxy!;
    const ca = readFileSync(state.tls.caFile!, 'utf8');
    for (const [host, port] of [
      [writer.host, writer.port],
      [proxy.host, proxy.port],
    ] as const) {
      const plain = pgClient(host, port, false);
      await assert.rejects(
        plain.connect(),
        /pg_hba\.conf|SSL required/,
        `${host}:${port} refuses plain text`,
      );
      await plain.end().catch(() => {});
    }
    // By address (the certificate names it) and by name, dialling the resolved address.
    assert.deepEqual(
      await pgQuery(writer.host, writer.port, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'),
      [{ ssl: true }],
    );
    const byName = new pg.Client({
      host: await resolveEndpoint(pgc.endpoint),
      port: pgc.port,
      user: LAB_DB_USER,
      password: LAB_DB_PASSWORD,
      database: LAB_DB_NAME,
      ssl: {
        ca,
        servername: pgc.endpoint,
        checkServerIdentity: (_h, cert) => tls.checkServerIdentity(pgc.endpoint, cert),
      },
    });
    await byName.connect();
    assert.equal((await byName.query('SELECT 1 AS one')).rows[0].one, 1);
    await byName.end();
    // Through the proxy, which verifies the servers with verify-full against the lab CA.
    assert.deepEqual(await pgQuery(proxy.host, proxy.port, 'SELECT 1 AS one'), [{ one: 1 }]);
    // The alias is not in the certificate: verify-full fails on it.
    const alias = new pg.Client({
      host: await resolveEndpoint(pgc.aliasEndpoint!),
      port: pgc.port,
      user: LAB_DB_USER,
      password: LAB_DB_PASSWORD,
      database: LAB_DB_NAME,
      ssl: {
        ca,
        checkServerIdentity: (_h, cert) => tls.checkServerIdentity(pgc.aliasEndpoint!, cert),
      },
    });
    alias.on('error', () => {});
    await assert.rejects(alias.connect(), /altnames/);
    await alias.end().catch(() => {});
    // MariaDB: TLS offered and verified (required only with --require-secure-transport).
    const my = state.clusters[1]!;
    const c = await mysql.createConnection({
      host: my.instances[0]!.host,
      port: my.port,
      user: LAB_DB_USER,
      password: LAB_DB_PASSWORD,
      database: LAB_DB_NAME,
      ssl: { ca, rejectUnauthorized: true },
    });
    const [rows] = await c.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
    c.destroy();
    assert.match((rows as { Value: string }[])[0]!.Value, /TLSv1\.[23]/);
  });

  it('fails over through the RDS API: the writer moves, both events come back, a second call is refused', async () => {
    const proxy = state.clusters[0]!.proxy!;
    // A persistent client connection through the proxy, busy during the whole failover.
    const held = pgClient(proxy.host, proxy.port);
    await held.connect();
    let okQueries = 0;
    let failedQueries = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          await held.query('SELECT 1');
          okQueries++;
        } catch {
          failedQueries++;
        }
        await sleep(50);
      }
    })();

    const t0 = new Date(Date.now() - 1000);
    assert.equal(await writerOf('lab-pg'), 'lab-pg-1');
    const out = await rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: 'lab-pg' }));
    assert.equal(out.DBCluster?.Status, 'failing-over');
    await assert.rejects(
      rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: 'lab-pg' })),
      (err) => err instanceof InvalidDBClusterStateFault,
    );
    await assert.rejects(
      rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: 'no-such-cluster' })),
      (err) => err instanceof DBClusterNotFoundFault,
    );
    await waitAvailable('lab-pg');
    assert.equal(await writerOf('lab-pg'), 'lab-pg-2');

    const events = await rds.send(
      new DescribeEventsCommand({ SourceType: 'db-cluster', SourceIdentifier: 'lab-pg', StartTime: t0 }),
    );
    const messages = events.Events!.map((e) => e.Message);
    assert.deepEqual(messages, [
      'Started cross AZ failover to DB instance: lab-pg-2',
      'Completed failover to DB instance: lab-pg-2',
    ]);

    // The cluster endpoint now names the new writer, and a write through it lands there.
    const newWriter = state.clusters[0]!.instances[1]!;
    const oldWriter = state.clusters[0]!.instances[0]!;
    const clusterAddr = await resolveEndpoint(state.clusters[0]!.endpoint);
    assert.equal(clusterAddr, newWriter.host);
    await pgQuery(
      clusterAddr,
      5432,
      'CREATE TABLE IF NOT EXISTS lab_check (id int primary key, at timestamptz default now())',
    );
    const [landed] = await pgQuery<{ addr: string }>(
      clusterAddr,
      5432,
      'INSERT INTO lab_check (id) VALUES (1) RETURNING host(inet_server_addr()) AS addr',
    );
    assert.equal(landed!.addr, newWriter.host);
    // The old writer is a working replica of the new one.
    let replicated = 0;
    for (let i = 0; i < 50 && replicated === 0; i++) {
      const rows = await pgQuery<{ n: string }>(
        oldWriter.host,
        5432,
        'SELECT count(*) AS n FROM lab_check WHERE id = 1',
      ).catch(() => [{ n: '0' }]);
      replicated = Number(rows[0]!.n);
      if (replicated === 0) await sleep(100);
    }
    assert.equal(replicated, 1);
    const [role] = await pgQuery<{ r: boolean }>(oldWriter.host, 5432, 'SELECT pg_is_in_recovery() AS r');
    assert.equal(role!.r, true);

    // The proxy connection survived and now reaches the new writer.
    running = false;
    await loop;
    const [via] = (await held.query<{ addr: string }>('SELECT host(inet_server_addr()) AS addr')).rows;
    await held.end();
    console.log(`proxy connection during failover: ${okQueries} ok, ${failedQueries} failed`);
    assert.equal(via!.addr, newWriter.host);
    assert.ok(okQueries > 20, `${okQueries} queries went through`);
    assert.ok(failedQueries <= 1, `${failedQueries} queries failed on the held proxy connection`);
  });

  it('runs ten failovers in a row on each engine with no committed row lost', async () => {
    const [pgResult, myResult] = await Promise.all([tenFailovers('lab-pg'), tenFailovers('lab-my')]);
    for (const r of [pgResult, myResult]) {
      console.log(`${r.cluster}: 10 failovers, ${r.acknowledged} acknowledged writes, ${r.missing} missing`);
      assert.equal(r.failovers, 10);
      assert.ok(r.acknowledged > 50, `${r.acknowledged} writes acknowledged`);
      assert.equal(r.missing, 0);
    }
  });

  it('reports an unknown cluster in one line with a non-zero exit', async () => {
    const r = await failwatch(['lab', 'failover', ...labArgs, '--cluster', 'nope']);
    assert.equal(r.code, 3);
    assert.match(
      r.stderr.trim(),
      /^failwatch: failover refused: DBClusterNotFoundFault: DBCluster nope not found\.$/,
    );
  });

  it('refuses a second lab in the same directory', async () => {
    const r = await failwatch(['lab', 'up', ...labArgs]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /already running .* run `failwatch lab down` first/);
  });
});

interface TenResult {
  cluster: string;
  failovers: number;
  acknowledged: number;
  missing: number;
}

/** Fails a cluster over ten times while a client writes through the cluster endpoint. */
async function tenFailovers(clusterId: string): Promise<TenResult> {
  const cluster = state.clusters.find((c) => c.id === clusterId)!;
  const isPg = cluster.engine === 'aurora-postgresql';
  const acked: number[] = [];
  let nextId = 1;
  let running = true;
  const write = async (host: string, id: number): Promise<void> => {
    if (isPg) await pgQuery(host, 5432, `INSERT INTO ten (id) VALUES (${id})`);
    else {
      const c = await mysql.createConnection({
        host,
        port: 3306,
        user: LAB_DB_USER,
        password: LAB_DB_PASSWORD,
        database: LAB_DB_NAME,
        connectTimeout: 2000,
      });
      try {
        await c.query(`INSERT INTO ten (id) VALUES (${id})`);
      } finally {
        c.destroy();
      }
    }
  };
  const read = async (host: string): Promise<number[]> => {
    if (isPg) return (await pgQuery<{ id: number }>(host, 5432, 'SELECT id FROM ten')).map((r) => r.id);
    const c = await mysql.createConnection({
      host,
      port: 3306,
      user: LAB_DB_USER,
      password: LAB_DB_PASSWORD,
      database: LAB_DB_NAME,
    });
    try {
      const [rows] = await c.query('SELECT id FROM ten');
      return (rows as { id: number }[]).map((r) => r.id);
    } finally {
      c.destroy();
    }
  };
  const firstWriter = cluster.instances.find(
    (i) => i.id === readState().clusters.find((c) => c.id === clusterId)!.writerId,
  )!;
  if (isPg) await pgQuery(firstWriter.host, 5432, 'CREATE TABLE IF NOT EXISTS ten (id int primary key)');
  else {
    const c = await mysql.createConnection({
      host: firstWriter.host,
      port: 3306,
      user: LAB_DB_USER,
      password: LAB_DB_PASSWORD,
      database: LAB_DB_NAME,
    });
    await c.query('CREATE TABLE IF NOT EXISTS ten (id int primary key)');
    c.destroy();
  }
  const writer = (async () => {
    while (running) {
      const id = nextId++;
      try {
        await write(await resolveEndpoint(cluster.endpoint), id);
        acked.push(id);
      } catch {}
      await sleep(20);
    }
  })();
  let failovers = 0;
  for (let i = 0; i < 10; i++) {
    await rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: clusterId }));
    await waitAvailable(clusterId, 120_000);
    failovers++;
  }
  running = false;
  await writer;
  const finalWriter = readState().clusters.find((c) => c.id === clusterId)!;
  const host = finalWriter.instances.find((i) => i.id === finalWriter.writerId)!.host;
  const present = new Set(await read(host));
  return {
    cluster: clusterId,
    failovers,
    acknowledged: acked.length,
    missing: acked.filter((id) => !present.has(id)).length,
  };
}
