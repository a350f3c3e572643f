// The accuracy bench's second instrument: a deliberately simple client, independent of
// failwatch (raw `pg` / `mysql2`, no failwatch code), that asks the same proxy every 2 ms
// whether it answers `SELECT 1` within the case's slow threshold, on a kept connection,
// reconnecting on the next tick when it broke. A reconnect is judged as failwatch judges a
// pooled one (the only definition the two share): up to RECONNECT_ALLOWANCE_MS of it is not
// held against the threshold, the rest is. Before, a reconnect was never counted, so an attempt
// whose login waited behind a server's backlog for 100+ ms after a stall counted as a good
// answer from its start, where failwatch (and the client) waited. Its outage is
// what such a minimal client saw, at 2 ms resolution: from the end of its last good answer
// before its first failure to the start of its first good attempt after its last failure, or
// to the end of its last stall if that is later: an answer slower than the threshold, or an
// error that came after hanging longer than HUNG_ERROR_MS (a connection closed under a held
// attempt; failwatch's rule too). A timeout says nothing of when the path came back.
// Attempts overlap (at most MAX_IN_FLIGHT) so a hung one hides nothing. New connections are
// opened at most MAX_CONNECTING at a time and at most one every CONNECT_GAP_MS (a tick that
// would open one more records nothing): a client that opened one per 2 ms tick while the server
// came back (50 logins at once, each timing out and retried) kept PostgreSQL saturated for
// seconds after a refuse fault ended, and the bench measured that storm instead of the fault;
// and under a reset fault, where every connection fails at once, a new one every 2 ms made
// PostgreSQL fork up to 500 backends a second for the reference alone, which slowed the logins
// of every other case running then (docs/accuracy.md).
import mysql from 'mysql2/promise';
import pg from 'pg';
import { HUNG_ERROR_MS } from '../src/analysis/outage-windows.ts';
import { RECONNECT_ALLOWANCE_MS } from '../src/probe/prober.ts';

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
}

export interface ReferenceAttempt {
  startMs: number;
  endMs: number;
  ok: boolean;
  /** Answered, but slower than the threshold: a stall. */
  slow: boolean;
  /** Set when the attempt opened its connection: how long that took (or until it failed). */
  connectMs?: number;
  /** Failed at its own deadline (TIMEOUT_MS), not by an answer or a closed connection. */
  timedOut?: boolean;
}

/** Until when a bad attempt shows the path unavailable beyond its start, if it does. */
function stallEndMs(a: ReferenceAttempt): number | undefined {
  if (a.ok) return undefined;
  if (a.slow) return a.endMs;
  return !a.timedOut && a.endMs - a.startMs > HUNG_ERROR_MS ? a.endMs : undefined;
}

/**
 * Whether an answered attempt was good: its query within `slowMs`, counting the part of its
 * reconnect (from its start to the query's) beyond RECONNECT_ALLOWANCE_MS.
 */
export function answeredInTime(
  t: { startMs: number; queryStartMs: number; endMs: number },
  slowMs: number,
): boolean {
  const reconnectMs = t.queryStartMs - t.startMs;
  return t.endMs - t.queryStartMs + Math.max(0, reconnectMs - RECONNECT_ALLOWANCE_MS) <= slowMs;
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
      connectionTimeoutMillis: TIMEOUT_MS,
      query_timeout: TIMEOUT_MS,
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
    connectTimeout: TIMEOUT_MS,
  });
  conn.on('error', () => {});
  return {
    query: () => conn.query({ sql: 'SELECT 1', timeout: TIMEOUT_MS }),
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
    let timedOut = false;
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
      ok = answeredInTime({ startMs, queryStartMs, endMs: now() }, this.#target.slowMs);
      slow = !ok;
    } catch (err) {
      // A failure, and whether it was the attempt's own deadline, is all the reference records.
      timedOut = err instanceof ReferenceTimeout;
    }
    const attempt: ReferenceAttempt = { startMs, endMs: now(), ok, slow };
    if (connectMs !== undefined) attempt.connectMs = connectMs;
    if (timedOut) attempt.timedOut = true;
    this.#attempts.push(attempt);
    if (conn && answered && this.#idle.length < 4) this.#idle.push(conn);
    else conn?.close();
    this.#inFlight--;
  }

  get attempts(): readonly ReferenceAttempt[] {
    return this.#attempts;
  }

  /** The outage this client saw around [fromMs, toMs] (the injected window), or null. */
  outage(fromMs: number, toMs: number): { startMs: number; endMs: number } | null {
    return referenceOutage(this.#attempts, fromMs, toMs);
  }
}

/** The outage a reference client's attempts show around [fromMs, toMs], or null. */
export function referenceOutage(
  attempts: readonly ReferenceAttempt[],
  fromMs: number,
  toMs: number,
): { startMs: number; endMs: number } | null {
  const sorted = [...attempts].sort((a, b) => a.startMs - b.startMs);
  // Failures that ended well before the fault (e.g. while the first connections were being
  // opened) are not this outage.
  const bad = sorted.filter((a) => !a.ok && a.endMs >= fromMs - 50 && a.startMs <= toMs + 5000);
  if (bad.length === 0) return null;
  const firstBad = bad[0]!;
  const lastBad = bad.at(-1)!;
  // Good answers that came before the first failure did: an attempt that started before it but
  // answered later (a login held by a latency fault, within the reconnect allowance) does not
  // move the outage's start past the failure.
  const before = sorted.filter((a) => a.ok && a.startMs < firstBad.startMs && a.endMs <= firstBad.endMs);
  const after = sorted.find((a) => a.ok && a.startMs > lastBad.startMs);
  if (!after) return null;
  const startMs = before.length > 0 ? Math.max(...before.map((a) => a.endMs)) : firstBad.startMs;
  // A client stuck in a stall waits until it ends: recovery is not before the last stall's
  // end, even when an attempt started after it (its answer released with the stall's) was
  // fast; nor past the first good answer's end. The same rule as failwatch's estimate
  // (docs/results.md), at 2 ms resolution.
  const stallEnds = bad.map(stallEndMs).filter((t): t is number => t !== undefined);
  const endMs = Math.min(after.endMs, Math.max(...stallEnds, after.startMs));
  return { startMs: Math.min(startMs, firstBad.endMs), endMs };
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
