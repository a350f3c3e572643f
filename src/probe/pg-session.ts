// A node-postgres connection whose socket the probe owns, so a deadline can destroy it, and
// which remembers how it died: PostgreSQL sends 57P02 ("crash of another server process") as
// a WARNING notice right before it drops the socket, and node-postgres then only reports
// "Connection terminated unexpectedly".
import { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { errorFacts } from './classify-network.ts';
import { type DbSession, onAbort, type SessionTarget } from './db-session.ts';
import { enableScramKeyCache } from './pg-scram-cache.ts';

enableScramKeyCache();

const NOTICE_CAUSES = new Set(['57P01', '57P02']);
const LOST = new Set(['Connection terminated unexpectedly', 'Connection terminated']);

export class PgSession implements DbSession {
  readonly client: pg.Client;
  readonly #socket: Socket;
  #cause: unknown;
  #ended = false;
  #notice: unknown;

  constructor(client: pg.Client, socket: Socket) {
    this.client = client;
    this.#socket = socket;
    client.on('error', (err) => {
      if (this.#cause === undefined) this.#cause = err;
    });
    client.on('notice', (notice) => {
      if (notice.code && NOTICE_CAUSES.has(notice.code)) this.#notice = notice;
    });
    client.on('end', () => {
      this.#ended = true;
    });
    socket.on('close', () => {
      this.#ended = true;
    });
  }

  get connectAddr(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get dead(): boolean {
    return this.#ended || this.#cause !== undefined;
  }

  get deathCause(): unknown {
    if (!this.dead) return undefined;
    return this.explain(this.#cause ?? new Error('Connection terminated unexpectedly'));
  }

  explain(err: unknown): unknown {
    if (this.#notice === undefined) return err;
    const { code, message } = errorFacts(err);
    const bare = code === undefined && (LOST.has(message) || message.includes('not queryable'));
    return bare || code === 'ECONNRESET' || code === 'EPIPE' ? this.#notice : err;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  async close(graceMs: number): Promise<void> {
    if (this.dead) {
      this.destroy();
      return;
    }
    const timer = setTimeout(() => this.destroy(), graceMs);
    try {
      await this.client.end();
    } catch {
      this.destroy();
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Connects (TCP, TLS, authentication); the signal destroys the socket. */
export async function openPgSession(
  target: SessionTarget,
  ssl: false | ConnectionOptions,
  signal?: AbortSignal,
): Promise<PgSession> {
  const socket = new Socket();
  const client = new pg.Client({
    host: target.connectHost,
    port: target.port,
    database: target.database,
    user: target.user,
    password: target.password,
    ssl,
    stream: () => socket,
    application_name: 'failwatch',
  });
  const session = new PgSession(client, socket);
  onAbort(signal, () => session.destroy());
  await client.connect();
  return session;
}
