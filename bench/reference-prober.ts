// The accuracy bench's second instrument: a deliberately simple client that shares no code
// with failwatch's prober (raw `pg` / `mysql2`: no failwatch scheduler, pool, deadline or
// driver), asking the same proxy every 2 ms for `SELECT 1` on a kept connection, reconnecting
// on the next tick when it broke. Its attempts are then judged by failwatch's own definitions
// (docs/results.md): an answer is good within the case's slow threshold, a reconnect counting
// only beyond the allowance failwatch gives the case's connection mode (RECONNECT_ALLOWANCE_MS
// for pooled probes, none for fresh ones), and its outage is the point estimate of failwatch's
// analysis (`outageWindows`, `downtime`) over those attempts. So the two instruments differ in
// how they measure (client, schedule, pool, resolution), not in what they count; the injected
// window checks the definitions. Both run in the bench's one process.
// Attempts overlap (at most MAX_IN_FLIGHT) so a hung one hides nothing. New connections are
// opened at most MAX_CONNECTING at a time and at most one every CONNECT_GAP_MS (a tick that
// would open one more records nothing): a client that opened one per 2 ms tick while the server
// came back (50 logins at once, each timing out and retried) kept PostgreSQL saturated for
// seconds after a refuse fault ended, and the bench measured that storm instead of the fault;
// and under a reset fault, where every connection fails at once, a new one every 2 ms made
// PostgreSQL fork up to 500 backends a second for the reference alone, which slowed the logins
// of every other case running then (docs/accuracy.md). Its resolution is therefore 2 ms only
// while it has an idle connection: through a blackhole its kept connections hang, and it opens
// a new one at most every 5 ms (two at a time, each hanging up to its 1 s deadline).
import mysql from 'mysql2/promise';
import pg from 'pg';
import { downtime } from '../src/analysis/downtime.ts';
import { outageWindows } from '../src/analysis/outage-windows.ts';
import type { Sample } from '../src/analysis/sample.ts';

const TICK_MS = 2;
const MAX_IN_FLIGHT = 50;
const MAX_CONNECTING = 2;
const CONNECT_GAP_MS = 5;
const TIMEOUT_MS = 1000;

export interface ReferenceTarget {
  db: 'postgresql' | 'mariadb';
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** An answer slower than this counts as a failure (a stall), as failwatch's slow threshold. */
  slowMs: number;
  /** Reconnect time not held against slowMs: failwatch's for the case's mode (pooled 250 ms, fresh 0). */
  reconnectAllowanceMs: number;
}

export interface ReferenceAttempt {
  startMs: number;
  endMs: number;
  ok: boolean;
  /** Answered, but slower than the threshold: a stall. */
  slow: boolean;
  /** Set when the attempt opened its connection: how long that took (or until it failed). */
  connectMs?: number;
  /** Failed at its own deadline (TIMEOUT_MS) while connecting or querying, not by an answer or a closed connection. */
  timedOut?: 'connect' | 'query';
}

/**
 * Whether an answered attempt was good: its query within `slowMs`, counting the part of its
 * reconnect (from its start to the query's) beyond `allowanceMs`.
 */
export function answeredInTime(
  t: { startMs: number; queryStartMs: number; endMs: number },
  slowMs: number,
  allowanceMs: number,
): boolean {
  const reconnectMs = t.queryStartMs - t.startMs;
  return t.endMs - t.queryStartMs + Math.max(0, reconnectMs - allowanceMs) <= slowMs;
}

/**
 * An attempt as failwatch's analysis sees a sample: good, a stall, a timeout (evidence at its
 * start only) or an error (evidence at its end, or over its whole length when it hung).
 */
export function asSample(a: ReferenceAttempt, seq: number): Sample {
  const cls = a.ok
    ? 'ok'
    : a.slow
      ? 'slow'
      : a.timedOut === 'connect'
        ? 'connect_timeout'
        : a.timedOut === 'query'
          ? 'query_timeout'
          : 'connection_lost';
  return { endpoint: 'reference', kind: 'read', seq, startMs: a.startMs, endMs: a.endMs, class: cls };
}

interface Conn {
  query(): Promise<unknown>;
  close(): void;
}

const now = () => performance.timeOrigin + performance.now();

/** One raw connection (pg or mysql2), nothing of failwatch's. */
export async function openReference(t: ReferenceTarget): Promise<{ close(): void }> {
  return open(t);
}

async function open(t: ReferenceTarget): Promise<Conn> {
  const { host, port, database, user, password } = t;
  if (t.db === 'postgresql') {
    const client = new pg.Client({
      host,
      port,
      database,
      user,
      password,
      // Backstops only: the attempt's own deadline (withTimeout) comes first and says timeout.
      connectionTimeoutMillis: 2 * TIMEOUT_MS,
      query_timeout: 2 * TIMEOUT_MS,
    });
    client.on('error', () => {});
    await client.connect();
    return { query: () => client.query('SELECT 1'), close: () => void client.end().catch(() => {}) };
  }
  const conn = await mysql.createConnection({
    host,
    port,
    database,
    user,
    password,
    connectTimeout: 2 * TIMEOUT_MS,
  });
  conn.on('error', () => {});
  return {
    query: () => conn.query({ sql: 'SELECT 1', timeout: 2 * TIMEOUT_MS }),
    close: () => conn.destroy(),
  };
}

export class ReferenceProber {
  readonly #target: ReferenceTarget;
  readonly #attempts: ReferenceAttempt[] = [];
  readonly #idle: Conn[] = [];
  #inFlight = 0;
  #connecting = 0;
  #lastConnectMs = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;

  constructor(target: ReferenceTarget) {
    this.#target = target;
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#inFlight < MAX_IN_FLIGHT) void this.#attempt();
    }, TICK_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    while (this.#inFlight > 0) await new Promise((r) => setTimeout(r, 10));
    for (const c of this.#idle.splice(0)) c.close();
  }

  async #attempt(): Promise<void> {
    const idle = this.#idle.pop();
    if (!idle && (this.#connecting >= MAX_CONNECTING || now() - this.#lastConnectMs < CONNECT_GAP_MS)) return;
    this.#inFlight++;
    const startMs = now();
    let conn: Conn | undefined = idle;
    let ok = false;
    let slow = false;
    let answered = false;
    let connectMs: number | undefined;
    let timedOut: ReferenceAttempt['timedOut'];
    try {
      if (!conn) {
        this.#connecting++;
        this.#lastConnectMs = startMs;
        try {
          conn = await withTimeout(open(this.#target));
        } finally {
          this.#connecting--;
          connectMs = now() - startMs;
        }
      }
      const queryStartMs = now();
      await withTimeout(conn.query());
      answered = true;
      ok = answeredInTime(
        { startMs, queryStartMs, endMs: now() },
        this.#target.slowMs,
        this.#target.reconnectAllowanceMs,
      );
      slow = !ok;
    } catch (err) {
      // A failure, and whether it was the attempt's own deadline, is all the reference records.
      if (err instanceof ReferenceTimeout) timedOut = conn ? 'query' : 'connect';
    }
    const attempt: ReferenceAttempt = { startMs, endMs: now(), ok, slow };
    if (connectMs !== undefined) attempt.connectMs = connectMs;
    if (timedOut) attempt.timedOut = timedOut;
    this.#attempts.push(attempt);
    if (conn && answered && this.#idle.length < 4) this.#idle.push(conn);
    else conn?.close();
    this.#inFlight--;
  }

  get attempts(): readonly ReferenceAttempt[] {
    return this.#attempts;
  }

  /** The outage this client saw in the observation phase, or null (see referenceOutage). */
  outage(phase: { startMs: number; endMs: number }): ReferenceOutage | null {
    return referenceOutage(this.#attempts, phase);
  }
}

export interface ReferenceOutage {
  /** The first window's estimated start and the last one's estimated end. */
  startMs: number;
  endMs: number;
  /** The sum of the windows' estimates (failwatch's `estimateSeconds`). */
  estimateMs: number;
  windows: number;
}

/**
 * The outage a reference client's attempts show in the observation phase (from the fault's
 * start to the end of observation), by failwatch's analysis; null when it saw none, or did not
 * see the path recover.
 */
export function referenceOutage(
  attempts: readonly ReferenceAttempt[],
  phase: { startMs: number; endMs: number },
): ReferenceOutage | null {
  const samples = [...attempts].sort((a, b) => a.startMs - b.startMs).map(asSample);
  const d = downtime(outageWindows(samples), phase);
  const first = d.windows[0];
  const last = d.windows.at(-1);
  if (!first || !last || !d.recovered || last.estimateEndMs === null) return null;
  return {
    startMs: first.estimateStartMs,
    endMs: last.estimateEndMs,
    estimateMs: d.estimateMs,
    windows: d.windows.length,
  };
}

class ReferenceTimeout extends Error {}

function withTimeout<T>(p: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new ReferenceTimeout(`no answer within ${TIMEOUT_MS} ms`)),
      TIMEOUT_MS,
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
