// The AWS Advanced NodeJS Wrapper as a probe's client: each session is one `AwsPGClient` (or
// `AwsMySQLClient`, wrapper-mysql.ts), as an application holds it. The wrapper reads the cluster's topology from SQL and, when its
// connection fails, reconnects to the new writer inside the failing call, which then throws
// FailoverSuccessError: the application retries, on the same client. So here:
// - a FailoverSuccessError is a failed attempt (`connection_lost`, code FailoverSuccessError)
//   after which the session is kept: the next attempt runs on the wrapper's new connection;
// - an attempt may last its deadlines plus twice the wrapper's failoverTimeoutMs (a new
//   client's connect and its call may each be held by a failover), and a deadline abandons the
//   client (ended once the wrapper lets go of it) instead of destroying sockets it shares with
//   the wrapper's monitors;
// - names are resolved through the endpoint's DNS server (the lab's) for every connection the
//   wrapper opens, cluster and instance names alike, and TLS names are the wrapper's hosts.
// The wrapper is imported on first use only (a prober without it does not load it).
import dns from 'node:dns';
import { Socket, type SocketConnectOpts } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { classifyPgError, isRecoverablePgError } from './classify-pg.ts';
import type { DbSession, SessionTarget } from './db-session.ts';
import { onAbort } from './db-session.ts';
import { pgDialect } from './pg-dialect.ts';
import type { HostResolver } from './resolve-host.ts';
import type { SqlDialect } from './sql-dialect.ts';
import { pgSslOptions, type TlsPlan } from './tls-options.ts';
import type { ClassifiedError, WrapperSettings } from './types.ts';

/** What the pg dialect's statements need of a client: both node-postgres and AwsPGClient have it. */
type PgQueryable = Pick<pg.Client, 'query' | 'escapeLiteral'>;

interface AwsPgClientLike {
  query: PgQueryable['query'];
  connect(): Promise<void>;
  end(): Promise<void>;
}

type AwsPgClientCtor = new (config: Record<string, unknown>) => AwsPgClientLike;

let wrapperModule: Promise<AwsPgClientCtor> | undefined;
function loadWrapper(): Promise<AwsPgClientCtor> {
  wrapperModule ??= withoutDotenv(() => import('aws-advanced-nodejs-wrapper/pg')).then(
    (m) => m.AwsPGClient as unknown as AwsPgClientCtor,
  );
  return wrapperModule;
}

/**
 * Importing the wrapper runs dotenv, which adds the variables of `./.env` to process.env: a
 * file in the directory `failwatch run` starts in must not hand the AWS SDK or the drivers
 * settings nobody gave. Whatever the import added is removed again.
 */
export async function withoutDotenv<T>(load: () => Promise<T>): Promise<T> {
  const before = new Set(Object.keys(process.env));
  try {
    return await load();
  } finally {
    for (const key of Object.keys(process.env)) if (!before.has(key)) delete process.env[key];
  }
}

/**
 * The wrapper keeps process-wide monitors (topology, host health) with their timers, which
 * would keep `failwatch run` alive after its last prober stopped: the last wrapper dialect to
 * be released lets them go (PluginManager.releaseResources, the wrapper's documented cleanup).
 */
let wrapperUsers = 0;
function addWrapperUser(): void {
  wrapperUsers++;
}
/** Every socket the wrapper opened through a probe, monitors' included. */
const wrapperSockets = new Set<Socket>();
async function releaseWrapperUser(): Promise<void> {
  wrapperUsers = Math.max(0, wrapperUsers - 1);
  if (wrapperUsers > 0) return;
  const { PluginManager } = await withoutDotenv(() => import('aws-advanced-nodejs-wrapper'));
  if (wrapperUsers > 0) return; // a new prober started meanwhile: its monitors stay
  await PluginManager.releaseResources();
  for (const s of wrapperSockets) s.destroy();
}

/** The wrapper's errors that mean "your call failed, the client is now on another connection". */
const SWITCHED = new Set(['FailoverSuccessError']);
/** ... and those that mean the wrapper gave up or cannot tell (the client is not reused). */
const WRAPPER_LOST = new Set(['FailoverFailedError', 'TransactionResolutionUnknownError', 'FailoverError']);

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.constructor?.name : undefined;
}

/**
 * The wrapper's MySQL client rethrows a driver error as AwsWrapperError(message, cause): the
 * driver's error (its code, errno, SQLSTATE) is the cause.
 */
function driverError(err: unknown): unknown {
  return errorName(err) === 'AwsWrapperError' && (err as Error).cause !== undefined
    ? (err as Error).cause
    : err;
}

function wrapperErrorName(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const name = err.constructor?.name;
  return name && (SWITCHED.has(name) || WRAPPER_LOST.has(name)) ? name : undefined;
}

/**
 * The wrapper's errors first, then the driver's own classes. After a FailoverSuccessError the
 * client runs on the new connection: it is kept, as the application keeps it.
 */
export function wrapperErrorClassifier(
  classifyDriver: (err: unknown) => ClassifiedError,
  isRecoverableDriver: (err: unknown) => boolean = () => false,
) {
  return {
    classify(err: unknown): ClassifiedError {
      const name = wrapperErrorName(err);
      if (name) return { class: 'connection_lost', code: name, message: (err as Error).message };
      if (errorName(err) === 'InternalQueryTimeoutError')
        return { class: 'query_timeout', code: 'InternalQueryTimeoutError', message: (err as Error).message };
      return classifyDriver(driverError(err));
    },
    isRecoverable(err: unknown): boolean {
      const name = wrapperErrorName(err);
      if (name) return SWITCHED.has(name);
      return isRecoverableDriver(driverError(err));
    },
  };
}

/** The PostgreSQL stack's classes. */
const pgWrapperClassifier = wrapperErrorClassifier(classifyPgError, isRecoverablePgError);
export const { classify: classifyWrapperError, isRecoverable: isRecoverableWrapperError } =
  pgWrapperClassifier;

type LookupCallback = (
  err: Error | null,
  address: string | { address: string; family: number }[],
  family?: number,
) => void;

/**
 * net.connect's `lookup` for the wrapper's connections: the endpoint's DNS server when it has
 * one, else (or for an address) the system resolver, as any client.
 */
export function resolvingLookup(resolver: HostResolver) {
  return (host: string, options: { all?: boolean }, callback: LookupCallback): void => {
    resolver.resolve(host).then(
      (address) => {
        if (address === undefined) dns.lookup(host, options, callback as never);
        else if (options?.all) callback(null, [{ address, family: 4 }]);
        else callback(null, address, 4);
      },
      (err: Error) => callback(err, ''),
    );
  };
}

/**
 * node-postgres calls the factory and then `connect(port, host)`; mysql2 calls it with its
 * options and expects a connecting socket (`connectNow`).
 */
export function socketFactory(
  resolver: HostResolver,
  sockets: Set<Socket>,
  connectNow = false,
): (opts?: { config?: { host?: string; port?: number } }) => Socket {
  const lookup = resolvingLookup(resolver);
  class ResolvingSocket extends Socket {
    override connect(...args: unknown[]): this {
      if (typeof args[0] === 'number' && typeof args[1] === 'string') {
        const opts: SocketConnectOpts = { port: args[0], host: args[1], lookup, autoSelectFamily: false };
        return super.connect(opts);
      }
      return (super.connect as (...a: unknown[]) => this)(...args);
    }
  }
  return (opts) => {
    const socket = new ResolvingSocket();
    sockets.add(socket);
    wrapperSockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      wrapperSockets.delete(socket);
    });
    if (connectNow) {
      socket.setNoDelay(true);
      socket.connect(opts?.config?.port ?? 3306, opts?.config?.host ?? 'localhost');
    }
    return socket;
  };
}

/** What every wrapper client has: connect and end (its queries differ per engine). */
interface AwsClientLike {
  connect(): Promise<unknown>;
  end(): Promise<unknown>;
}

/** One wrapper client as a probe session: the engine's subclass adds its query call. */
class WrapperSession<C extends AwsClientLike> implements DbSession {
  protected readonly aws: C;
  readonly #sockets: Set<Socket>;
  #abandoned = false;
  #lastAddr: string | undefined;
  /** The call in progress: a client abandoned during it is ended again once it settles. */
  #pending: Promise<unknown> | undefined;

  constructor(aws: C, sockets: Set<Socket>) {
    this.aws = aws;
    this.#sockets = sockets;
  }

  /** Every call goes through here, so that an abandoned client is ended after it. */
  protected track<T>(call: Promise<T>): Promise<T> {
    this.#pending = call;
    return call;
  }

  get connectAddr(): string | undefined {
    // The newest live socket is the wrapper's current connection (monitors open theirs first).
    for (const s of this.#sockets) if (s.remoteAddress) this.#lastAddr = s.remoteAddress;
    return this.#lastAddr;
  }

  get dead(): boolean {
    return this.#abandoned;
  }

  get deathCause(): unknown {
    return this.#abandoned ? new Error('wrapper client abandoned at the attempt deadline') : undefined;
  }

  explain(err: unknown): unknown {
    return err;
  }

  /**
   * A deadline passed: the client is not reused. It is ended now, and again when the call in
   * progress settles (a failover in the wrapper may install a new connection after the first
   * end) or when a connect in progress completes (`end` does nothing before that).
   */
  destroy(): void {
    if (this.#abandoned) return;
    this.#abandoned = true;
    this.#end();
    void this.#pending?.then(
      () => this.#end(),
      () => this.#end(),
    );
  }

  /** Connects; a client abandoned while connecting is ended once the connect completes. */
  async connect(signal: AbortSignal): Promise<void> {
    onAbort(signal, () => this.destroy());
    try {
      await this.aws.connect();
    } finally {
      if (this.#abandoned) this.#end();
    }
  }

  #end(): void {
    void this.aws.end().catch(() => {});
  }

  async close(graceMs: number): Promise<void> {
    this.#abandoned = true;
    const timer = setTimeout(() => {
      for (const s of this.#sockets) s.destroy();
    }, graceMs);
    try {
      await this.aws.end();
    } catch {
      for (const s of this.#sockets) s.destroy();
    } finally {
      clearTimeout(timer);
    }
  }
}

export class WrapperPgSession extends WrapperSession<AwsPgClientLike> {
  readonly client: PgQueryable;

  constructor(aws: AwsPgClientLike, sockets: Set<Socket>) {
    super(aws, sockets);
    // The wrapper's escapeLiteral goes through its plugins and returns a promise; quoting a
    // literal is node-postgres's pure function.
    const query = ((...args: unknown[]) =>
      this.track((aws.query as (...a: unknown[]) => Promise<unknown>)(...args))) as PgQueryable['query'];
    this.client = { query, escapeLiteral: pg.escapeLiteral };
  }
}

/** AwsMySQLClient: mysql2's promise API (results, fields). */
interface AwsMysqlClientLike extends AwsClientLike {
  query(options: { sql: string; values?: unknown[] }): Promise<[unknown, unknown]>;
}

export class WrapperMysqlSession extends WrapperSession<AwsMysqlClientLike> {
  /** As MysqlSession.query: the results of the statement(s). */
  async query<T>(sql: string, values?: unknown[]): Promise<T> {
    const [results] = await this.track(this.aws.query(values === undefined ? { sql } : { sql, values }));
    return results as T;
  }
}

/** The endpoint's connect and query deadlines, without the failover allowance. */
export interface WrapperTimeouts {
  connectTimeoutMs: number;
  queryTimeoutMs: number;
}

/** Wrapper properties from the endpoint's settings; the rest goes to node-postgres unchanged. */
export function wrapperProperties(
  target: SessionTarget,
  settings: WrapperSettings,
  timeouts: WrapperTimeouts,
  engine: 'pg' | 'mysql' = 'pg',
): Record<string, unknown> {
  return {
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    password: target.password,
    // The wrapper picks its Aurora dialect by RDS host names; say it for any name (MySQL: the
    // caller may name a custom dialect instead).
    ...(engine === 'pg'
      ? { application_name: 'failwatch', dialect: 'aurora-pg' }
      : { dialect: 'aurora-mysql', multipleStatements: true, supportBigNumbers: true }),
    // One topology cache per endpoint (the wrapper derives this from RDS names only; otherwise
    // each client would get a monitor of its own).
    clusterId: `${target.host}:${target.port}`,
    // The endpoint's own deadlines for every connection and statement the wrapper runs.
    wrapperConnectTimeout: timeouts.connectTimeoutMs,
    wrapperQueryTimeout: timeouts.queryTimeoutMs,
    failoverTimeoutMs: settings.failoverTimeoutMs,
    ...(settings.plugins ? { plugins: settings.plugins.join(',') } : {}),
    ...(settings.clusterInstanceHostPattern
      ? { clusterInstanceHostPattern: settings.clusterInstanceHostPattern }
      : {}),
  };
}

async function openWrapperPgSession(
  target: SessionTarget,
  tls: TlsPlan,
  settings: WrapperSettings,
  timeouts: WrapperTimeouts,
  resolver: HostResolver,
  signal: AbortSignal,
): Promise<WrapperPgSession> {
  const AwsPGClient = await loadWrapper();
  const sockets = new Set<Socket>();
  // node-postgres names the TLS server after each host it dials (cluster or instance).
  const ssl = pgSslOptions(tls, target.host);
  if (ssl) delete (ssl as ConnectionOptions).servername;
  const aws = new AwsPGClient({
    ...wrapperProperties(target, settings, timeouts),
    ssl,
    stream: socketFactory(resolver, sockets),
  });
  const session = new WrapperPgSession(aws, sockets);
  await session.connect(signal);
  return session;
}

/**
 * A driver dialect's statements run through the wrapper: its own `open` and error classes, and
 * the process-wide wrapper resources released with the last prober that used them.
 */
export function throughWrapper<S extends DbSession>(
  base: SqlDialect<S>,
  open: SqlDialect<S>['open'],
  classifier: ReturnType<typeof wrapperErrorClassifier>,
): SqlDialect<S> {
  addWrapperUser();
  let released = false;
  return {
    ...base,
    open,
    classify: classifier.classify,
    isRecoverable: classifier.isRecoverable,
    release: async () => {
      if (released) return;
      released = true;
      await releaseWrapperUser();
    },
  };
}

/** The pg dialect's statements, run through the wrapper. */
export function wrapperPgDialect(
  tls: TlsPlan,
  settings: WrapperSettings,
  timeouts: WrapperTimeouts,
  resolver: HostResolver,
): SqlDialect<WrapperPgSession> {
  // The statements only use client.query / escapeLiteral, which both clients have.
  return throughWrapper(
    pgDialect(tls) as unknown as SqlDialect<WrapperPgSession>,
    (target, signal) => openWrapperPgSession(target, tls, settings, timeouts, resolver, signal),
    pgWrapperClassifier,
  );
}
