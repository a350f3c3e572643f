// The measuring instrument against ground truth, a small subset of `npm run bench`: Toxiproxy
// in front of real PostgreSQL and MariaDB injects 1 s outages; the real Prober and the
// analysis must measure each within the interval + 10 ms and classify the attempts as the
// fault dictates. Each fault starts half-way between two attempts so that the check is about
// the instrument, not about where the fault fell on the attempt grid (the bench covers that).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { downtime } from '../../src/analysis/downtime.ts';
import type { ErrorClass } from '../../src/analysis/error-class.ts';
import { outageWindows } from '../../src/analysis/outage-windows.ts';
import type { Sample } from '../../src/analysis/sample.ts';
import * as maria from '../../src/lab/mariadb.ts';
import * as pg from '../../src/lab/postgres.ts';
import { Prober } from '../../src/probe/index.ts';
import type { ConnectionMode, Dialect } from '../../src/probe/types.ts';
import { labEndpoint, mariaInstance, pgInstance, stopAll, TempDir } from '../helpers/probe-servers.ts';
import { type FaultKind, nowMs, sleepUntil, Toxiproxy } from '../helpers/toxiproxy.ts';

const dir = new TempDir();
const pgServer = pgInstance(dir, 'pg', '127.0.80.12');
const myServer = mariaInstance(dir, 'my', '127.0.80.13', 1);
const INTERVAL_MS = 100;
const TOLERANCE_MS = INTERVAL_MS + 10;
let toxiproxy: Toxiproxy;
let nextPort = 23000;

before(async () => {
  [toxiproxy] = await Promise.all([
    Toxiproxy.start({ api: { host: '127.0.80.11', port: 18474 }, logFile: dir.sub('toxiproxy.log') }),
    pg.initPrimary(pgServer),
    maria.initPrimary(myServer),
  ]);
});

after(async () => {
  await toxiproxy?.stop();
  await stopAll([pgServer], [myServer]);
  dir.remove();
});

interface Measured {
  injectedMs: number;
  lowerMs: number;
  upperMs: number;
  estimateMs: number;
  windows: number;
  recovered: boolean;
  classes: Partial<Record<ErrorClass, number>>;
}

async function measure(dialect: Dialect, mode: ConnectionMode, fault: FaultKind): Promise<Measured> {
  const upstream = dialect === 'postgresql' ? pgServer : myServer;
  const name = `accuracy-${dialect}-${mode}-${fault}`;
  const proxy = await toxiproxy.createProxy(name, { host: '127.0.80.11', port: nextPort++ }, upstream);
  const samples: Sample[] = [];
  const prober = new Prober({
    runId: 'toxiproxy-accuracy',
    endpoint: labEndpoint(dialect, proxy.listen, {
      name,
      connectionMode: mode,
      intervalMs: INTERVAL_MS,
      // Short enough that blackholed attempts reach their deadline within the 1 s outage.
      connectTimeoutMs: 300,
      queryTimeoutMs: 300,
      slowThresholdMs: 250,
      kinds: ['write'],
    }),
    sink: (s) => samples.push(s),
  });
  try {
    await prober.setup();
    prober.start();
    await sleep(600);
    const last = samples.at(-1);
    assert.ok(last && last.class === 'ok', 'healthy baseline');
    await sleepUntil(last.startMs + 1.5 * INTERVAL_MS);
    const injected = await proxy.inject(fault, 1000);
    const end = injected.endMs;
    const deadline = nowMs() + 5000;
    while (samples.filter((s) => s.startMs > end && s.class === 'ok').length < 3 && nowMs() < deadline)
      await sleep(20);
    const d = downtime(outageWindows(samples), { startMs: injected.startMs, endMs: nowMs() });
    const classes: Partial<Record<ErrorClass, number>> = {};
    for (const w of d.windows)
      for (const [k, n] of Object.entries(w.classes) as [ErrorClass, number][])
        classes[k] = (classes[k] ?? 0) + n;
    return {
      injectedMs: injected.endMs - injected.startMs,
      lowerMs: d.lowerBoundMs,
      upperMs: d.upperBoundMs,
      estimateMs: d.estimateMs,
      windows: d.windows.length,
      recovered: d.recovered,
      classes,
    };
  } finally {
    await prober.stop();
    await toxiproxy.deleteProxy(name);
  }
}

function assertWithinTolerance(m: Measured): void {
  assert.equal(m.windows, 1, `one outage window, got ${m.windows}`);
  assert.ok(m.recovered, 'recovered');
  const detail = `injected ${m.injectedMs.toFixed(1)} ms, estimate ${m.estimateMs.toFixed(1)} ms, window [${m.lowerMs.toFixed(1)} .. ${m.upperMs.toFixed(1)}] ms`;
  assert.ok(
    Math.abs(m.estimateMs - m.injectedMs) <= TOLERANCE_MS,
    `estimate off by more than ${TOLERANCE_MS} ms: ${detail}`,
  );
  assert.ok(
    m.lowerMs - 10 <= m.injectedMs && m.injectedMs <= m.upperMs + 10,
    `bounds miss the truth: ${detail}`,
  );
}

function assertClasses(m: Measured, main: ErrorClass, allowed: ErrorClass[]): void {
  assert.ok((m.classes[main] ?? 0) > 0, `some ${main}: ${JSON.stringify(m.classes)}`);
  for (const k of Object.keys(m.classes))
    assert.ok(allowed.includes(k as ErrorClass), `unexpected ${k}: ${JSON.stringify(m.classes)}`);
}

describe('accuracy against Toxiproxy (1 s outages, write probes every 100 ms)', () => {
  it('PostgreSQL, refuse: connection_refused, window within interval + 10 ms', async () => {
    const m = await measure('postgresql', 'fresh', 'refuse');
    // An attempt in flight when the proxy closes its connections is lost.
    assertClasses(m, 'connection_refused', ['connection_refused', 'connection_lost']);
    assertWithinTolerance(m);
  });

  it('PostgreSQL, blackhole: connect_timeout, hung attempts end with the outage', async () => {
    const m = await measure('postgresql', 'fresh', 'blackhole');
    // Attempts still hanging when the toxic goes are closed by Toxiproxy: connection_lost.
    assertClasses(m, 'connect_timeout', ['connect_timeout', 'query_timeout', 'connection_lost']);
    assertWithinTolerance(m);
  });

  it('MariaDB, reset: connection_lost, window within interval + 10 ms', async () => {
    const m = await measure('mysql', 'fresh', 'reset');
    assertClasses(m, 'connection_lost', ['connection_lost']);
    assertWithinTolerance(m);
  });

  it('PostgreSQL pooled, reset: the pooled connection and new ones are lost', async () => {
    const m = await measure('postgresql', 'pooled', 'reset');
    assertClasses(m, 'connection_lost', ['connection_lost']);
    assertWithinTolerance(m);
  });
});
