// Efficiency, side by side in one run against the same real PostgreSQL:
// - CPU ms per probe of failwatch's write probe, pooled and fresh: process.cpuUsage() of this
//   process over a fixed-rate run, divided by the attempts made;
// - the same for the reference method of the field reports: a bash loop that stamps the time
//   with `date`, echoes it and runs `psql -c "insert ..." &` per probe; its CPU is the loop's
//   own plus all its children's (bash's `times` after `wait`), divided by the probes;
// - schedule lag (actual start - scheduled start) p50/p99 with 6 endpoints probed every 10 ms,
//   from the schedulers' lag histograms.
// Two controls make the figures readable on a shared machine: node-postgres alone running
// `SELECT 1` at the same rate (what any Node client pays per wake-up and round trip), and the
// same number of schedulers with empty tasks (the timer and OS scheduling share of the lag).
// The servers' own CPU is left out of every figure: it is the same work for all methods.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pgDriver from 'pg';
import * as pg from '../src/lab/postgres.ts';
import { FixedRateScheduler, LagHistogram, type LagSummary, Prober } from '../src/probe/index.ts';
import { pgWriteStatement } from '../src/probe/pg-dialect.ts';
import type { ConnectionMode } from '../src/probe/types.ts';
import { type BenchDb, benchEndpoint, type HostPort } from './servers.ts';

export const TARGETS = { pooled: 100, fresh: 10, lagP99Ms: 5, overFloor: 1.2 };
const WARMUP_MS = 1500;
const CPU_INTERVAL_MS = 20;

export interface CpuFigure {
  method: string;
  probes: number;
  ok: number;
  cpuMs: number;
  cpuMsPerProbe: number;
  intervalMs: number;
}

export interface LagFigure {
  endpoints: number;
  schedulers: number;
  intervalMs: number;
  durationMs: number;
  lag: LagSummary;
  skipped: number;
}

export interface EfficiencyResult {
  pooled: CpuFigure;
  fresh: CpuFigure;
  psqlLoop: CpuFigure;
  rawDriver: CpuFigure;
  /** node-postgres alone sending failwatch's write statement. */
  rawWrite: CpuFigure;
  /** Pooled, six endpoints probed by one process. */
  pooledShared: CpuFigure;
  lag: LagFigure;
  lagControl: LagFigure;
  /** How many times less CPU per probe than the psql loop. */
  pooledRatio: number;
  freshRatio: number;
  /** Rounds of the floor and the pooled prober, alternately. */
  rounds: number;
  /** Pooled CPU per probe over the floor's (the node-postgres SELECT 1 loop). */
  overFloor: number;
  met: { pooled: boolean; fresh: boolean; lag: boolean; overFloor: boolean };
  loadavg: number[];
}

const cpuMsNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * failwatch's write probe at a fixed rate; CPU of this process per attempt. With `endpoints`
 * > 1, that many endpoints are probed by one process (as `failwatch run` and a multi-endpoint
 * experiment do): their schedulers share t0, so one wake-up starts several attempts.
 */
export async function failwatchCpu(
  target: HostPort,
  mode: ConnectionMode,
  intervalMs: number,
  durationMs: number,
  endpoints = 1,
): Promise<CpuFigure> {
  let probes = 0;
  let ok = 0;
  const runId = `eff-${mode}-${Date.now()}`;
  const probers = Array.from(
    { length: endpoints },
    (_, i) =>
      new Prober({
        runId,
        endpoint: benchEndpoint(`eff-${mode}-${i}`, 'postgresql', target, {
          connectionMode: mode,
          intervalMs,
          slowThresholdMs: 1000,
        }),
        sink: (s) => {
          probes++;
          if (s.class === 'ok') ok++;
        },
      }),
  );
  await Promise.all(probers.map((p) => p.setup()));
  for (const p of probers) p.start();
  // Steady state: JIT warm-up, the setup connection and the pool's first connections excluded.
  await sleep(WARMUP_MS);
  const before = cpuMsNow();
  const probesBefore = probes;
  const okBefore = ok;
  await sleep(durationMs);
  const cpuMs = cpuMsNow() - before;
  const n = probes - probesBefore;
  const good = ok - okBefore;
  await Promise.all(probers.map((p) => p.stop()));
  const method =
    endpoints === 1 ? `failwatch ${mode}` : `failwatch ${mode}, ${endpoints} endpoints, one process`;
  return { method, probes: n, ok: good, cpuMs, cpuMsPerProbe: cpuMs / n, intervalMs };
}

/**
 * Control: node-postgres alone, one connection, `SELECT 1` at the same rate, no scheduler and no
 * samples: the floor a Node process pays per wake-up and round trip on this machine. With
 * `statement: 'write'`, each round trip is failwatch's own write statement instead (the same
 * text the prober sends: an INSERT returning who answered), which tells the statement's share of
 * the pooled prober's cost from its code's.
 */
export async function rawDriverCpu(
  target: HostPort,
  intervalMs: number,
  durationMs: number,
  statement: 'select1' | 'write' = 'select1',
): Promise<CpuFigure> {
  const client = new pgDriver.Client({
    host: target.host,
    port: target.port,
    user: pg.LAB_DB_USER,
    password: pg.LAB_DB_PASSWORD,
    database: pg.LAB_DB_NAME,
  });
  const runId = `floor-${Date.now()}`;
  const text = (seq: number) =>
    statement === 'select1'
      ? 'SELECT 1'
      : pgWriteStatement(
          client,
          { auroraIdentity: false },
          {
            runId,
            endpoint: 'floor',
            seq,
            clientMs: Date.now(),
          },
        );
  await client.connect();
  let n = 0;
  let running = true;
  const loop = (async () => {
    const t0 = performance.now();
    while (running) {
      await client.query(text(n));
      n++;
      await sleep(Math.max(0, t0 + n * intervalMs - performance.now()));
    }
  })();
  await sleep(WARMUP_MS);
  const before = cpuMsNow();
  const n0 = n;
  await sleep(durationMs);
  const cpuMs = cpuMsNow() - before;
  const probes = n - n0;
  running = false;
  await loop;
  await client.end();
  return {
    method:
      statement === 'select1'
        ? 'control: node-postgres SELECT 1'
        : "control: node-postgres, failwatch's write",
    probes,
    ok: probes,
    cpuMs,
    cpuMsPerProbe: cpuMs / probes,
    intervalMs,
  };
}

/**
 * The field reports' loop (seed 1: `DATETIME=$(date ...)`, `echo`, `psql -q -c "insert ..." &`,
 * `sleep`), `probes` times; CPU of bash and all its children from `times` after `wait`.
 */
export async function psqlLoopCpu(
  target: HostPort,
  dir: string,
  probes: number,
  intervalMs: number,
): Promise<CpuFigure> {
  const psql = join(pg.pgBinDir(), 'psql');
  const script = join(dir, 'psql-loop.sh');
  writeFileSync(
    script,
    [
      '#!/bin/bash',
      // The reference loop's table (seed 1).
      `"$PSQL" -q -h "$HOST" -p "$PORT" -d "$DB" -U "$PGUSER" -c "create table if not exists record(id serial, create_at timestamp)" >/dev/null`,
      'for ((i = 0; i < PROBES; i++)); do',
      '  DATETIME=$(date -u "+%Y-%m-%d %T.%N")',
      '  echo $DATETIME',
      '  "$PSQL" -q -h "$HOST" -p "$PORT" -d "$DB" -U "$PGUSER" -c "insert into record(create_at) VALUES (current_timestamp)" &',
      '  sleep "$SLEEP"',
      'done',
      'wait',
      'times >&2',
      '',
    ].join('\n'),
  );
  const env = {
    ...process.env,
    PSQL: psql,
    HOST: target.host,
    PORT: String(target.port),
    DB: pg.LAB_DB_NAME,
    PGUSER: pg.LAB_DB_USER,
    PGPASSWORD: pg.LAB_DB_PASSWORD,
    PROBES: String(probes),
    SLEEP: (intervalMs / 1000).toFixed(3),
  };
  const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>(
    (resolve, reject) => {
      const child = spawn('bash', [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      child.on('error', reject);
      child.on('close', (c) => resolve({ stdout: out, stderr: err, code: c }));
    },
  );
  if (code !== 0) throw new Error(`psql loop failed (exit ${code}): ${stderr.trim().slice(-300)}`);
  // `times`: shell user/sys, then children user/sys, as `0m0.012s 0m0.034s`.
  const lines = stderr.trim().split('\n').slice(-2);
  const seconds = (s: string) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(s);
    if (!m) throw new Error(`cannot parse bash times output: ${lines.join(' / ')}`);
    return Number(m[1]) * 60 + Number(m[2]);
  };
  const cpuMs = lines.flatMap((l) => l.trim().split(/\s+/)).reduce((sum, t) => sum + seconds(t) * 1000, 0);
  const ok = stdout.split('\n').filter(Boolean).length;
  return {
    method: 'psql loop (field reports)',
    probes,
    ok,
    cpuMs,
    cpuMsPerProbe: cpuMs / probes,
    intervalMs,
  };
}

/** Schedule lag with `endpoints` endpoints (alternately PostgreSQL and MariaDB), write probes, pooled. */
export async function scheduleLag(
  targets: Record<BenchDb, HostPort>,
  endpoints: number,
  intervalMs: number,
  durationMs: number,
): Promise<LagFigure> {
  let skipped = 0;
  const probers = Array.from({ length: endpoints }, (_, i) => {
    const db: BenchDb = i % 2 === 0 ? 'postgresql' : 'mariadb';
    return new Prober({
      runId: `lag-${Date.now()}`,
      endpoint: benchEndpoint(`lag-${i}`, db, targets[db], {
        connectionMode: 'pooled',
        intervalMs,
        kinds: ['write'],
        slowThresholdMs: 1000,
      }),
      sink: () => {},
      onSkip: () => {
        skipped++;
      },
    });
  });
  await Promise.all(probers.map((p) => p.setup()));
  for (const p of probers) p.start();
  await sleep(durationMs);
  await Promise.all(probers.map((p) => p.stop()));
  const merged = new LagHistogram();
  let schedulers = 0;
  for (const p of probers)
    for (const s of p.schedulers().values()) {
      merged.merge(s.lagHistogram);
      schedulers++;
    }
  return { endpoints, schedulers, intervalMs, durationMs, lag: merged.summary(), skipped };
}

/** Control: the same number of schedulers with tasks that do nothing: the timer and OS share of the lag. */
export async function noopSchedulerLag(
  schedulers: number,
  intervalMs: number,
  durationMs: number,
): Promise<LagFigure> {
  let skipped = 0;
  const all = Array.from(
    { length: schedulers },
    () =>
      new FixedRateScheduler(
        {
          intervalMs,
          maxInFlight: 2,
          onSkip: () => {
            skipped++;
          },
        },
        () => {},
      ),
  );
  for (const s of all) s.start();
  await sleep(durationMs);
  await Promise.all(all.map((s) => s.stop()));
  const merged = new LagHistogram();
  for (const s of all) merged.merge(s.lagHistogram);
  return { endpoints: 0, schedulers, intervalMs, durationMs, lag: merged.summary(), skipped };
}

export interface EfficiencyOptions {
  targets: Record<BenchDb, HostPort>;
  /** A scratch directory for the psql loop script. */
  dir: string;
  quick?: boolean;
}

export async function runEfficiency(options: EfficiencyOptions): Promise<EfficiencyResult> {
  const pgTarget = options.targets.postgresql;
  const seconds = options.quick ? 2000 : 8000;
  // A warm-up round, discarded: whichever method ran first in this process paid for compiling
  // the driver's and the prober's code and for the heap left by module loading (the first
  // pooled run of 5 s measured 1.26 ms per probe, the same code in a warm process 0.77 ms).
  // A prober probes for minutes to hours, so its steady state is the figure that matters.
  await failwatchCpu(pgTarget, 'pooled', CPU_INTERVAL_MS, 2000);
  await failwatchCpu(pgTarget, 'fresh', CPU_INTERVAL_MS, 1000);
  await rawDriverCpu(pgTarget, CPU_INTERVAL_MS, 2000);
  // Then the floor and the pooled prober alternately, so a change in the machine's load during
  // the bench falls on both alike; each figure is the sum of its rounds.
  const rounds: { raw: CpuFigure[]; rawWrite: CpuFigure[]; pooled: CpuFigure[] } = {
    raw: [],
    rawWrite: [],
    pooled: [],
  };
  for (let i = 0; i < (options.quick ? 1 : 3); i++) {
    rounds.raw.push(await rawDriverCpu(pgTarget, CPU_INTERVAL_MS, seconds));
    rounds.rawWrite.push(await rawDriverCpu(pgTarget, CPU_INTERVAL_MS, seconds, 'write'));
    rounds.pooled.push(await failwatchCpu(pgTarget, 'pooled', CPU_INTERVAL_MS, seconds));
  }
  const rawDriver = sumRounds(rounds.raw);
  const rawWrite = sumRounds(rounds.rawWrite);
  const pooled = sumRounds(rounds.pooled);
  const fresh = await failwatchCpu(pgTarget, 'fresh', CPU_INTERVAL_MS, seconds);
  const pooledShared = await failwatchCpu(pgTarget, 'pooled', CPU_INTERVAL_MS, seconds, 6);
  const psqlLoop = await psqlLoopCpu(pgTarget, options.dir, options.quick ? 20 : 50, 100);
  const lagSeconds = options.quick ? 3000 : 8000;
  const lagControl = await noopSchedulerLag(6, 10, lagSeconds);
  const lag = await scheduleLag(options.targets, 6, 10, lagSeconds);
  const pooledRatio = psqlLoop.cpuMsPerProbe / pooled.cpuMsPerProbe;
  const overFloor = pooled.cpuMsPerProbe / rawDriver.cpuMsPerProbe;
  const freshRatio = psqlLoop.cpuMsPerProbe / fresh.cpuMsPerProbe;
  return {
    pooled,
    fresh,
    psqlLoop,
    rawDriver,
    rawWrite,
    pooledShared,
    lag,
    lagControl,
    pooledRatio,
    freshRatio,
    rounds: rounds.raw.length,
    overFloor,
    met: {
      overFloor: overFloor <= TARGETS.overFloor,
      pooled: pooledRatio >= TARGETS.pooled,
      fresh: freshRatio >= TARGETS.fresh,
      lag: lag.lag.p99Ms < TARGETS.lagP99Ms,
    },
    loadavg: loadavg(),
  };
}

/** One figure for several runs of one method: their probes and CPU added up. */
function sumRounds(runs: readonly CpuFigure[]): CpuFigure {
  const probes = runs.reduce((n, r) => n + r.probes, 0);
  const cpuMs = runs.reduce((n, r) => n + r.cpuMs, 0);
  return {
    ...runs[0]!,
    probes,
    ok: runs.reduce((n, r) => n + r.ok, 0),
    cpuMs,
    cpuMsPerProbe: cpuMs / probes,
  };
}

export function formatEfficiency(r: EfficiencyResult): string {
  const rows = [r.pooled, r.fresh, r.psqlLoop, r.rawDriver, r.rawWrite, r.pooledShared].map((f) => {
    const times = `${(r.psqlLoop.cpuMsPerProbe / f.cpuMsPerProbe).toFixed(0)}x less`;
    const ratio =
      f === r.psqlLoop
        ? '1x (reference)'
        : f === r.rawDriver
          ? `${times} (the floor for any Node client here)`
          : f === r.rawWrite
            ? `${times} (the write statement alone)`
            : f === r.pooledShared
              ? `${times} (wake-ups shared by the endpoints)`
              : `${times} (target >= ${f === r.pooled ? TARGETS.pooled : TARGETS.fresh}x: ${(f === r.pooled ? r.met.pooled : r.met.fresh) ? 'met' : 'NOT met'})`;
    return [
      f.method,
      `${f.intervalMs} ms`,
      String(f.probes),
      String(f.ok),
      f.cpuMs.toFixed(0),
      f.cpuMsPerProbe.toFixed(3),
      ratio,
    ];
  });
  const head = ['method', 'interval', 'probes', 'ok', 'CPU ms', 'CPU ms/probe', 'vs psql loop'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join(' | ')
      .trimEnd();
  const l = r.lag;
  return [
    'Efficiency (client-side CPU per write probe against the same PostgreSQL; server CPU excluded)',
    line(head),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...rows.map(line),
    `failwatch pooled over the floor: ${r.overFloor.toFixed(2)}x (target <= ${TARGETS.overFloor}x: ${r.met.overFloor ? 'met' : 'NOT met'}); over the bare driver sending the same write statement: ${(r.pooled.cpuMsPerProbe / r.rawWrite.cpuMsPerProbe).toFixed(2)}x (after a discarded warm-up round of each method; the three alternate, ${r.rounds} rounds)`,
    '',
    `Schedule lag (actual - scheduled start of each attempt), ${l.intervalMs} ms interval, ${l.durationMs / 1000} s:`,
    `  ${l.endpoints} endpoints (PostgreSQL and MariaDB alternately, pooled write probes, ${l.schedulers} schedulers): ${lagLine(l)}; target p99 < ${TARGETS.lagP99Ms} ms: ${r.met.lag ? 'met' : 'NOT met'}`,
    `  control, ${r.lagControl.schedulers} schedulers with empty tasks (timer + OS share): ${lagLine(r.lagControl)}`,
    `  load average during the run (1/5/15 min, includes everything else on the machine): ${r.loadavg.map((x) => x.toFixed(2)).join(' / ')}`,
  ].join('\n');
}

function lagLine(l: LagFigure): string {
  return `${l.lag.count} attempts, p50 ${l.lag.p50Ms.toFixed(2)} ms, p99 ${l.lag.p99Ms.toFixed(2)} ms, max ${l.lag.maxMs.toFixed(2)} ms, ${l.skipped} ticks skipped`;
}

/** The PostgreSQL client version, for the header. */
export function psqlVersion(): string {
  try {
    return execFileSync(join(pg.pgBinDir(), 'psql'), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'psql (unknown version)';
  }
}
