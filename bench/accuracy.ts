// Accuracy against ground truth: Toxiproxy in front of real PostgreSQL and MariaDB injects
// outages of known length (refuse, reset, blackhole, latency); the real Prober measures them
// and the analysis (outageWindows + downtime) turns the samples into a window, which is
// compared with the injected one.
//
// What is compared. The injected window runs from the return of the Toxiproxy API call that
// started the fault to the return of the call that ended it (the fault is in effect when the
// call returns). The measured window is the analysis's point estimate (estimateSeconds in
// results.json, see docs/results.md), printed next to the DESIGN's outage window: from the
// end of the last good attempt before the bad run to the end of the first good attempt after
// it (downtime's upper bound), and its lower bound from the first bad start to the last bad
// end. Each edge of the estimate has the resolution of one interval (an attempt starts every
// interval), plus noise, so the tolerance is interval + 10 ms, on the window.
//
// Latency faults: every chunk the server sends is held L ms (L = slow threshold + 100 ms), so
// attempts become `slow`. The expected window is the injected duration, not duration + L:
// Toxiproxy releases the held chunks when the toxic is removed, so attempts started near the
// end finish right after it, and the window ends with the first good attempt in start order
// (a slow attempt still pending then counts only until that acknowledgement).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { downtime } from '../src/analysis/downtime.ts';
import type { ErrorClass } from '../src/analysis/error-class.ts';
import { outageWindows } from '../src/analysis/outage-windows.ts';
import type { Sample } from '../src/analysis/sample.ts';
import { Prober } from '../src/probe/index.ts';
import { RECONNECT_ALLOWANCE_MS } from '../src/probe/prober.ts';
import type { ConnectionMode } from '../src/probe/types.ts';
import {
  type FaultKind,
  type InjectedWindow,
  nowMs,
  type ToxicProxy,
  type Toxiproxy,
} from '../test/helpers/toxiproxy.ts';
import { openReference, type ReferenceAttempt, ReferenceProber } from './reference-prober.ts';
import { type BenchDb, benchEndpoint, type HostPort } from './servers.ts';

export const PROXY_HOST = '127.0.80.1';
const PROXY_BASE_PORT = 21000;
// Below the shortest latency fault (0.2 s: a stall shorter than the threshold is no outage by
// definition), above what a busy 2-core machine adds to a healthy attempt: a fresh PostgreSQL
// connection takes 10-30 ms here (a fork), a pooled query about 1 ms. A 0.2 s stall is only
// seen by attempts that start in its first (0.2 s - threshold): with a 100 ms interval that
// window must be longer than the interval, hence the lower threshold for pooled probes.
export const SLOW_THRESHOLD_MS: Record<ConnectionMode, number> = { fresh: 150, pooled: 50 };
export const LATENCY_MS = 250;
export const ATTEMPT_TIMEOUT_MS = 1000;
const BASELINE_MS = 700;
const GOOD_AFTER = 5;
const RECOVERY_LIMIT_MS = 10_000;

export interface AccuracyCase {
  db: BenchDb;
  fault: FaultKind;
  intervalMs: number;
  mode: ConnectionMode;
  injectMs: number;
}

export interface AccuracyResult {
  case: AccuracyCase;
  injected: InjectedWindow;
  injectedMs: number;
  /** The analysis's point estimate; null when no window was measured. */
  measuredMs: number | null;
  /** The outage window of DESIGN.md (= downtime, its upper bound). */
  upperMs: number | null;
  lowerMs: number | null;
  /** measured - injected. */
  errorMs: number | null;
  upperErrorMs: number | null;
  lowerErrorMs: number | null;
  toleranceMs: number;
  within: boolean;
  windows: number;
  /** Window start/end minus injected start/end. */
  startErrorMs: number | null;
  endErrorMs: number | null;
  attempts: number;
  badAttempts: number;
  classes: Partial<Record<ErrorClass, number>>;
  /** Bad attempts that ended after the window's end (hung past recovery; cut by the analysis). */
  pendingPastEnd: number;
  /** Latest end of such an attempt after the window's end, ms. */
  pendingPastEndMaxMs: number;
  /** Median duration of a good attempt before the fault. */
  attemptP50Ms: number | null;
  /** Ticks skipped (late or in-flight cap). */
  skipped: number;
  /** The reference client's outage (bench/reference-prober.ts), null when it saw none. */
  referenceMs: number | null;
  /** Reference window edges minus injected edges. */
  referenceStartMs: number | null;
  referenceEndMs: number | null;
  /** Outage windows the reference saw (within needs one, as failwatch's). */
  referenceWindows: number;
  /** measured - reference. */
  referenceErrorMs: number | null;
  withinReference: boolean;
  note?: string;
}

export const DBS: readonly BenchDb[] = ['postgresql', 'mariadb'];
export const FAULTS: readonly FaultKind[] = ['refuse', 'reset', 'blackhole', 'latency'];
export const OUTAGES_MS: readonly number[] = [200, 1000, 5000, 15000];
export const INTERVALS_MS: readonly number[] = [10, 100];

/** The full matrix: fresh for every fault, pooled for every fault too. */
export function allCases(): AccuracyCase[] {
  const cases: AccuracyCase[] = [];
  for (const db of DBS)
    for (const fault of FAULTS)
      for (const mode of ['fresh', 'pooled'] as const)
        for (const intervalMs of INTERVALS_MS)
          for (const injectMs of OUTAGES_MS) cases.push({ db, fault, intervalMs, mode, injectMs });
  return cases;
}

export function caseLabel(c: AccuracyCase): string {
  return `${c.db}/${c.fault}/${c.intervalMs}ms/${c.mode}/${c.injectMs / 1000}s`;
}

async function waitUntil(check: () => boolean, limitMs: number): Promise<boolean> {
  const deadline = nowMs() + limitMs;
  while (nowMs() < deadline) {
    if (check()) return true;
    await sleep(20);
  }
  return check();
}

/** Runs one case on its own proxy (`slot` picks the proxy's port). */
export async function runCase(
  toxiproxy: Toxiproxy,
  upstream: HostPort,
  c: AccuracyCase,
  slot: number,
  runId: string,
  pgLog?: string,
): Promise<AccuracyResult> {
  const name = `acc-${slot}-${randomUUID().slice(0, 8)}`;
  const proxy: ToxicProxy = await toxiproxy.createProxy(
    name,
    { host: PROXY_HOST, port: PROXY_BASE_PORT + slot },
    upstream,
  );
  const samples: Sample[] = [];
  const prober = new Prober({
    runId,
    endpoint: benchEndpoint(name, c.db, proxy.listen, {
      connectionMode: c.mode,
      intervalMs: c.intervalMs,
      connectTimeoutMs: ATTEMPT_TIMEOUT_MS,
      queryTimeoutMs: ATTEMPT_TIMEOUT_MS,
      slowThresholdMs: SLOW_THRESHOLD_MS[c.mode],
    }),
    sink: (s) => samples.push(s),
  });
  const endpoint = benchEndpoint(name, c.db, proxy.listen, {});
  const reference = new ReferenceProber({
    db: c.db,
    ...proxy.listen,
    database: endpoint.database,
    user: endpoint.user,
    password: endpoint.password,
    slowMs: SLOW_THRESHOLD_MS[c.mode],
    reconnectAllowanceMs: c.mode === 'pooled' ? RECONNECT_ALLOWANCE_MS : 0,
  });
  // BENCH_DEBUG: the event loop's longest stall in the case (a tick that late is skipped), and
  // the CPU this process used in it: about as much means its own work, much less means it
  // waited for a core (descheduled, or blocked in the kernel).
  const stall = process.env.BENCH_DEBUG ? new LoopStallWatch() : undefined;
  let schedulerStats: ReturnType<Prober['stats']> = {};
  let injected: InjectedWindow;
  let observationEndMs: number;
  try {
    await prober.setup();
    reference.start();
    prober.start();
    await sleep(BASELINE_MS);
    injected = await proxy.inject(c.fault, c.injectMs, { latencyMs: LATENCY_MS });
    const end = injected.endMs;
    await waitUntil(
      () => samples.filter((s) => s.startMs > end && s.class === 'ok').length >= GOOD_AFTER,
      RECOVERY_LIMIT_MS,
    );
    observationEndMs = nowMs();
  } finally {
    schedulerStats = prober.stats();
    stall?.stop();
    await Promise.all([prober.stop(), reference.stop()]);
    await toxiproxy.deleteProxy(name).catch(() => {});
  }
  // The bench probes one kind (write): its scheduler's skips are all the case's.
  const w = schedulerStats.write;
  const result = analyse(
    c,
    injected,
    samples,
    observationEndMs,
    (w?.skippedLate ?? 0) + (w?.skippedInFlightCap ?? 0),
  );
  // The same phase as failwatch's analysis: from the fault's start to the end of observation.
  const seen = reference.outage({ startMs: injected.startMs, endMs: observationEndMs });
  if (seen) {
    result.referenceMs = seen.estimateMs;
    result.referenceWindows = seen.windows;
    result.referenceStartMs = seen.startMs - injected.startMs;
    result.referenceEndMs = seen.endMs - injected.endMs;
    if (result.measuredMs !== null) {
      result.referenceErrorMs = result.measuredMs - result.referenceMs;
      result.withinReference =
        Math.abs(result.referenceErrorMs) <= result.toleranceMs && result.windows === 1 && seen.windows === 1;
    }
  }
  if (process.env.BENCH_DEBUG) {
    console.log(
      `case ${caseLabel(c)}: skipped late ${w?.skippedLate ?? 0}, at the in-flight cap ${w?.skippedInFlightCap ?? 0} (most in flight ${w?.maxInFlightSeen ?? 0}); ${stall?.describe(injected.startMs) ?? ''}`,
    );
    debugEdges(injected, samples, c.intervalMs);
    debugReference(injected, reference.attempts);
    if (pgLog && c.db === 'postgresql') debugLogins(injected, pgLog);
  }
  return result;
}

/** Watches the event loop with a 5 ms timer: its longest gap, when, and the CPU used in it. */
class LoopStallWatch {
  readonly #timer: NodeJS.Timeout;
  #lastMs = nowMs();
  #last = process.resourceUsage();
  #worst = { gapMs: 0, atMs: 0, cpuMs: 0, involuntary: 0, voluntary: 0 };

  constructor() {
    this.#timer = setInterval(() => {
      const t = nowMs();
      const u = process.resourceUsage();
      if (t - this.#lastMs > this.#worst.gapMs)
        this.#worst = {
          gapMs: t - this.#lastMs,
          atMs: this.#lastMs,
          cpuMs: (u.userCPUTime + u.systemCPUTime - this.#last.userCPUTime - this.#last.systemCPUTime) / 1000,
          // Preempted (a core taken by another task) against waiting of its own accord.
          involuntary: u.involuntaryContextSwitches - this.#last.involuntaryContextSwitches,
          voluntary: u.voluntaryContextSwitches - this.#last.voluntaryContextSwitches,
        };
      this.#lastMs = t;
      this.#last = u;
    }, 5);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  describe(faultStartMs: number): string {
    const w = this.#worst;
    return `event loop's longest gap ${w.gapMs.toFixed(1)} ms from ${(w.atMs - faultStartMs).toFixed(0)} ms (fault time), this process's CPU in it ${w.cpuMs.toFixed(1)} ms, context switches ${w.involuntary} involuntary / ${w.voluntary} voluntary`;
  }
}

function debugEdges(injected: InjectedWindow, samples: readonly Sample[], intervalMs: number): void {
  // Near an edge, or inside the call that ended the fault (Toxiproxy may take 100+ ms for it).
  const near = (t: number) =>
    Math.abs(t - injected.startMs) < 3 * intervalMs + 20 ||
    Math.abs(t - injected.endMs) < 3 * intervalMs + 20 ||
    (t >= injected.endSentMs && t <= injected.endMs);
  const rel = (t: number) => (t - injected.startMs).toFixed(1);
  console.log(
    `injected: sent ${rel(injected.startSentMs)} start 0 endSent ${rel(injected.endSentMs)} end ${rel(injected.endMs)}`,
  );
  // Also every bad attempt after the fault's end: a second window starts there.
  for (const s of [...samples].sort((a, b) => a.startMs - b.startMs))
    if (near(s.startMs) || near(s.endMs) || (s.class !== 'ok' && s.startMs > injected.endMs))
      console.log(
        `  seq ${s.seq} ${rel(s.startMs)} .. ${rel(s.endMs)} ${s.class} ${s.code ?? ''} ${(s.message ?? '').slice(0, 60)}`,
      );
}

/** The reference's attempts that failed or stalled and ended after the fault's end. */
function debugReference(injected: InjectedWindow, attempts: readonly ReferenceAttempt[]): void {
  const rel = (t: number) => (t - injected.startMs).toFixed(1);
  const late = attempts.filter((a) => !a.ok && a.endMs > injected.endMs);
  console.log(
    `  reference: ${attempts.length} attempts, ${late.length} bad ones ended after the fault's end`,
  );
  for (const a of late.slice(0, 20))
    console.log(
      `  ref ${rel(a.startMs)} .. ${rel(a.endMs)} ${a.slow ? 'slow' : 'failed'}${a.connectMs === undefined ? '' : ` (connect ${a.connectMs.toFixed(1)} ms)`}`,
    );
}

/**
 * PostgreSQL's logins around the fault's end, from its log (log_connections on; meaningful
 * with one case at a time: `--cases`): backends started ("received") and logins done
 * ("authorized") during the fault and after its end, in bins relative to the end.
 */
function debugLogins(injected: InjectedWindow, pgLog: string): void {
  const bins = [0, 25, 50, 100, 200, 400];
  const kinds = ['received', 'authorized'] as const;
  const counts = Object.fromEntries(
    kinds.map((kind) => [kind, { during: 0, after: bins.map(() => 0), last: Number.NEGATIVE_INFINITY }]),
  );
  // One read of the log for both kinds of line.
  for (const line of readFileSync(pgLog, 'utf8').split('\n')) {
    const kind = kinds.find((k) => line.includes(`connection ${k}`));
    if (!kind) continue;
    const t = Date.parse(`${line.slice(0, 23).replace(' ', 'T')}Z`);
    if (!(t >= injected.startMs - 50)) continue;
    const c = counts[kind]!;
    const sinceEnd = t - injected.endMs;
    if (sinceEnd < 0) c.during++;
    else if (sinceEnd < 1000) c.after[bins.findLastIndex((b) => sinceEnd >= b)]!++;
    if (sinceEnd < 1000) c.last = Math.max(c.last, sinceEnd);
  }
  for (const kind of kinds) {
    const c = counts[kind]!;
    const binText = bins.map((b, i) => `${b}..${bins[i + 1] ?? 1000}:${c.after[i]}`).join(' ');
    console.log(
      `  PostgreSQL logins: ${kind} during the fault ${c.during}; after its end (ms: count) ${binText}; last +${c.last.toFixed(0)} ms`,
    );
  }
}

export function analyse(
  c: AccuracyCase,
  injected: InjectedWindow,
  samples: readonly Sample[],
  observationEndMs: number,
  skipped: number,
): AccuracyResult {
  const injectedMs = injected.endMs - injected.startMs;
  const toleranceMs = c.intervalMs + 10;
  const d = downtime(outageWindows(samples), { startMs: injected.startMs, endMs: observationEndMs });
  const first = d.windows[0];
  const last = d.windows.at(-1);
  const upperMs = first ? d.upperBoundMs : null;
  const lowerMs = first ? d.lowerBoundMs : null;
  const measuredMs = first ? d.estimateMs : null;
  const errorMs = measuredMs === null ? null : measuredMs - injectedMs;
  const upperErrorMs = upperMs === null ? null : upperMs - injectedMs;
  const lowerErrorMs = lowerMs === null ? null : lowerMs - injectedMs;
  const classes: Partial<Record<ErrorClass, number>> = {};
  let badAttempts = 0;
  for (const w of d.windows) {
    badAttempts += w.badAttempts;
    for (const [k, n] of Object.entries(w.classes) as [ErrorClass, number][])
      classes[k] = (classes[k] ?? 0) + n;
  }
  let pendingPastEnd = 0;
  let pendingPastEndMaxMs = 0;
  const windowEnd = last?.endMs ?? null;
  if (first && windowEnd !== null) {
    for (const s of samples) {
      if (s.class === 'ok' || s.startMs < first.startMs || s.startMs > windowEnd) continue;
      if (s.endMs > windowEnd) {
        pendingPastEnd++;
        pendingPastEndMaxMs = Math.max(pendingPastEndMaxMs, s.endMs - windowEnd);
      }
    }
  }
  const result: AccuracyResult = {
    case: c,
    injected,
    injectedMs,
    measuredMs,
    upperMs,
    lowerMs,
    errorMs,
    upperErrorMs,
    lowerErrorMs,
    toleranceMs,
    within: errorMs !== null && Math.abs(errorMs) <= toleranceMs && d.windows.length === 1 && d.recovered,
    windows: d.windows.length,
    startErrorMs: first ? first.estimateStartMs - injected.startMs : null,
    endErrorMs: last?.estimateEndMs == null ? null : last.estimateEndMs - injected.endMs,
    attempts: samples.length,
    badAttempts,
    classes,
    pendingPastEnd,
    pendingPastEndMaxMs,
    attemptP50Ms: median(
      samples
        .filter((s) => s.class === 'ok' && s.endMs < injected.startSentMs)
        .map((s) => s.endMs - s.startMs),
    ),
    skipped,
    referenceMs: null,
    referenceWindows: 0,
    referenceStartMs: null,
    referenceEndMs: null,
    referenceErrorMs: null,
    withinReference: false,
  };
  if (!first) result.note = 'no outage measured';
  else if (!d.recovered) result.note = 'not recovered when observation ended';
  else if (d.windows.length > 1) result.note = `${d.windows.length} windows`;
  return result;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Relative CPU cost of a case, for packing cases that run at once. */
export function caseWeight(c: AccuracyCase): number {
  if (c.intervalMs < 100) return c.mode === 'fresh' ? 10 : 2;
  return c.mode === 'fresh' ? 1 : 0.3;
}

/**
 * PostgreSQL's cases run one at a time (MariaDB's are packed around them). PostgreSQL forks a
 * backend per connection, and on this 2-core machine a neighbour's reconnects (a pooled or a
 * reference client under a reset fault opens 100-200 connections a second) slowed a case's
 * logins and statements after its own fault had ended: on 3 December a 100 ms pooled case's
 * first attempt after a blackhole was 88 ms slow (2,175 connections reached PostgreSQL during
 * its fault, ~145 a second, from its neighbours), a second window; the reference saw 65-80 ms
 * `SELECT 1` answers 270-440 ms after a 0.2 s refuse fault. That measures the neighbours, not
 * the instrument.
 */
const ONE_AT_A_TIME: ReadonlySet<BenchDb> = new Set(['postgresql']);

/**
 * Fresh connections every 10 ms load the machine most: such cases run one at a time. So do
 * PostgreSQL's pooled 10 ms cases: after a reset or blackhole fault every tick reconnects, and
 * each reconnect makes Toxiproxy open a server connection, a backend fork (26 ms here), 100 a
 * second; three of them at once kept PostgreSQL saturated for the rest of the run.
 */
function isExclusive(c: AccuracyCase): boolean {
  return c.intervalMs < 100 && (c.mode === 'fresh' || c.db === 'postgresql');
}

/** A server is settled when it sets up a connection within this factor of its quiet median. */
const SETTLED_FACTOR = 3;
const SETTLE_LIMIT_MS = 30_000;

/**
 * Waits until the server sets up connections about as fast as when the run began (median of
 * three, directly, no proxy): a case must not start inside the backlog an earlier case left.
 * Throws when it does not settle within SETTLE_LIMIT_MS (the case then fails to run, saying so).
 */
async function settled(db: BenchDb, target: HostPort, quietMs: number): Promise<void> {
  const deadline = performance.now() + SETTLE_LIMIT_MS;
  let lastMs = Number.POSITIVE_INFINITY;
  while (performance.now() < deadline) {
    lastMs = await serverSetupMs(db, target, 3).catch(() => Number.POSITIVE_INFINITY);
    if (lastMs <= SETTLED_FACTOR * quietMs) return;
    await sleep(1000);
  }
  throw new Error(
    `${db} did not settle: connection set-up ${lastMs.toFixed(0)} ms (median of 3) after ${SETTLE_LIMIT_MS / 1000} s, against ${quietMs.toFixed(1)} ms at the start`,
  );
}

/**
 * Server connections a case may hold: attempts hang through blackhole and latency faults, up
 * to the attempt deadline / interval of them, and every one of them is a server connection.
 */
function heldConnections(c: AccuracyCase): number {
  // Blackholed attempts hang in connect (the query phase never starts); latency-slowed ones
  // take a few delayed round trips; either way at most the connect deadline's worth of them.
  const hanging = c.fault === 'blackhole' || c.fault === 'latency';
  return Math.ceil((hanging ? ATTEMPT_TIMEOUT_MS : 50) / c.intervalMs) + 10;
}
/** PostgreSQL's max_connections is 200 in the lab's settings, MariaDB's 300; keep a margin. */
const CONNECTION_LIMIT: Record<BenchDb, number> = { postgresql: 190, mariadb: 290 };

export interface AccuracyOptions {
  toxiproxy: Toxiproxy;
  targets: Record<BenchDb, HostPort>;
  cases: AccuracyCase[];
  /** Sum of caseWeight of the cases running at once. */
  budget: number;
  onResult?: (r: AccuracyResult) => void;
  /** PostgreSQL's log with log_connections on: BENCH_DEBUG prints the logins around each fault's end. */
  pgLog?: string;
}

export interface FailedCase {
  case: AccuracyCase;
  error: string;
}

/** A case not run: fresh connections at its interval are more than the server sets up. */
export interface ServerBoundCase {
  case: AccuracyCase;
  /** The server's median connection set-up, ms (serverSetupMs). */
  setupMs: number;
}

/**
 * Median time to open one connection directly to the server (no proxy, raw driver, one after
 * another): what a fresh attempt costs the server at the least. PostgreSQL forks a backend per
 * connection (27-31 ms on the 2-core development machine in December 2026); MariaDB starts a
 * thread (a few ms).
 */
export async function serverSetupMs(db: BenchDb, target: HostPort, n = 15): Promise<number> {
  const e = benchEndpoint('setup-time', db, target, {});
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const conn = await openReference({
      db,
      host: e.host,
      port: e.port,
      database: e.database,
      user: e.user,
      password: e.password,
      slowMs: 0,
      reconnectAllowanceMs: 0,
    });
    times.push(performance.now() - t);
    conn.close();
  }
  return median(times)!;
}

/**
 * Fresh attempts ask for one new connection per interval. When that is more often than the
 * server sets one up, connections queue at the server (measured with raw node-postgres, no
 * failwatch code: 100 connections a second against a 27 ms set-up took 1.0-1.4 s each, p50),
 * every attempt is slow before any fault, and the backlog keeps the server saturated for
 * seconds after the case: the case measures the server, not the instrument.
 */
export function isServerBound(c: AccuracyCase, setupMs: Partial<Record<BenchDb, number>>): boolean {
  const ms = setupMs[c.db];
  return c.mode === 'fresh' && ms !== undefined && c.intervalMs < ms;
}

/**
 * Runs the cases, several at once (one proxy each): fresh 10 ms cases one after another (the
 * critical path, longest first), PostgreSQL's cases one at a time (ONE_AT_A_TIME), the others
 * packed around them within a CPU budget and the servers' connection limits.
 */
export async function runAccuracy(options: AccuracyOptions): Promise<{
  results: AccuracyResult[];
  failed: FailedCase[];
  serverBound: ServerBoundCase[];
  setupMs: Partial<Record<BenchDb, number>>;
}> {
  const runId = `bench-${randomUUID().slice(0, 8)}`;
  const setupMs: Partial<Record<BenchDb, number>> = {};
  for (const db of new Set(options.cases.map((c) => c.db)))
    setupMs[db] = await serverSetupMs(db, options.targets[db]);
  const serverBound = options.cases
    .filter((c) => isServerBound(c, setupMs))
    .map((c) => ({ case: c, setupMs: setupMs[c.db]! }));
  // The probe table, created once per server before cases set up concurrently.
  for (const db of new Set(options.cases.map((c) => c.db))) {
    const prober = new Prober({
      runId,
      endpoint: benchEndpoint('setup', db, options.targets[db], {}),
      sink: () => {},
    });
    await prober.setup();
    await prober.stop();
  }
  const queue = options.cases
    .filter((c) => !isServerBound(c, setupMs))
    .sort(
      (a, b) =>
        Number(isExclusive(b)) - Number(isExclusive(a)) ||
        b.injectMs - a.injectMs ||
        caseWeight(b) - caseWeight(a),
    );
  const results: AccuracyResult[] = [];
  const failed: FailedCase[] = [];
  const freeSlots = Array.from({ length: 100 }, (_, i) => i);
  const held: Record<BenchDb, number> = { postgresql: 0, mariadb: 0 };
  const runningOn: Record<BenchDb, number> = { postgresql: 0, mariadb: 0 };
  let load = 0;
  let exclusiveRunning = false;
  const running = new Set<Promise<void>>();
  const fits = (c: AccuracyCase) =>
    running.size === 0 ||
    (load + caseWeight(c) <= options.budget &&
      !(isExclusive(c) && exclusiveRunning) &&
      !(ONE_AT_A_TIME.has(c.db) && runningOn[c.db] > 0) &&
      held[c.db] + heldConnections(c) <= CONNECTION_LIMIT[c.db]);
  while (queue.length > 0 || running.size > 0) {
    const index = queue.findIndex(fits);
    if (index < 0) {
      await Promise.race(running);
      continue;
    }
    const c = queue.splice(index, 1)[0]!;
    const weight = caseWeight(c);
    const conns = heldConnections(c);
    const exclusive = isExclusive(c);
    const slot = freeSlots.shift()!;
    load += weight;
    held[c.db] += conns;
    runningOn[c.db]++;
    if (exclusive) exclusiveRunning = true;
    const task = (async () => {
      try {
        await settled(c.db, options.targets[c.db], setupMs[c.db]!);
        const r = await runCase(options.toxiproxy, options.targets[c.db], c, slot, runId, options.pgLog);
        results.push(r);
        options.onResult?.(r);
      } catch (err) {
        failed.push({ case: c, error: err instanceof Error ? err.message : String(err) });
      } finally {
        load -= weight;
        held[c.db] -= conns;
        runningOn[c.db]--;
        if (exclusive) exclusiveRunning = false;
        freeSlots.push(slot);
      }
    })();
    running.add(task);
    void task.finally(() => running.delete(task));
  }
  return { results: sortResults(results), failed, serverBound, setupMs };
}

function sortResults(results: AccuracyResult[]): AccuracyResult[] {
  const order = (r: AccuracyResult) => [
    DBS.indexOf(r.case.db),
    FAULTS.indexOf(r.case.fault),
    r.case.intervalMs,
    r.case.mode === 'fresh' ? 0 : 1,
    r.case.injectMs,
  ];
  return [...results].sort((a, b) => {
    const x = order(a);
    const y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  });
}

const CLASS_ABBREV: Partial<Record<ErrorClass, string>> = {
  connection_refused: 'refused',
  connection_lost: 'lost',
  connect_timeout: 'conn-to',
  query_timeout: 'query-to',
  too_many_connections: 'too-many',
};

function classSummary(classes: Partial<Record<ErrorClass, number>>): string {
  return (Object.entries(classes) as [ErrorClass, number][])
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${CLASS_ABBREV[k] ?? k} ${n}`)
    .join(', ');
}

const sec = (ms: number | null) => (ms === null ? '-' : (ms / 1000).toFixed(3));
const msSigned = (ms: number | null) => (ms === null ? '-' : `${ms >= 0 ? '+' : ''}${ms.toFixed(1)}`);

export function accuracyHeader(toxiproxyVersion: string): string {
  return `Accuracy against ground truth (Toxiproxy ${toxiproxyVersion} in front of real PostgreSQL and MariaDB)
- injected: from the return of the Toxiproxy API call that started the fault to the return of
  the call that ended it (each change is in effect when its call returns).
- window: the DESIGN outage window [lower .. upper]: upper = end of the last good attempt before
  the bad run to the end of the first good attempt after it (= reported downtime); lower = first
  bad start to last bad end. Each edge has the resolution of one interval, so upper - lower is
  about two intervals and the injected length lies between them.
- measured: the point estimate (results.json estimateSeconds: from the earliest evidence of
  unavailability to recovery, docs/results.md); err = measured - injected;
  within = |err| <= interval + 10 ms, one window, recovered. "upper err" shows how much the
  upper bound alone (the conservative downtime) exceeds the injected length: one to two intervals.
- edges: estimate start - injected start / estimate end - injected end.
- d: median duration of a good attempt before the fault; an edge cannot be placed more
  precisely than one attempt's duration.
- faults: refuse = proxy disabled (ECONNREFUSED, live connections closed); reset = reset_peer
  toxic; blackhole = timeout toxic with timeout 0 (data dropped; attempts hit their own 1 s
  deadlines); latency = latency toxic of ${LATENCY_MS} ms on the server's data, slow threshold
  ${SLOW_THRESHOLD_MS.fresh} ms (fresh) / ${SLOW_THRESHOLD_MS.pooled} ms (pooled). Expected window = injected duration for every fault, latency included:
  Toxiproxy releases held data when the toxic goes, and the window ends with the first good
  attempt in start order (a slow attempt still pending then counts only until it).
- write probes, connect and query deadlines ${ATTEMPT_TIMEOUT_MS} ms each.`;
}

export function formatAccuracyTable(
  results: readonly AccuracyResult[],
  failed: readonly FailedCase[],
): string {
  const head = [
    'db',
    'fault',
    'interval',
    'mode',
    'injected s',
    'measured s',
    '[lower .. upper] s',
    'err ms',
    'upper err',
    'edges ms',
    'd ms',
    'within',
    'classes (bad attempts)',
  ];
  const rows = results.map((r) => [
    r.case.db,
    r.case.fault,
    `${r.case.intervalMs} ms`,
    r.case.mode,
    sec(r.injectedMs),
    sec(r.measuredMs),
    `[${sec(r.lowerMs)} .. ${sec(r.upperMs)}]`,
    msSigned(r.errorMs),
    msSigned(r.upperErrorMs),
    `${msSigned(r.startErrorMs)}/${msSigned(r.endErrorMs)}`,
    r.attemptP50Ms === null ? '-' : r.attemptP50Ms.toFixed(1),
    r.within ? 'yes' : `NO${r.note ? ` (${r.note})` : ''}`,
    classSummary(r.classes),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const right = new Set([4, 5, 7, 8, 9, 10]);
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i === cells.length - 1 ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!),
      )
      .join(' | ')
      .trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)];
  for (const f of failed) out.push(`FAILED ${caseLabel(f.case)}: ${f.error}`);
  return out.join('\n');
}

export interface AccuracySummary {
  cases: number;
  within: number;
  upperWithin: number;
  bracketed: number;
  failed: number;
  /** Cases whose measured window is within interval + 10 ms of the reference client's. */
  withinReference: number;
  /** Cases where the reference client saw an outage. */
  withReference: number;
  /**
   * Cases within the reference, or whose two instruments both placed both edges inside the
   * Toxiproxy calls that began and ended the fault (edgesInsideCalls).
   */
  withinReferenceOrCalls: number;
  /** Cases off the reference by more than interval + 10 ms (each with its edges and call spans). */
  offReference: string[];
  outside: string[];
  /** Cases where the reference and the injected window differ by more than 10 ms. */
  referenceDiffers: string[];
}

/**
 * Whether both instruments saw one window whose edges both lie inside the Toxiproxy calls that
 * began and ended the fault, give or take the case's tolerance: [sent - tolerance, returned +
 * tolerance]. Toxiproxy changes a fault on every live connection, one by one, before the call
 * returns (closing ~100 hung connections took 66-202 ms on 3 December), so a connection may see
 * the fault begin or end anywhere inside the call; the injected window takes the returns. Two
 * clients whose edges are both inside can differ by up to both calls' durations, neither of
 * them placing an edge where the fault was not changing. An edge outside (e.g. a window begun
 * before the start call was sent) is a miss here too.
 */
export function edgesInsideCalls(r: AccuracyResult): boolean {
  const { startCallMs, endCallMs } = faultCallsMs(r.injected);
  const tol = r.toleranceMs;
  const inside = (edge: number | null, callMs: number) =>
    edge !== null && edge >= -callMs - tol && edge <= tol;
  return (
    r.windows === 1 &&
    r.referenceWindows === 1 &&
    inside(r.startErrorMs, startCallMs) &&
    inside(r.endErrorMs, endCallMs) &&
    inside(r.referenceStartMs, startCallMs) &&
    inside(r.referenceEndMs, endCallMs)
  );
}

/** How long the Toxiproxy calls that began and ended the fault took. */
function faultCallsMs(w: InjectedWindow): { startCallMs: number; endCallMs: number } {
  return { startCallMs: w.startMs - w.startSentMs, endCallMs: w.endMs - w.endSentMs };
}

export function summarizeAccuracy(
  results: readonly AccuracyResult[],
  failed: readonly FailedCase[],
): AccuracySummary {
  const outside = results
    .filter((r) => !r.within)
    .map(
      (r) =>
        `${caseLabel(r.case)}: err ${msSigned(r.errorMs)} ms (tolerance ${r.toleranceMs}), window edges ${msSigned(r.startErrorMs)} / ${msSigned(r.endErrorMs)} ms, d ${r.attemptP50Ms?.toFixed(1) ?? '-'} ms${r.note ? `, ${r.note}` : ''}`,
    );
  return {
    cases: results.length + failed.length,
    within: results.filter((r) => r.within).length,
    upperWithin: results.filter((r) => r.upperErrorMs !== null && Math.abs(r.upperErrorMs) <= r.toleranceMs)
      .length,
    bracketed: results.filter(
      (r) =>
        r.lowerMs !== null &&
        r.upperMs !== null &&
        r.lowerMs - 10 <= r.injectedMs &&
        r.injectedMs <= r.upperMs + 10,
    ).length,
    failed: failed.length,
    withinReference: results.filter((r) => r.withinReference).length,
    withinReferenceOrCalls: results.filter((r) => r.withinReference || edgesInsideCalls(r)).length,
    offReference: results
      .filter((r) => !r.withinReference)
      .map((r) => {
        const calls = faultCallsMs(r.injected);
        return `${caseLabel(r.case)}: failwatch ${msSigned(r.referenceErrorMs)} ms vs reference (tolerance ${r.toleranceMs}); edges vs injected: failwatch ${msSigned(r.startErrorMs)} / ${msSigned(r.endErrorMs)} ms, reference ${msSigned(r.referenceStartMs)} / ${msSigned(r.referenceEndMs)} ms; fault calls ${calls.startCallMs.toFixed(1)} / ${calls.endCallMs.toFixed(1)} ms; windows ${r.windows} / ${r.referenceWindows}${edgesInsideCalls(r) ? '; both inside the calls' : ''}${r.note ? `; ${r.note}` : ''}`;
      }),
    withReference: results.filter((r) => r.referenceMs !== null).length,
    outside,
    referenceDiffers: results
      .filter((r) => r.referenceMs !== null && Math.abs(r.referenceMs - r.injectedMs) > 10)
      .map(
        (r) =>
          `${caseLabel(r.case)}: reference ${msSigned(r.referenceMs! - r.injectedMs)} ms vs injected (edges ${msSigned(r.referenceStartMs)} / ${msSigned(r.referenceEndMs)} ms); failwatch ${msSigned(r.referenceErrorMs)} ms vs reference`,
      ),
  };
}
