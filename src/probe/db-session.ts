// One database connection as the probes see it, whatever the driver.

/** Where to connect: `host` as configured (TLS name), `connectHost` what the socket dials. */
export interface SessionTarget {
  host: string;
  connectHost: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** MySQL: send the password with mysql_clear_password when the server asks (IAM tokens; TLS only). */
  clearText?: boolean;
}

export interface DbSession {
  /** Peer address of the socket once connected. */
  readonly connectAddr: string | undefined;
  /** True once the connection is known to be unusable (error, end, destroyed). */
  readonly dead: boolean;
  /** Why it died (explained as with `explain`), when it did. */
  readonly deathCause: unknown;
  /** Replaces a bare "connection lost" by what the server said just before (e.g. a 57P02 notice). */
  explain(err: unknown): unknown;
  /** Hard close: destroys the socket now. */
  destroy(): void;
  /** Polite close (protocol goodbye), destroying the socket if that takes longer than `graceMs`. */
  close(graceMs: number): Promise<void>;
}

/** Runs `onAbort` when the signal fires (at once when it already has). */
export function onAbort(signal: AbortSignal | undefined, onAbort: () => void): void {
  if (!signal) return;
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
}
