// The prober pod's service over real HTTP, with a stand-in database driver: setup failures
// are served (never the password) and retried until they clear, samples page without loss,
// stop is idempotent and the audit returns the acknowledged writes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import type { CommittedRow } from '../../src/analysis/server-side-gap.ts';
import { ProbeSetupError } from '../../src/probe/sql-driver.ts';
import type { ProbeDriver, ProbeEndpointConfig, ProbeSample } from '../../src/probe/types.ts';
import { writeKeyOf } from '../../src/probe/write-key.ts';
import { type HttpServer, startHttpServer } from '../../src/server/http.ts';
import { createRegistry } from '../../src/server/metrics.ts';
import { parseProbePodEnv } from '../../src/server/probe-pod-env.ts';
import { ProberService, type SamplesPage } from '../../src/server/prober-service.ts';

const GOOD_PASSWORD = 'good-Hx7-secret';
const TOKEN = 'run-token-Zk4-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const BAD_PASSWORD = 'bad-Qw3-secret';

/** Accepts only GOOD_PASSWORD; its auth error echoes the password it got, as a careless driver might. */
function fakeDriver(config: ProbeEndpointConfig, committed: CommittedRow[]): ProbeDriver {
  return {
    async setup() {
      if (config.password !== GOOD_PASSWORD)
        throw new ProbeSetupError(config.name, 'probe setup', {
          class: 'auth_error',
          code: '28P01',
          message: `password authentication failed for user "${config.user}" (password=${config.password})`,
        });
    },
    async attempt(kind, ctx) {
      await sleep(1);
      if (kind === 'write')
        committed.push({ key: writeKeyOf(config.name, ctx.seq), serverMs: ctx.clientMs + 1 });
      return { class: 'ok', server: { id: 'fake-1', role: 'writer' } };
    },
    async readBack() {
      return [...committed];
    },
    async close() {},
  };
}

async function json<T>(url: string, method = 'GET'): Promise<{ status: number; body: T; text: string }> {
  const res = await fetch(url, { method, headers: AUTH });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as T, text };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('prober service', () => {
  let password = BAD_PASSWORD;
  const committed: CommittedRow[] = [];
  const logLines: string[] = [];
  let server: HttpServer;
  let service: ProberService;

  before(async () => {
    const config = parseProbePodEnv({
      FAILWATCH_RUN_ID: 'run-1',
      FAILWATCH_EXPERIMENT: 'team-a/weekly',
      FAILWATCH_ENDPOINT: JSON.stringify({
        name: 'cluster',
        dialect: 'postgresql',
        host: 'db.example',
        database: 'app',
        interval: '10ms',
        probes: ['write', 'read'],
      }),
      FAILWATCH_DB_USERNAME: 'probe',
      FAILWATCH_DB_PASSWORD: 'unused',
      FAILWATCH_API_TOKEN: TOKEN,
    });
    const registry = createRegistry();
    service = new ProberService({
      runId: config.runId,
      namespace: config.namespace,
      experiment: config.experiment,
      endpoint: config.endpoint,
      credentials: () => ({ user: 'probe', password }),
      apiToken: config.apiToken,
      registry,
      log: pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) }),
      setupRetryMs: 100,
      driverFor: (c) => fakeDriver(c, committed),
    });
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      registry,
      ready: () => service.ready(),
      routes: (app) => service.routes(app),
    });
    service.start();
  });

  after(async () => {
    await service.stop();
    await server.close();
  });

  it('serves a setup failure with its class and without the password, and is not ready', async () => {
    await waitFor('setup-failed', async () => service.state === 'setup-failed');
    await sleep(250); // a few retries
    const status = await json<{
      state: string;
      class: string;
      code: string;
      message: string;
      setupAttempts: number;
    }>(`${server.url}/status`);
    assert.equal(status.body.state, 'setup-failed');
    assert.equal(status.body.class, 'auth_error');
    assert.equal(status.body.code, '28P01');
    assert.match(status.body.message, /password authentication failed for user "probe"/);
    assert.ok(status.body.setupAttempts >= 2, `${status.body.setupAttempts} attempts`);
    assert.ok(!status.text.includes(BAD_PASSWORD));
    const ready = await json<{ ok: boolean; reason: string }>(`${server.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(ready.body.reason, /auth_error/);
    assert.ok(!ready.text.includes(BAD_PASSWORD));
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    // One warn line for the failure, repeats only at debug; none holds the password.
    const failures = logLines.map((l) => JSON.parse(l)).filter((l) => l.event === 'setup-failed');
    assert.equal(failures.filter((l) => l.level === 40).length, 1);
    assert.ok(failures.length >= 2);
    assert.ok(!logLines.join('').includes(BAD_PASSWORD));
  });

  it('recovers in place once the credentials are fixed, and probes at the interval', async () => {
    password = GOOD_PASSWORD;
    await waitFor('probing', async () => service.state === 'probing');
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    const first = (await json<{ samples: number }>(`${server.url}/status`)).body.samples;
    await sleep(500);
    const after = (await json<{ samples: number; startedAt: string; now: string }>(`${server.url}/status`))
      .body;
    const second = after.samples;
    // How long it has probed, on its own clock (the controller's warm-up reads this).
    const probedMs = Date.parse(after.now) - Date.parse(after.startedAt);
    assert.ok(probedMs >= 500 && probedMs < 60_000, `probing for ${probedMs} ms`);
    // Two kinds every 10 ms: ~100 samples in 500 ms.
    assert.ok(second - first >= 40 && second - first <= 130, `${second - first} samples in 500 ms`);
  });

  it('pages samples by index: every sample exactly once, in order per kind', async () => {
    const page1 = await json<SamplesPage>(`${server.url}/samples?from=0&limit=25`);
    assert.equal(page1.status, 200);
    assert.equal(page1.body.samples.length, 25);
    assert.equal(page1.body.next, 25);
    assert.equal(page1.body.complete, false);
    assert.equal(page1.body.dropped, 0);
    const page2 = await json<SamplesPage>(`${server.url}/samples?from=25&limit=25`);
    assert.equal(page2.body.from, 25);
    const all = [...page1.body.samples, ...page2.body.samples];
    for (const kind of ['write', 'read'] as const) {
      const seqs = all.filter((s) => s.kind === kind).map((s) => s.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
    }
    assert.equal((await fetch(`${server.url}/samples?from=-1`, { headers: AUTH })).status, 400);
    const past = await json<{ total: number }>(`${server.url}/samples?from=99999999`);
    assert.equal(past.status, 416);
    assert.ok(past.body.total > 0);
  });

  it('refuses the audit before stop; stop is idempotent; the audit returns every acknowledged write', async () => {
    assert.equal((await fetch(`${server.url}/audit`, { method: 'POST', headers: AUTH })).status, 409);
    const stopped = await json<{ state: string; samples: number; stopRequestedAt: string }>(
      `${server.url}/stop`,
      'POST',
    );
    assert.equal(stopped.body.state, 'stopped');
    assert.ok(Date.parse(stopped.body.stopRequestedAt) <= Date.now());
    await sleep(100);
    const again = await json<{ state: string; samples: number }>(`${server.url}/stop`, 'POST');
    assert.equal(again.body.samples, stopped.body.samples);

    const samples: ProbeSample[] = [];
    let from = 0;
    for (;;) {
      const page = await json<SamplesPage>(`${server.url}/samples?from=${from}`);
      samples.push(...page.body.samples);
      if (page.body.complete) break;
      from = page.body.next;
    }
    assert.equal(samples.length, stopped.body.samples);
    const acked = samples.filter((s) => s.kind === 'write' && s.class === 'ok').map((s) => s.writeKey);
    assert.ok(acked.length > 30);
    const audit = await json<{ rows: CommittedRow[] }>(`${server.url}/audit`, 'POST');
    assert.equal(audit.status, 200);
    assert.deepEqual(audit.body.rows.map((r) => r.key).sort(), [...acked].sort());

    const metrics = await (await fetch(`${server.url}/metrics`, { headers: AUTH })).text();
    const ok = /failwatch_probe_attempts_total\{[^}]*kind="write",class="ok"\} (\d+)/.exec(metrics);
    assert.equal(Number(ok?.[1]), acked.length);
    assert.ok(!metrics.includes(GOOD_PASSWORD) && !metrics.includes(BAD_PASSWORD));
    assert.ok(!logLines.join('').includes(GOOD_PASSWORD));
  });

  it('answers only bearers of the run token; /healthz and /readyz stay open; bad input gets 4xx', async () => {
    const status = (path: string, init: RequestInit = {}) =>
      fetch(`${server.url}${path}`, init).then(async (r) => ({ status: r.status, text: await r.text(), r }));
    for (const [path, method] of [
      ['/status', 'GET'],
      ['/samples?from=0', 'GET'],
      ['/stop', 'POST'],
      ['/audit', 'POST'],
      ['/metrics', 'GET'],
      ['/../../etc/passwd', 'GET'],
    ] as const) {
      const none = await status(path, { method });
      assert.equal(none.status, 401, `${method} ${path} without a token`);
      assert.equal(none.r.headers.get('www-authenticate'), 'Bearer realm="failwatch-prober"');
      for (const authorization of [
        'Bearer wrong-token-0123456789abcdef',
        `Bearer ${TOKEN}x`,
        `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
        `Bearer ${TOKEN.slice(0, -1)}`,
        `Bearer ${'a'.repeat(9000)}`,
        'Bearer',
      ])
        assert.equal(
          (await status(path, { method, headers: { authorization } })).status,
          401,
          `${path} ${authorization.slice(0, 30)}`,
        );
    }
    assert.equal((await status('/healthz')).status, 200);
    assert.ok([200, 503].includes((await status('/readyz')).status));
    // With the token: the old `from` of the audit and other bodies are refused, not followed.
    const audit = await status('/audit', {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ from: { host: '203.0.113.7', port: 5432 } }),
    });
    assert.equal(audit.status, 400, audit.text);
    assert.match(audit.text, /takes no body/);
    const notJson = await status('/audit', {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: '{"from":',
    });
    assert.equal(notJson.status, 400, notJson.text);
    const huge = await status('/stop', {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) }),
    });
    assert.equal(huge.status, 413, huge.text);
    assert.equal((await status('/samples?from=abc', { headers: AUTH })).status, 400);
    assert.equal((await status('/samples?from=1e400', { headers: AUTH })).status, 400);
    assert.equal((await status('/nothing-here', { headers: AUTH })).status, 404);
    // Still serving.
    assert.equal((await status('/status', { headers: AUTH })).status, 200);
    assert.ok(!logLines.join('').includes(TOKEN), 'the token is never logged');
  });
});
