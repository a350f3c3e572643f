// Where an attempt gets its connection.
// - fresh: a new connection per attempt, closed politely afterwards (in the background: the
//   goodbye is not part of the attempt).
// - pooled: a few persistent connections, like an application's pool. An attempt takes the
//   most recently used idle one or opens a new one (never waits for one: waiting would hide
//   the outage behind the pool). A connection that broke is never reused. One that died while
//   idle (e.g. 57P01 on a fast shutdown) is reported by the next attempt, as an application
//   would see it; all idle connections that died by then are dropped together, so one event
//   that kills the whole pool is one error, not one error per connection smeared over later
//   attempts.
import { monotonicNow } from './clock.ts';
import type { DbSession } from './db-session.ts';
import { DeadlineError, type DeadlinePhase, withDeadline } from './deadline.ts';

const CLOSE_GRACE_MS = 1000;

export type Acquired<S extends DbSession> =
  /** `openMs`: how long opening took, when this attempt opened it (not any wait before). */
  | { session: S; opened: boolean; openMs?: number }
  /** A pooled connection died while idle; the attempt reports this cause. */
  | { diedIdle: unknown; connectAddr: string | undefined };

export interface SessionSource<S extends DbSession> {
  acquire(): Promise<Acquired<S>>;
  /** Hands a connection back; `reusable` false destroys it. */
  release(session: S, reusable: boolean): void;
  close(): Promise<void>;
}

/** Opens a connection; sets `progress.phase` to 'resolve' while it resolves the name. */
export type Opener<S extends DbSession> = (
  signal: AbortSignal,
  progress: { phase: DeadlinePhase },
) => Promise<S>;

abstract class BaseSource<S extends DbSession> implements SessionSource<S> {
  protected readonly open: Opener<S>;
  protected readonly connectTimeoutMs: number;
  readonly #closing = new Set<Promise<void>>();

  constructor(open: Opener<S>, connectTimeoutMs: number) {
    this.open = open;
    this.connectTimeoutMs = connectTimeoutMs;
  }

  protected async openNew(): Promise<{ session: S; opened: true; openMs: number }> {
    const progress: { phase: DeadlinePhase } = { phase: 'connect' };
    const started = monotonicNow();
    const session = await withDeadline(
      () => progress.phase,
      this.connectTimeoutMs,
      (signal) => this.open(signal, progress),
    );
    return { session, opened: true, openMs: monotonicNow() - started };
  }

  protected closeInBackground(session: S): void {
    const closing = session.close(CLOSE_GRACE_MS).catch(() => session.destroy());
    this.#closing.add(closing);
    void closing.finally(() => this.#closing.delete(closing));
  }

  protected async drain(): Promise<void> {
    await Promise.all([...this.#closing]);
  }

  abstract acquire(): Promise<Acquired<S>>;
  abstract release(session: S, reusable: boolean): void;
  abstract close(): Promise<void>;
}

export class FreshSessions<S extends DbSession> extends BaseSource<S> {
  acquire(): Promise<Acquired<S>> {
    return this.openNew();
  }

  release(session: S, reusable: boolean): void {
    if (reusable) this.closeInBackground(session);
    else session.destroy();
  }

  close(): Promise<void> {
    return this.drain();
  }
}

export class PooledSessions<S extends DbSession> extends BaseSource<S> {
  readonly #poolSize: number;
  #idle: S[] = [];
  #closed = false;

  constructor(open: Opener<S>, connectTimeoutMs: number, poolSize: number) {
    super(open, connectTimeoutMs);
    this.#poolSize = Math.max(1, poolSize);
  }

  get idleCount(): number {
    return this.#idle.length;
  }

  async acquire(): Promise<Acquired<S>> {
    // Checked without allocating: this runs on every pooled attempt.
    if (this.#idle.some((s) => s.dead)) {
      const dead = this.#idle.filter((s) => s.dead);
      this.#idle = this.#idle.filter((s) => !s.dead);
      for (const s of dead) s.destroy();
      const first = dead[0]!;
      return { diedIdle: first.deathCause, connectAddr: first.connectAddr };
    }
    const session = this.#idle.pop();
    if (session) return { session, opened: false };
    return this.openNew();
  }

  release(session: S, reusable: boolean): void {
    if (!reusable || session.dead) session.destroy();
    else if (this.#closed || this.#idle.length >= this.#poolSize) this.closeInBackground(session);
    else this.#idle.push(session);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle;
    this.#idle = [];
    for (const s of idle) this.closeInBackground(s);
    await this.drain();
  }
}

/**
 * An application's pool with a maximum size (the wrapper stack): at most `maxOpen` sessions
 * exist; an attempt that finds none idle and the pool full waits for one (first come, first
 * served) up to the connect deadline, as a request waits for a pooled client. The wait is part
 * of the attempt: an attempt held behind a failing-over client is slow or times out. A client
 * of the wrapper is heavy (its own monitors and, in a failover, its own reconnects), so the pool
 * does not grow with the outage as the plain driver's does.
 */
export class BoundedPooledSessions<S extends DbSession> extends BaseSource<S> {
  readonly #maxOpen: number;
  #open = 0;
  #idle: S[] = [];
  #waiters: Waiter<S>[] = [];
  #closed = false;

  constructor(open: Opener<S>, connectTimeoutMs: number, maxOpen: number) {
    super(open, connectTimeoutMs);
    this.#maxOpen = Math.max(1, maxOpen);
  }

  get openCount(): number {
    return this.#open;
  }

  acquire(): Promise<Acquired<S>> {
    const session = this.#idle.pop();
    if (session) return Promise.resolve({ session, opened: false });
    if (this.#open < this.#maxOpen) return this.#openCounted();
    return new Promise<Acquired<S>>((resolve, reject) => {
      let settled = false;
      const waiter: Waiter<S> = {
        grant: (acquired) => {
          if (settled) return false;
          settled = true;
          clearTimeout(timer);
          resolve(acquired);
          return true;
        },
        fail: (err) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        waiter.fail(new DeadlineError('connect', this.connectTimeoutMs));
      }, this.connectTimeoutMs);
      this.#waiters.push(waiter);
    });
  }

  async #openCounted(): Promise<Acquired<S>> {
    this.#open++;
    try {
      return await this.openNew();
    } catch (err) {
      this.#open--;
      this.#wakeOpener();
      throw err;
    }
  }

  /** A place in the pool came free: the first waiter opens a session of its own. */
  #wakeOpener(): void {
    if (this.#closed) return;
    const waiter = this.#waiters.shift();
    if (!waiter) return;
    this.#openCounted().then(
      (acquired) => {
        // The waiter's deadline passed while it opened: the session is the pool's.
        if (!waiter.grant(acquired) && 'session' in acquired) this.release(acquired.session, true);
      },
      (err: unknown) => waiter.fail(err),
    );
  }

  release(session: S, reusable: boolean): void {
    if (this.#closed || !reusable || session.dead) {
      if (!reusable || session.dead) session.destroy();
      else this.closeInBackground(session);
      this.#open--;
      this.#wakeOpener();
      return;
    }
    for (let waiter = this.#waiters.shift(); waiter; waiter = this.#waiters.shift())
      if (waiter.grant({ session, opened: false })) return;
    this.#idle.push(session);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.fail(new Error('probe stopped'));
    const idle = this.#idle;
    this.#idle = [];
    this.#open -= idle.length;
    for (const s of idle) this.closeInBackground(s);
    await this.drain();
  }
}

/** An attempt waiting for a pooled client; `grant` is false once its deadline passed. */
interface Waiter<S extends DbSession> {
  grant(acquired: Acquired<S>): boolean;
  fail(err: unknown): void;
}
