// The AWS Advanced NodeJS Wrapper stack without a database: the spec's rules (the same as the
// CRD's CEL, which iam-crd.test.ts checks on a real apiserver), what reaches the wrapper, how
// its errors are classed, the bounded pool its clients live in, and the lab's topology SQL.
// run-lab-client-stacks.test.ts runs it against the lab.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateExperimentManifest } from '../../src/api/validate-experiment.ts';
import { probeConfigFor, WRAPPER_FAILOVER_TIMEOUT_MS } from '../../src/engine/endpoint-config.ts';
import { auroraPgTopologySql } from '../../src/lab/aurora-topology.ts';
import type { DbSession } from '../../src/probe/db-session.ts';
import { DeadlineError } from '../../src/probe/deadline.ts';
import { HostResolver } from '../../src/probe/resolve-host.ts';
import { BoundedPooledSessions } from '../../src/probe/session-source.ts';
import {
  classifyWrapperError,
  isRecoverableWrapperError,
  resolvingLookup,
  wrapperProperties,
} from '../../src/probe/wrapper-session.ts';

type Doc = any;

// The wrapper's own error classes (its type declarations do not resolve under nodenext).
type ErrorClass = new (message?: string) => Error;
const { FailoverFailedError, FailoverSuccessError } = (await import(
  'aws-advanced-nodejs-wrapper'
)) as unknown as {
  FailoverFailedError: ErrorClass;
  FailoverSuccessError: ErrorClass;
};

function manifest(endpoint: Record<string, unknown> = {}): Doc {
  return {
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverExperiment',
    metadata: { name: 'stacks' },
    spec: {
      trigger: { type: 'none' },
      endpoints: [
        {
          name: 'cluster-wrapper',
          dialect: 'aurora-postgresql',
          host: 'orders.cluster-abc.us-east-1.rds.amazonaws.com',
          database: 'app',
          connectionMode: 'pooled',
          credentials: { username: 'probe', passwordEnv: 'PGPASSWORD' },
          client: { stack: 'aws-advanced-nodejs-wrapper' },
          ...endpoint,
        },
      ],
    },
  };
}

const errors = (doc: Doc) => {
  const r = validateExperimentManifest(doc);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
};

describe('client in the spec', () => {
  it('defaults to the plain driver, and maps the wrapper settings for the prober', () => {
    const plain = validateExperimentManifest(manifest({ client: undefined }));
    assert.ok(plain.ok);
    assert.deepEqual(plain.value.spec.endpoints[0]!.client, { stack: 'driver' });
    assert.equal(
      probeConfigFor(plain.value.spec.endpoints[0]!, { user: 'u', password: 'p' }).wrapper,
      undefined,
    );

    const r = validateExperimentManifest(
      manifest({
        client: {
          stack: 'aws-advanced-nodejs-wrapper',
          plugins: ['failover2', 'efm2'],
          clusterInstanceHostPattern: '?.abc.us-east-1.rds.amazonaws.com',
          failoverTimeout: '45s',
        },
      }),
    );
    assert.ok(r.ok, JSON.stringify(r.ok ? '' : r.errors));
    assert.deepEqual(probeConfigFor(r.value.spec.endpoints[0]!, { user: 'u', password: 'p' }).wrapper, {
      plugins: ['failover2', 'efm2'],
      clusterInstanceHostPattern: '?.abc.us-east-1.rds.amazonaws.com',
      failoverTimeoutMs: 45_000,
    });
    const bare = validateExperimentManifest(manifest());
    assert.ok(bare.ok);
    assert.deepEqual(probeConfigFor(bare.value.spec.endpoints[0]!, { user: 'u', password: 'p' }).wrapper, {
      failoverTimeoutMs: WRAPPER_FAILOVER_TIMEOUT_MS,
    });
  });

  it('refuses each misuse at its field, with what to do', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ connectionMode: 'fresh' }, /^spec\.endpoints\[0\]\.connectionMode: .*set connectionMode: pooled/],
      [
        { dialect: 'postgresql' },
        /^spec\.endpoints\[0\]\.client\.stack: .*aurora-postgresql or aurora-mysql/,
      ],
      [{ interval: '50ms' }, /^spec\.endpoints\[0\]\.interval: .*100ms or slower/],
      [{ role: 'proxy' }, /^spec\.endpoints\[0\]\.role: .*use role cluster or custom/],
      [
        { credentials: { iam: { username: 'probe', region: 'us-east-1' } }, tls: { mode: 'require' } },
        /^spec\.endpoints\[0\]\.credentials\.iam: .*password Secret/,
      ],
      [{ client: { plugins: ['failover2'] } }, /^spec\.endpoints\[0\]\.client: .*configure the wrapper/],
      [
        { client: { stack: 'aws-advanced-nodejs-wrapper', plugins: ['secretsManager'] } },
        /^spec\.endpoints\[0\]\.client\.plugins\[0\]/,
      ],
      [
        { client: { stack: 'aws-advanced-nodejs-wrapper', clusterInstanceHostPattern: 'http://evil/?' } },
        /^spec\.endpoints\[0\]\.client\.clusterInstanceHostPattern/,
      ],
      [
        { client: { stack: 'aws-advanced-nodejs-wrapper', failoverTimeout: '10m' } },
        /^spec\.endpoints\[0\]\.client\.failoverTimeout: .*at most 5m/,
      ],
    ];
    for (const [edit, message] of cases) {
      const found = errors(manifest(edit));
      assert.ok(
        found.some((e) => message.test(e)),
        `${JSON.stringify(edit)}: ${JSON.stringify(found)}`,
      );
    }
  });
});

describe('what reaches the wrapper', () => {
  const target = {
    host: 'lab-pg.cluster-cfwlab0.lab.failwatch.local',
    connectHost: '127.0.10.11',
    port: 5432,
    database: 'app',
    user: 'failwatch',
    password: 'secret',
  };

  it('the configured name (not the resolved address), the Aurora PostgreSQL dialect and the settings', () => {
    assert.deepEqual(
      wrapperProperties(
        target,
        {
          plugins: ['failover2', 'efm2'],
          clusterInstanceHostPattern: '?.cfwlab0.lab.failwatch.local',
          failoverTimeoutMs: 30_000,
        },
        { connectTimeoutMs: 1000, queryTimeoutMs: 2000 },
      ),
      {
        host: 'lab-pg.cluster-cfwlab0.lab.failwatch.local',
        port: 5432,
        database: 'app',
        user: 'failwatch',
        password: 'secret',
        application_name: 'failwatch',
        dialect: 'aurora-pg',
        clusterId: 'lab-pg.cluster-cfwlab0.lab.failwatch.local:5432',
        wrapperConnectTimeout: 1000,
        wrapperQueryTimeout: 2000,
        failoverTimeoutMs: 30_000,
        plugins: 'failover2,efm2',
        clusterInstanceHostPattern: '?.cfwlab0.lab.failwatch.local',
      },
    );
  });

  it("leaves the plugins to the wrapper's default when none are named", () => {
    const p = wrapperProperties(
      target,
      { failoverTimeoutMs: 5000 },
      { connectTimeoutMs: 1000, queryTimeoutMs: 1000 },
    );
    assert.equal('plugins' in p, false);
    assert.equal('clusterInstanceHostPattern' in p, false);
  });
});

describe('how the wrapper resolves names', () => {
  const lookup = (resolver: HostResolver, host: string, all: boolean) =>
    new Promise<{ err: Error | null; address: unknown }>((resolve) =>
      resolvingLookup(resolver)(host, { all }, (err, address) => resolve({ err, address })),
    );

  it('without a DNS server of its own: the system resolver (an RDS name in a VPC)', async () => {
    const r = await lookup(new HostResolver(undefined, 1000), 'localhost', false);
    assert.equal(r.err, null);
    assert.match(String(r.address), /^(127\.0\.0\.1|::1)$/);
    const all = await lookup(new HostResolver(undefined, 1000), 'localhost', true);
    assert.ok(Array.isArray(all.address) && all.address.length > 0, JSON.stringify(all));
  });

  it("an address is dialled as it is; a DNS server that does not answer is the endpoint's dns_error", async () => {
    const r = await lookup(new HostResolver('127.0.0.1:9', 500), '127.0.10.11', true);
    assert.deepEqual(r.address, [{ address: '127.0.10.11', family: 4 }]);
    const down = await lookup(
      new HostResolver('127.0.0.1:9', 500),
      'lab-pg-1.cfwlab0.lab.failwatch.local',
      false,
    );
    assert.equal(down.err?.name, 'HostResolutionError');
  });
});

describe("the wrapper's errors", () => {
  it('FailoverSuccessError: the call failed (connection_lost), the client is kept on its new connection', () => {
    const err = new FailoverSuccessError();
    const c = classifyWrapperError(err);
    assert.deepEqual([c.class, c.code], ['connection_lost', 'FailoverSuccessError']);
    assert.match(c.message, /The active SQL connection has changed due to a connection failure/);
    assert.equal(isRecoverableWrapperError(err), true);
  });

  it('FailoverFailedError: connection_lost, the client is dropped', () => {
    const err = new FailoverFailedError('Unable to establish SQL connection to writer instance.');
    assert.equal(classifyWrapperError(err).class, 'connection_lost');
    assert.equal(classifyWrapperError(err).code, 'FailoverFailedError');
    assert.equal(isRecoverableWrapperError(err), false);
  });

  it("the MySQL client's AwsWrapperError is classed by the driver error it carries", async () => {
    const { AwsWrapperError } = (await import('aws-advanced-nodejs-wrapper')) as unknown as {
      AwsWrapperError: new (message: string, cause?: unknown) => Error;
    };
    const { wrapperErrorClassifier } = await import('../../src/probe/wrapper-session.ts');
    const { classifyMysqlError, isRecoverableMysqlError } = await import('../../src/probe/classify-mysql.ts');
    const mysql = wrapperErrorClassifier(classifyMysqlError, isRecoverableMysqlError);
    const cause = Object.assign(new Error('The MariaDB server is running with the --read-only option'), {
      code: 'ER_OPTION_PREVENTS_STATEMENT',
      errno: 1290,
      sqlState: 'HY000',
    });
    const err = new AwsWrapperError(cause.message, cause);
    assert.deepEqual(
      [mysql.classify(err).class, mysql.classify(err).code],
      ['read_only', 'ER_OPTION_PREVENTS_STATEMENT'],
    );
  });

  it("node-postgres's own errors keep their classes", () => {
    const readOnly = Object.assign(new Error('cannot execute INSERT in a read-only transaction'), {
      code: '25006',
      severity: 'ERROR',
    });
    assert.equal(classifyWrapperError(readOnly).class, 'read_only');
    assert.equal(isRecoverableWrapperError(readOnly), true);
    assert.equal(
      classifyWrapperError(new Error('Connection terminated unexpectedly')).class,
      'connection_lost',
    );
  });
});

class FakeSession implements DbSession {
  connectAddr = '127.0.0.1';
  dead = false;
  deathCause = undefined;
  destroyed = false;
  closed = false;
  readonly n: number;
  constructor(n: number) {
    this.n = n;
  }
  explain(err: unknown) {
    return err;
  }
  destroy() {
    this.destroyed = true;
    this.dead = true;
  }
  async close() {
    this.closed = true;
  }
}

describe('BoundedPooledSessions: an application pool of at most N clients', () => {
  function pool(maxOpen: number, deadlineMs = 1000) {
    let opened = 0;
    const source = new BoundedPooledSessions<FakeSession>(
      async () => new FakeSession(++opened),
      deadlineMs,
      maxOpen,
    );
    return { source, opened: () => opened };
  }
  const sessionOf = (a: Awaited<ReturnType<BoundedPooledSessions<FakeSession>['acquire']>>) => {
    assert.ok('session' in a);
    return a;
  };

  it('opens up to N, then an attempt waits and gets the next client handed back', async () => {
    const { source, opened } = pool(2);
    const a = sessionOf(await source.acquire());
    const b = sessionOf(await source.acquire());
    assert.deepEqual([a.opened, b.opened, opened(), source.openCount], [true, true, 2, 2]);
    const waiting = source.acquire();
    let settled = false;
    void waiting.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(settled, false, 'the third attempt waits while both clients are busy');
    source.release(a.session, true);
    const c = sessionOf(await waiting);
    assert.deepEqual([c.session.n, c.opened, opened()], [1, false, 2]);
  });

  it('a client that broke frees its place: the waiter opens a new one', async () => {
    const { source, opened } = pool(1);
    const a = sessionOf(await source.acquire());
    const waiting = source.acquire();
    source.release(a.session, false);
    const b = sessionOf(await waiting);
    assert.deepEqual(
      [a.session.destroyed, b.session.n, b.opened, opened(), source.openCount],
      [true, 2, true, 2, 1],
    );
  });

  it('a client opened for a waiter whose deadline passed meanwhile goes to the pool, not lost', async () => {
    let opened = 0;
    const source = new BoundedPooledSessions<FakeSession>(
      async () => {
        opened++;
        if (opened === 2) await new Promise((r) => setTimeout(r, 40)); // within its own deadline
        return new FakeSession(opened);
      },
      60,
      1,
    );
    const a = sessionOf(await source.acquire());
    const waiting = source.acquire(); // gives up at 60 ms
    await new Promise((r) => setTimeout(r, 40));
    source.release(a.session, false); // broke at 40 ms: the waiter opens a client, ready at 80 ms
    await assert.rejects(waiting, (err: unknown) => err instanceof DeadlineError);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(source.openCount, 1, 'the late client holds the one place');
    const next = sessionOf(await source.acquire());
    assert.deepEqual([next.session.n, next.opened], [2, false], 'and the next attempt gets it at once');
  });

  it('a wait longer than the connect deadline is a connect timeout', async () => {
    const { source } = pool(1, 50);
    sessionOf(await source.acquire());
    const started = Date.now();
    await assert.rejects(
      source.acquire(),
      (err: unknown) => err instanceof DeadlineError && err.phase === 'connect',
    );
    assert.ok(Date.now() - started >= 45);
  });

  it('reuses the most recently released idle client, and close ends the idle ones and fails the waiters', async () => {
    const { source } = pool(1);
    const a = sessionOf(await source.acquire());
    source.release(a.session, true);
    const again = sessionOf(await source.acquire());
    assert.equal(again.session, a.session);
    const waiting = source.acquire();
    const closing = source.close();
    await assert.rejects(waiting, /probe stopped/);
    source.release(again.session, true);
    await closing;
    assert.equal(a.session.closed, true);
  });
});

describe("the lab's Aurora topology emulation", () => {
  it('lists every member, quotes names, and derives the writer from each server itself', () => {
    const sql = auroraPgTopologySql([
      { id: 'lab-pg-1', host: '127.0.10.11', port: 5432 },
      { id: "o'brien", host: '127.0.10.12', port: 5432 },
    ]);
    assert.match(
      sql,
      /\('lab-pg-1', '127\.0\.10\.11'::inet, 5432\), \('o''brien', '127\.0\.10\.12'::inet, 5432\)/,
    );
    assert.match(sql, /pg_catalog\.aurora_replica_status\(\)/);
    assert.match(sql, /WHEN NOT pg_is_in_recovery\(\) THEN pg_catalog\.aurora_db_instance_identifier\(\)/);
    assert.match(sql, /pg_stat_wal_receiver r\s+ON r\.status = 'streaming'/);
  });
});
