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
import type { DbSession } from './db-session.ts';
import { type DeadlinePhase, withDeadline } from './deadline.ts';

const CLOSE_GRACE_MS = 1000;

export type Acquired<S extends DbSession> =
  | { session: S; opened: boolean }
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

  protected async openNew(): Promise<{ session: S; opened: true }> {
    const progress: { phase: DeadlinePhase } = { phase: 'connect' };
    const session = await withDeadline(
      () => progress.phase,
      this.connectTimeoutMs,
      (signal) => this.open(signal, progress),
    );
    return { session, opened: true };
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
    const dead = this.#idle.filter((s) => s.dead);
    if (dead.length > 0) {
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
