// A mysql2 connection whose socket the probe owns, so a deadline can destroy it. The socket
// dials the resolved address while mysql2 keeps the configured name (its TLS servername).
import { connect, type Socket } from 'node:net';
import type mysql from 'mysql2';
import { type DbSession, onAbort, type SessionTarget } from './db-session.ts';
import type { MysqlSsl } from './tls-options.ts';

export class MysqlSession implements DbSession {
  readonly connection: mysql.Connection;
  readonly #socket: Socket;
  #cause: unknown;
  #ended = false;

  constructor(connection: mysql.Connection, socket: Socket) {
    this.connection = connection;
    this.#socket = socket;
    connection.on('error', (err) => {
      if (this.#cause === undefined) this.#cause = err;
    });
    connection.on('end', () => {
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
    return (
      this.#cause ??
      Object.assign(new Error('Connection lost: The server closed the connection.'), {
        code: 'PROTOCOL_CONNECTION_LOST',
      })
    );
  }

  explain(err: unknown): unknown {
    return err;
  }

  /** One statement (or several, separated by `;`) with client-side placeholder escaping. */
  query<T = unknown>(sql: string, values: unknown[] = []): Promise<T> {
    return new Promise((resolve, reject) => {
      this.connection.query(sql, values, (err, results) => (err ? reject(err) : resolve(results as T)));
    });
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
      await new Promise<void>((resolve) => this.connection.end(() => resolve()));
    } finally {
      clearTimeout(timer);
      this.destroy();
    }
  }
}

// mysql2 is loaded on first use: a prober of PostgreSQL endpoints only does not carry it
// (about 14 MiB of RSS per process; docs/accuracy.md, "Prober footprint").
let mysqlModule: Promise<typeof mysql> | undefined;
const loadMysql = () => {
  mysqlModule ??= import('mysql2').then((m) => m.default);
  return mysqlModule;
};

/** Connects (TCP, TLS, authentication); the signal destroys the socket. */
export async function openMysqlSession(
  target: SessionTarget,
  ssl: MysqlSsl,
  signal?: AbortSignal,
): Promise<MysqlSession> {
  const driver = await loadMysql();
  const socket = connect({ host: target.connectHost, port: target.port });
  socket.setNoDelay(true);
  const connection = driver.createConnection({
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    password: target.password,
    ...(ssl ? { ssl } : {}),
    ...(target.clearText ? { enableCleartextPlugin: true } : {}),
    stream: () => socket,
    multipleStatements: true,
    // The probe enforces its own connect deadline; mysql2's timer would race it.
    connectTimeout: 0,
    supportBigNumbers: true,
  });
  const session = new MysqlSession(connection, socket);
  onAbort(signal, () => session.destroy());
  await new Promise<void>((resolve, reject) => connection.connect((err) => (err ? reject(err) : resolve())));
  return session;
}
