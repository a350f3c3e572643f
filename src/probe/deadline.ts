// The probe enforces its own deadlines: the work gets an AbortSignal and must tear down its
// socket when it fires; the caller gets a DeadlineError at the deadline, whatever the work
// does afterwards.
import type { ErrorClass } from '../analysis/error-class.ts';

export type DeadlinePhase = 'connect' | 'query' | 'resolve';

export class DeadlineError extends Error {
  readonly phase: DeadlinePhase;
  readonly timeoutMs: number;
  constructor(phase: DeadlinePhase, timeoutMs: number) {
    super(`${phase} deadline of ${timeoutMs} ms passed`);
    this.name = 'DeadlineError';
    this.phase = phase;
    this.timeoutMs = timeoutMs;
  }

  get errorClass(): ErrorClass {
    if (this.phase === 'resolve') return 'dns_error';
    return this.phase === 'connect' ? 'connect_timeout' : 'query_timeout';
  }
}

/**
 * Runs `work` with a deadline. `phase` may be a function, asked at the deadline (a connect
 * deadline that passes while the name is still being resolved is a DNS failure). At the deadline the signal aborts (the work destroys its
 * socket) and the returned promise rejects with a DeadlineError at once. A late rejection of
 * the work is swallowed: it belongs to an attempt that already ended.
 */
export function withDeadline<T>(
  phase: DeadlinePhase | (() => DeadlinePhase),
  timeoutMs: number,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(new DeadlineError(typeof phase === 'function' ? phase() : phase, timeoutMs));
      controller.abort();
    }, timeoutMs);
    let pending: Promise<T>;
    try {
      pending = work(controller.signal);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
