// `failwatch probe` as the controller runs it in a prober pod: a child process configured by
// the environment, probing a real PostgreSQL, serving its samples, metrics and audit over
// HTTP; with a wrong password it stays up, says why, retries, and never shows the password.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommittedRow } from '../../src/analysis/server-side-gap.ts';
import * as pg from '../../src/lab/postgres.ts';
import type { ProbeSample } from '../../src/probe/types.ts';
import type { ProberStatusBody, SamplesPage } from '../../src/server/prober-service.ts';
import { MAIN } from '../helpers/cli.ts';
import { pgInstance, TempDir } from '../helpers/probe-servers.ts';

const dir = new TempDir();
const primary = pgInstance(dir, 'pg1', '127.0.90.11');
const WRONG_PASSWORD = 'wrong-Pz4-not-the-password';
const TOKEN = 'e2e-run-token-Qm8-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

interface ProbeProcess {
  child: ChildProcess;
  url: string;
  /** The open /metrics server (FAILWATCH_METRICS_PORT on the same address). */
  metricsUrl: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startProbe(listen: string, password: string, runId: string): ProbeProcess {
  const child = spawn(process.execPath, [MAIN, 'probe'], {
    env: {
      PATH: process.env.PATH,
      FAILWATCH_RUN_ID: runId,
      FAILWATCH_EXPERIMENT: 'team-a/weekly',
      FAILWATCH_ENDPOINT: JSON.stringify({
        name: 'cluster',
        dialect: 'postgresql',
        host: primary.host,
        port: primary.port,
        database: pg.LAB_DB_NAME,
        role: 'cluster',
        probes: ['write', 'read'],
        interval: '100ms',
        tls: { mode: 'disable' },
        credentials: { secretRef: { name: 'pg-creds' } },
      }),
      FAILWATCH_DB_USERNAME: pg.LAB_DB_USER,
      FAILWATCH_DB_PASSWORD: password,
      FAILWATCH_LISTEN: listen,
      FAILWATCH_METRICS_PORT: String(Number(listen.split(':')[1]) + 1),
      FAILWATCH_API_TOKEN: TOKEN,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const [host, port] = listen.split(':') as [string, string];
  return {
    child,
    url: `http://${listen}`,
    metricsUrl: `http://${host}:${Number(port) + 1}`,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
  };
}

async function get<T>(url: string, method = 'GET'): Promise<{ status: number; body: T; text: string }> {
  const res = await fetch(url, { method, headers: AUTH, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, text };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function terminate(p: ProbeProcess): Promise<number | null> {
  if (p.child.exitCode !== null) return p.child.exitCode;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 30_000);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

function logEvents(p: ProbeProcess): Array<Record<string, unknown>> {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

before(async () => {
  await pg.initPrimary(primary);
});

after(async () => {
  await pg.stop(primary, 'immediate').catch(() => {});
  dir.remove();
});

describe('failwatch probe (prober pod entry)', { timeout: 180_000 }, () => {
  it('probes, serves every sample in pages, metrics and the lost-write audit, and exits 0 on SIGTERM', async () => {
    const runId = `pod-${Date.now()}`;
    const p = startProbe('127.0.90.50:19090', pg.LAB_DB_PASSWORD, runId);
    try {
      await waitFor('readyz 200', async () => (await fetch(`${p.url}/readyz`)).status === 200);
      const status = await get<ProberStatusBody>(`${p.url}/status`);
      assert.equal(status.body.state, 'probing');
      assert.equal(status.body.runId, runId);
      assert.equal(status.body.endpoint, 'cluster');
      assert.equal(status.body.dropped, 0);
      assert.ok(status.body.startedAt);

      // Fixed rate: two kinds every 100 ms, ~40 samples in 2 s.
      const before = (await get<ProberStatusBody>(`${p.url}/status`)).body.samples;
      await sleep(2000);
      const grown = (await get<ProberStatusBody>(`${p.url}/status`)).body.samples - before;
      assert.ok(grown >= 30 && grown <= 60, `${grown} samples in 2 s at 100 ms for 2 kinds`);

      // Small pages chain exactly: next of one page is from of the next.
      const paged: ProbeSample[] = [];
      let from = 0;
      for (let i = 0; i < 5; i++) {
        const page = await get<SamplesPage>(`${p.url}/samples?from=${from}&limit=7`);
        assert.equal(page.body.from, from);
        assert.equal(page.body.samples.length, 7);
        assert.equal(page.body.next, from + 7);
        paged.push(...page.body.samples);
        from = page.body.next;
      }
      const firstPage = await get<SamplesPage>(`${p.url}/samples?from=0`);
      assert.deepEqual(paged, firstPage.body.samples.slice(0, 35));
      const notOk = firstPage.body.samples.filter((s) => s.class !== 'ok');
      assert.deepEqual(
        notOk.map(
          (s) => `${s.kind}#${s.seq} ${s.class} ${(s.endMs - s.startMs).toFixed(0)} ms ${s.message ?? ''}`,
        ),
        [],
      );
      assert.ok(firstPage.body.samples.every((s) => s.server?.role === 'writer'));

      // The API needs the run token; /metrics is open, on its own port only.
      for (const [path, method] of [
        ['/status', 'GET'],
        ['/samples?from=0', 'GET'],
        ['/stop', 'POST'],
        ['/audit', 'POST'],
        ['/metrics', 'GET'],
      ])
        assert.equal(
          (
            await fetch(`${p.url}${path}`, {
              method,
              headers: { authorization: 'Bearer not-the-token-000000' },
            })
          ).status,
          401,
          `${method} ${path} with a wrong token`,
        );
      assert.equal((await fetch(`${p.metricsUrl}/status`)).status, 404, 'no API on the metrics port');
      assert.equal((await fetch(`${p.metricsUrl}/stop`, { method: 'POST' })).status, 404);
      const metrics = await (await fetch(`${p.metricsUrl}/metrics`)).text();
      const ok =
        /failwatch_probe_attempts_total\{namespace="team-a",experiment="weekly",endpoint="cluster",zone="",kind="write",class="ok"\} (\d+)/.exec(
          metrics,
        );
      assert.ok(Number(ok?.[1]) > 10, `write ok count ${ok?.[1]}`);
      assert.match(metrics, /failwatch_probe_up\{[^}]*kind="read"\} 1/);
      assert.match(metrics, /failwatch_probe_attempt_duration_seconds_count\{[^}]*kind="read"\} \d+/);
      assert.match(metrics, /failwatch_probe_schedule_lag_seconds\{[^}]*quantile="0.99"\}/);

      // ... and on the clock: write n starts n intervals after write 0.
      const writes = firstPage.body.samples.filter((s) => s.kind === 'write');
      const last = writes.at(-1)!;
      const spacingMs = (last.startMs - writes[0]!.startMs) / (last.seq - writes[0]!.seq);
      assert.ok(Math.abs(spacingMs - 100) < 5, `${spacingMs.toFixed(2)} ms between write starts`);

      assert.equal(
        (await fetch(`${p.url}/audit`, { method: 'POST', headers: AUTH })).status,
        409,
        'audit before stop',
      );
      const stopped = await get<ProberStatusBody>(`${p.url}/stop`, 'POST');
      assert.equal(stopped.body.state, 'stopped');
      const again = await get<ProberStatusBody>(`${p.url}/stop`, 'POST');
      assert.equal(again.body.samples, stopped.body.samples, 'stop is idempotent');

      // A full pull, as a restarted controller does from 0: every sample once.
      const all: ProbeSample[] = [];
      from = 0;
      for (;;) {
        const page = await get<SamplesPage>(`${p.url}/samples?from=${from}`);
        all.push(...page.body.samples);
        if (page.body.complete) break;
        from = page.body.next;
      }
      assert.equal(all.length, stopped.body.samples);
      assert.equal(new Set(all.map((s) => `${s.kind}#${s.seq}`)).size, all.length);
      const acked = all.filter((s) => s.kind === 'write' && (s.class === 'ok' || s.class === 'slow'));
      assert.ok(acked.length >= 20);

      const audit = await get<{ rows: CommittedRow[] }>(`${p.url}/audit`, 'POST');
      assert.equal(audit.status, 200, audit.text);
      const rowKeys = new Set(audit.body.rows.map((r) => r.key));
      const missing = acked.filter((s) => !rowKeys.has(s.writeKey!));
      assert.deepEqual(missing, [], 'every acknowledged write is in the table');
      assert.equal(audit.body.rows.length, acked.length);

      assert.equal(await terminate(p), 0);
      const events = logEvents(p).map((l) => l.event);
      for (const e of ['listening', 'setup-ok', 'started', 'stopped', 'audit', 'shutdown', 'exit'])
        assert.ok(events.includes(e), `log event ${e} in ${events.join(',')}`);
      for (const line of logEvents(p)) {
        assert.equal(line.experiment, 'weekly');
        assert.equal(line.endpoint, 'cluster');
      }
      assert.ok(!p.stdout().includes(pg.LAB_DB_PASSWORD) && !p.stderr().includes(pg.LAB_DB_PASSWORD));
    } finally {
      await terminate(p);
    }
  });

  it('SIGTERM while probing stops the probes and exits 0 within seconds', async () => {
    const p = startProbe('127.0.90.52:19090', pg.LAB_DB_PASSWORD, `pod-term-${Date.now()}`);
    try {
      await waitFor('readyz 200', async () => (await fetch(`${p.url}/readyz`)).status === 200);
      await sleep(500);
      const sentMs = Date.now();
      assert.equal(await terminate(p), 0);
      const tookMs = Date.now() - sentMs;
      assert.ok(tookMs < 5000, `exit took ${tookMs} ms`);
      const stopped = logEvents(p).find((l) => l.event === 'stopped');
      assert.ok(stopped && (stopped.samples as number) > 5, JSON.stringify(stopped));
    } finally {
      await terminate(p);
    }
  });

  it('with a wrong password: stays up, serves auth_error, is not ready, retries, never shows the password', async () => {
    const p = startProbe('127.0.90.51:19090', WRONG_PASSWORD, `pod-bad-${Date.now()}`);
    try {
      await waitFor(
        'setup-failed',
        async () => (await get<ProberStatusBody>(`${p.url}/status`)).body.state === 'setup-failed',
      );
      const first = await get<ProberStatusBody>(`${p.url}/status`);
      assert.equal(first.body.class, 'auth_error');
      assert.equal(first.body.code, '28P01');
      assert.match(first.body.message!, /password authentication failed for user "failwatch"/);
      const ready = await get<{ ok: boolean; reason: string }>(`${p.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(ready.body.reason, /auth_error/);

      await sleep(6000);
      assert.equal(p.child.exitCode, null, 'still running after 6 s');
      const later = await get<ProberStatusBody>(`${p.url}/status`);
      assert.equal(later.body.state, 'setup-failed');
      assert.ok(later.body.setupAttempts >= 2, `${later.body.setupAttempts} setup attempts in 6 s`);
      assert.equal((await fetch(`${p.url}/healthz`)).status, 200);
      const audit = await fetch(`${p.url}/audit`, { method: 'POST', headers: AUTH });
      assert.equal(audit.status, 409);

      assert.equal(await terminate(p), 0);
      const warnings = logEvents(p).filter((l) => l.event === 'setup-failed' && l.level === 'warn');
      assert.equal(warnings.length, 1, 'one log line for one distinct failure');
      for (const text of [p.stdout(), p.stderr(), first.text, later.text, ready.text]) {
        assert.ok(!text.includes(WRONG_PASSWORD), `password shown in: ${text.slice(0, 200)}`);
        assert.ok(!text.includes(TOKEN), `token shown in: ${text.slice(0, 200)}`);
      }
    } finally {
      await terminate(p);
    }
  });
});
