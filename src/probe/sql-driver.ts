// The database probe driver for all four dialects: gets a connection (fresh or pooled),
// runs the dialect's write or read statement under the query deadline and turns whatever
// happened into an AttemptOutcome. `attempt` never rejects and never outlives its deadlines.
import type { CommittedRow } from '../analysis/server-side-gap.ts';
import { monotonicNow } from './clock.ts';
import type { DbSession, SessionTarget } from './db-session.ts';
import { onAbort } from './db-session.ts';
import { type DeadlinePhase, withDeadline } from './deadline.ts';
import { IamSigningError, type IamTokenRequest, sharedIamTokens } from './iam-auth.ts';
import { mysqlDialect } from './mysql-dialect.ts';
import { pgDialect } from './pg-dialect.ts';
import { HostResolver } from './resolve-host.ts';
import {
  BoundedPooledSessions,
  FreshSessions,
  PooledSessions,
  type SessionSource,
} from './session-source.ts';
import { type DialectFeatures, PLAIN_FEATURES, type SqlDialect } from './sql-dialect.ts';
import { loadTls } from './tls-options.ts';
import type {
  AttemptContext,
  AttemptOutcome,
  ClassifiedError,
  DbProbeKind,
  ProbeDriver,
  ProbeEndpointConfig,
} from './types.ts';
import { wrapperMysqlDialect } from './wrapper-mysql.ts';
import { wrapperPgDialect } from './wrapper-session.ts';

export const DEFAULT_POOL_SIZE = 4;

/** Thrown by setup/readBack with the attempt's classification, so callers can say why. */
export class ProbeSetupError extends Error {
  readonly outcome: AttemptOutcome;
  constructor(endpoint: string, what: string, outcome: AttemptOutcome) {
    super(`endpoint \`${endpoint}\`: ${what} failed (${outcome.class}): ${outcome.message ?? ''}`.trim());
    this.name = 'ProbeSetupError';
    this.outcome = outcome;
  }
}

export class SqlProbeDriver<S extends DbSession> implements ProbeDriver {
  readonly #config: ProbeEndpointConfig;
  readonly #runId: string;
  readonly #dialect: SqlDialect<S>;
  readonly #resolver: HostResolver;
  readonly #sessions: SessionSource<S>;
  #features: DialectFeatures = PLAIN_FEATURES;

  constructor(config: ProbeEndpointConfig, runId: string, dialect: SqlDialect<S>) {
    this.#config = config;
    this.#runId = runId;
    this.#dialect = dialect;
    this.#resolver = new HostResolver(config.dnsServer, config.connectTimeoutMs);
    const open = (signal: AbortSignal, progress: { phase: DeadlinePhase }) => this.#open(signal, progress);
    const poolSize = config.poolSize ?? DEFAULT_POOL_SIZE;
    this.#sessions = config.wrapper
      ? new BoundedPooledSessions(open, config.connectTimeoutMs, poolSize)
      : config.connectionMode === 'pooled'
        ? new PooledSessions(open, config.connectTimeoutMs, poolSize)
        : new FreshSessions(open, config.connectTimeoutMs);
  }

  get features(): DialectFeatures {
    return this.#features;
  }

  async #open(
    signal: AbortSignal,
    progress: { phase: DeadlinePhase },
    override?: { host: string; port: number },
  ): Promise<S> {
    const host = override?.host ?? this.#config.host;
    progress.phase = 'resolve';
    const resolved = await this.#resolver.resolve(host);
    progress.phase = 'connect';
    if (signal.aborted) throw new Error('aborted');
    const port = override?.port ?? this.#config.port;
    const iam = this.#config.iam;
    // The token names the host as configured (the name the client dials), never the address.
    const iamRequest: IamTokenRequest | undefined = iam && {
      host,
      port,
      user: this.#config.user,
      region: iam.region,
    };
    const tokens = iam?.tokens ?? sharedIamTokens;
    const password = iamRequest ? await tokens.token(iamRequest) : this.#config.password;
    if (signal.aborted) throw new Error('aborted');
    const target: SessionTarget = {
      host,
      connectHost: resolved ?? host,
      port,
      database: this.#config.database,
      user: this.#config.user,
      password,
    };
    if (iamRequest) target.clearText = true;
    try {
      return await this.#dialect.open(target, signal);
    } catch (err) {
      if (!iamRequest || this.#classify(err).class !== 'auth_error') throw err;
      void tokens.rejected(iamRequest, password);
      throw withIamHint(err, iamRequest);
    }
  }

  #classify(err: unknown): ClassifiedError {
    if (err instanceof IamSigningError)
      return { class: 'auth_error', code: 'IAM_SIGNING', message: err.message };
    return this.#dialect.classify(err);
  }

  /** Runs `work` on a new dedicated connection under both deadlines; throws ProbeSetupError. */
  async #withOwnSession<T>(
    what: string,
    work: (session: S) => Promise<T>,
    override?: { host: string; port: number },
  ): Promise<T> {
    let session: S | undefined;
    try {
      const progress: { phase: DeadlinePhase } = { phase: 'connect' };
      session = await withDeadline(
        () => progress.phase,
        this.#config.connectTimeoutMs,
        (signal) => this.#open(signal, progress, override),
      );
      const s = session;
      return await withDeadline('query', Math.max(this.#config.queryTimeoutMs, 10_000), (signal) => {
        onAbort(signal, () => s.destroy());
        return work(s);
      });
    } catch (err) {
      const c = this.#classify(session ? session.explain(err) : err);
      throw new ProbeSetupError(this.#config.name, what, {
        class: c.class,
        code: c.code,
        message: c.message,
      });
    } finally {
      if (session) await session.close(1000).catch(() => session?.destroy());
    }
  }

  async setup(withWriteTable: boolean): Promise<void> {
    const wantAurora = this.#config.dialect.startsWith('aurora-');
    this.#features = await this.#withOwnSession('probe setup', (s) =>
      this.#dialect.setup(s, withWriteTable, wantAurora),
    );
  }

  /** The cluster's instance identifiers from its topology (topology probe); throws ProbeSetupError. */
  instances(): Promise<string[]> {
    const list = this.#dialect.instances;
    if (!list) return Promise.resolve([]);
    return this.#withOwnSession('topology discovery', (s) => list.call(this.#dialect, s));
  }

  /** Rows this run wrote for `endpoint`, read from `from` (default: the endpoint itself). */
  readBack(endpoint: string, from?: { host: string; port: number }): Promise<CommittedRow[]> {
    return this.#withOwnSession(
      'write read-back',
      (s) => this.#dialect.readBack(s, this.#runId, endpoint),
      from,
    );
  }

  async attempt(kind: DbProbeKind, ctx: AttemptContext): Promise<AttemptOutcome> {
    let session: S | undefined;
    try {
      const acquireStartMs = monotonicNow();
      const acquired = await this.#sessions.acquire();
      if ('diedIdle' in acquired)
        return this.#failed(acquired.diedIdle, acquired.connectAddr, ' [pooled connection, died while idle]');
      session = acquired.session;
      const acquiredMs = monotonicNow();
      const s = session;
      const server = await withDeadline('query', this.#config.queryTimeoutMs, (signal) => {
        onAbort(signal, () => s.destroy());
        return kind === 'write'
          ? this.#dialect.write(s, this.#features, {
              runId: this.#runId,
              endpoint: this.#config.name,
              seq: ctx.seq,
              clientMs: ctx.clientMs,
            })
          : this.#dialect.read(s, this.#features);
      });
      this.#sessions.release(s, true);
      const outcome: AttemptOutcome = { class: 'ok', server };
      if (acquired.opened && this.#config.connectionMode === 'pooled')
        outcome.reconnectMs = acquired.openMs ?? acquiredMs - acquireStartMs;
      if (s.connectAddr) outcome.connectAddr = s.connectAddr;
      return outcome;
    } catch (err) {
      if (!session) return this.#failed(err, undefined, '');
      const explained = session.explain(err);
      // A pooled connection answering read_only sits on a reader (the demoted writer): retire
      // it, as a pool that checks the writer role does; otherwise it would stay there forever.
      const onReader = this.#dialect.classify(explained).class === 'read_only';
      const connectAddr = session.connectAddr; // before release: a destroyed session forgets it
      this.#sessions.release(session, !session.dead && !onReader && this.#dialect.isRecoverable(explained));
      return this.#failed(explained, connectAddr, '');
    }
  }

  #failed(err: unknown, connectAddr: string | undefined, note: string): AttemptOutcome {
    const c = this.#classify(err);
    const outcome: AttemptOutcome = { class: c.class, message: c.message + note };
    if (c.code !== undefined) outcome.code = c.code;
    if (connectAddr) outcome.connectAddr = connectAddr;
    return outcome;
  }

  async close(): Promise<void> {
    await this.#sessions.close();
    await this.#dialect.release?.();
  }
}

/**
 * A server answers a bad IAM token like a bad password (PAM keeps the reason in the server's
 * log): say what to check, keeping the server's words, class and code.
 */
function withIamHint(err: unknown, r: IamTokenRequest): unknown {
  if (!(err instanceof Error)) return err;
  err.message = `${err.message} (IAM token for ${r.user}@${r.host}:${r.port}, region ${r.region}, rejected: check that the IAM policy allows rds-db:connect for this user, the region, the AWS credentials and the clock)`;
  return err;
}

/** The driver for an endpoint's dialect. Throws TlsConfigError when the CA bundle is unreadable. */
export function createProbeDriver(config: ProbeEndpointConfig, runId: string): ProbeDriver {
  const tls = loadTls(config.tls);
  if (config.wrapper) {
    // The wrapper holds a failing call while it fails over: the attempt may take that long too
    // (a new client's connect and its call may each fail over: C + Q + 2F at most).
    const extra = config.wrapper.failoverTimeoutMs;
    const resolver = new HostResolver(config.dnsServer, config.connectTimeoutMs);
    const extended = {
      ...config,
      connectTimeoutMs: config.connectTimeoutMs + extra,
      queryTimeoutMs: config.queryTimeoutMs + extra,
    };
    return config.dialect === 'aurora-mysql'
      ? new SqlProbeDriver(extended, runId, wrapperMysqlDialect(tls, config.wrapper, config, resolver))
      : new SqlProbeDriver(extended, runId, wrapperPgDialect(tls, config.wrapper, config, resolver));
  }
  return config.dialect === 'postgresql' || config.dialect === 'aurora-postgresql'
    ? new SqlProbeDriver(config, runId, pgDialect(tls))
    : new SqlProbeDriver(config, runId, mysqlDialect(tls));
}
