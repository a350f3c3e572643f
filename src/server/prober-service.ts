// What runs inside a prober pod: one endpoint's Prober, its setup retried until it works
// (a wrong password or an unreachable database is reported, not crash-looped), every sample
// kept in memory for the controller to pull, and the HTTP routes that expose all of it.
//
//   starting -> probing -> stopped          setup worked
//   starting -> setup-failed -> ... -> probing   retried every setupRetryMs
//   any -> stopped                          POST /stop (idempotent)
//
// Every route but /healthz and /readyz (the kubelet's) needs the run's bearer token: the
// controller created it in a Secret owned by the experiment, and only the controller and this
// pod know it. /metrics is on a separate port (see src/cli/probe.ts).
//
// The password appears in no response and no log line: every message that leaves this
// module goes through redact() as well, in case a driver ever echoes a connection string.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ErrorClass } from '../analysis/error-class.ts';
import type { ProbeKind } from '../analysis/sample.ts';
import type { CommittedRow } from '../analysis/server-side-gap.ts';
import type { EndpointSpec } from '../api/experiment-spec.ts';
import { laneName } from '../api/probe-lanes.ts';
import { type EndpointCredentials, probeConfigFor } from '../engine/endpoint-config.ts';
import type { LagSummary } from '../probe/lag-histogram.ts';
import { Prober } from '../probe/prober.ts';
import { Redactor } from '../probe/redact.ts';
import { ProbeSetupError } from '../probe/sql-driver.ts';
import { TlsConfigError } from '../probe/tls-options.ts';
import type { ProbeDriver, ProbeEndpointConfig, ProbeSample } from '../probe/types.ts';
import { bearerToken, tokensEqual } from './bearer-token.ts';
import type { Readiness } from './http.ts';
import { createProbeMetrics, type ProbeMetrics } from './metrics.ts';
import { DEFAULT_MAX_SAMPLES, SampleStore } from './sample-store.ts';

/** Routes that answer without the token: the kubelet's probes. */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/** Largest page of GET /samples. */
export const SAMPLES_PAGE_LIMIT = 5000;

export type ProberState = 'starting' | 'setup-failed' | 'probing' | 'stopped';

export interface SetupFailure {
  class: ErrorClass;
  code?: string;
  message: string;
}

export interface ProberServiceOptions {
  runId: string;
  namespace: string;
  experiment: string;
  endpoint: EndpointSpec;
  /** The zone this prober runs in (spec.probers.zones): its lane is `<endpoint>@<zone>`. */
  zone?: string;
  /** Asked before every setup attempt. */
  credentials: () => EndpointCredentials;
  /** The run's API token: every route but /healthz and /readyz needs it as a bearer token. */
  apiToken: string;
  caFile?: string;
  registry: Registry;
  log: Logger;
  setupRetryMs?: number;
  maxSamples?: number;
  /** First seq of this prober's attempts (a replacement prober; see ProberOptions.seqBase). */
  seqBase?: number;
  /**
   * Where in its interval this endpoint's attempts start (0 <= phase < 1): the endpoints of a
   * shared pod are spread over the interval instead of all ticking at once. Default 0.
   */
  phase?: number;
  /** Replaces the database driver (tests). */
  driverFor?: (config: ProbeEndpointConfig) => ProbeDriver;
  /**
   * Hides credentials in messages, shared by every service of a process that probes several
   * endpoints (each one hides every endpoint's, not only its own). Default: its own.
   */
  redactor?: Redactor;
}

export interface ProberStatusBody {
  state: ProberState;
  runId: string;
  namespace: string;
  experiment: string;
  endpoint: string;
  zone?: string;
  /** Random per process start: a different value means the samples started over. */
  incarnation: string;
  samples: number;
  dropped: number;
  setupAttempts: number;
  startedAt: string | null;
  /** This process's clock when it answered: `now - startedAt` is how long it has probed, whatever the caller's clock says. */
  now: string;
  stoppedAt: string | null;
  /** When stop was asked: no attempt starts after it (the end of this prober's coverage). */
  stopRequestedAt: string | null;
  /** The last setup failure, while state is setup-failed (also flattened into the body). */
  class?: ErrorClass;
  code?: string;
  message?: string;
}

export interface SamplesPage {
  from: number;
  /** Where the next page starts; equal to `from` when nothing new is there yet. */
  next: number;
  /** Samples held so far. */
  total: number;
  /** True once probing stopped and this page reaches the last sample. */
  complete: boolean;
  /** Samples not stored because the store was full (they are missing: coverage). */
  dropped: number;
  samples: ProbeSample[];
}

/** An HTTP-shaped refusal: status code and a message for the caller. */
export class ProberRequestError extends Error {
  readonly statusCode: number;
  readonly details: Record<string, unknown>;
  constructor(statusCode: number, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ProberRequestError';
    this.statusCode = statusCode;
    this.details = details;
  }
}

/**
 * Refuses every request of `app` (but the kubelet's /healthz and /readyz) without the run's
 * bearer token: 401, logged without the token.
 */
export function requireRunToken(app: FastifyInstance, apiToken: string, log: Logger): void {
  app.addHook('onRequest', async (request, reply) => {
    if (OPEN_PATHS.has(request.url.split('?')[0]!)) return;
    if (tokensEqual(bearerToken(request.headers.authorization), apiToken)) return;
    log.warn(
      { event: 'unauthorized', method: request.method, path: request.url.slice(0, 200), ip: request.ip },
      'request without the run token refused',
    );
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="failwatch-prober"')
      .send({ error: 'this prober answers only its controller: send the run token as a bearer token' });
  });
}

export class ProberService {
  readonly incarnation = crypto.randomUUID();
  readonly #options: ProberServiceOptions;
  readonly #log: Logger;
  readonly #store: SampleStore;
  readonly #metrics: ProbeMetrics;
  readonly #redactor: Redactor;
  readonly #retryMs: number;
  #state: ProberState = 'starting';
  #prober: Prober | undefined;
  #failure: SetupFailure | undefined;
  #setupAttempts = 0;
  #startedAt: Date | undefined;
  #stoppedAt: Date | undefined;
  #stopRequestedAt: Date | undefined;
  #setupLoop: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  readonly #retryAbort = new AbortController();

  constructor(options: ProberServiceOptions) {
    this.#options = options;
    this.#redactor = options.redactor ?? new Redactor();
    this.#log = options.log;
    this.#store = new SampleStore(options.maxSamples ?? DEFAULT_MAX_SAMPLES);
    this.#retryMs = options.setupRetryMs ?? 5000;
    this.#metrics = createProbeMetrics(
      options.registry,
      {
        namespace: options.namespace,
        experiment: options.experiment,
        endpoint: options.endpoint.name,
        zone: options.zone ?? '',
      },
      options.endpoint.probes,
      () => {
        const lag: Partial<Record<ProbeKind, LagSummary>> = {};
        for (const [kind, scheduler] of this.#prober?.schedulers() ?? []) lag[kind] = scheduler.stats().lag;
        return lag;
      },
    );
  }

  /** What this prober measures: the endpoint, or `<endpoint>@<zone>`. */
  get lane(): string {
    return laneName(this.#options.endpoint.name, this.#options.zone);
  }

  get state(): ProberState {
    return this.#state;
  }

  /** Starts the setup loop; probing begins as soon as setup succeeds. */
  start(): void {
    this.#setupLoop ??= this.#runSetupLoop();
  }

  ready(): Readiness {
    if (this.#state === 'probing' || this.#state === 'stopped') return { ok: true };
    if (this.#state === 'setup-failed' && this.#failure) return { ok: false, reason: this.#failure.message };
    return { ok: false, reason: 'setting up' };
  }

  status(): ProberStatusBody {
    const o = this.#options;
    const body: ProberStatusBody = {
      state: this.#state,
      runId: o.runId,
      namespace: o.namespace,
      experiment: o.experiment,
      endpoint: o.endpoint.name,
      ...(o.zone ? { zone: o.zone } : {}),
      incarnation: this.incarnation,
      samples: this.#store.size,
      dropped: this.#store.dropped,
      setupAttempts: this.#setupAttempts,
      startedAt: this.#startedAt?.toISOString() ?? null,
      now: new Date().toISOString(),
      stoppedAt: this.#stoppedAt?.toISOString() ?? null,
      stopRequestedAt: this.#stopRequestedAt?.toISOString() ?? null,
    };
    if (this.#state === 'setup-failed' && this.#failure) Object.assign(body, this.#failure);
    return body;
  }

  samples(from: number, limit = SAMPLES_PAGE_LIMIT): SamplesPage {
    const total = this.#store.size;
    if (!(Number.isInteger(from) && from >= 0))
      throw new ProberRequestError(400, `from must be an integer >= 0 (got ${from})`);
    if (from > total)
      throw new ProberRequestError(416, `from ${from} is past the ${total} samples held`, {
        total,
        incarnation: this.incarnation,
      });
    const samples = this.#store.slice(from, Math.min(SAMPLES_PAGE_LIMIT, Math.max(1, limit)));
    const next = from + samples.length;
    return {
      from,
      next,
      total,
      complete: this.#state === 'stopped' && next === total,
      dropped: this.#store.dropped,
      samples,
    };
  }

  /** Stops probing (or the setup retries); waits for attempts in flight. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  /** Lost-write audit: this run's rows for the endpoint, read back after stop. */
  async audit(): Promise<CommittedRow[]> {
    if (this.#state !== 'stopped')
      throw new ProberRequestError(409, `stop probing first (state ${this.#state})`);
    if (!this.#prober) throw new ProberRequestError(409, 'setup never succeeded: there is nothing to audit');
    if (!this.#options.endpoint.probes.includes('write'))
      throw new ProberRequestError(409, `endpoint ${this.#options.endpoint.name} has no write probe`);
    try {
      // Always from the endpoint of the spec: a caller-chosen host would receive the password.
      const rows = await this.#prober.readBack();
      this.#log.info({ event: 'audit', rows: rows.length }, 'write read-back done');
      return rows;
    } catch (err) {
      const failure = this.#failureOf(err);
      this.#log.warn({ event: 'audit-failed', ...failure }, 'write read-back failed');
      throw new ProberRequestError(502, failure.message, { ...failure });
    }
  }

  /** GET /status, GET /samples, POST /stop, POST /audit, all behind the run's bearer token. */
  routes(app: FastifyInstance): void {
    requireRunToken(app, this.#options.apiToken, this.#log);
    app.setErrorHandler((err, _request, reply) => {
      if (err instanceof ProberRequestError)
        return reply.code(err.statusCode).send({ error: this.redact(err.message), ...err.details });
      const e = err as { statusCode?: number; message?: string };
      const code = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
      if (code === 500)
        this.#log.error({ event: 'http-error', err: this.redact(String(e.message)) }, 'request failed');
      return reply.code(code).send({ error: this.redact(String(e.message)) });
    });
    app.get('/status', async () => this.status());
    app.get('/samples', async (request) => {
      const query = request.query as { from?: string; limit?: string };
      const from = query.from === undefined ? 0 : Number(query.from);
      const limit = query.limit === undefined ? SAMPLES_PAGE_LIMIT : Number(query.limit);
      return this.samples(from, Number.isFinite(limit) ? Math.floor(limit) : SAMPLES_PAGE_LIMIT);
    });
    app.post('/stop', async () => {
      await this.stop();
      return this.status();
    });
    app.post('/audit', async (request) => {
      const body = request.body;
      if (body !== undefined && body !== null && (typeof body !== 'object' || Object.keys(body).length > 0))
        throw new ProberRequestError(
          400,
          'POST /audit takes no body (the audit reads from the endpoint of the spec)',
        );
      return { rows: await this.audit() };
    });
  }

  /** `text` with every credential this service has used replaced. */
  redact(text: string): string {
    return this.#redactor.redact(text);
  }

  async #runSetupLoop(): Promise<void> {
    const o = this.#options;
    while (!this.#stopping) {
      this.#setupAttempts++;
      let prober: Prober | undefined;
      try {
        const credentials = o.credentials();
        this.#redactor.add(credentials.password);
        // Per zone, samples and probe rows name the lane, so the zones' write keys never collide.
        const config = probeConfigFor({ ...o.endpoint, name: this.lane }, credentials, o.caFile);
        prober = new Prober({
          runId: o.runId,
          endpoint: config,
          sink: (sample) => this.record(sample),
          onSkip: (kind, _seq, reason) => this.#metrics.skipped(kind, reason),
          driver: o.driverFor?.(config),
          seqBase: o.seqBase,
        });
        await prober.setup();
      } catch (err) {
        await prober?.stop().catch(() => {});
        this.#setupFailed(this.#failureOf(err));
        await sleepUnlessAborted(this.#retryMs, this.#retryAbort.signal);
        continue;
      }
      if (this.#stopping) {
        await prober.stop().catch(() => {});
        return;
      }
      this.#prober = prober;
      this.#failure = undefined;
      this.#log.info({ event: 'setup-ok', attempts: this.#setupAttempts }, 'probe setup ok');
      prober.start(this.#options.phase ?? 0);
      this.#startedAt = new Date();
      this.#state = 'probing';
      this.#log.info(
        { event: 'started', kinds: o.endpoint.probes, interval: o.endpoint.interval },
        'probing started',
      );
      return;
    }
  }

  #setupFailed(failure: SetupFailure): void {
    const previous = this.#failure;
    this.#failure = failure;
    this.#state = 'setup-failed';
    // One line per distinct failure, not one every retry.
    const same =
      previous?.class === failure.class &&
      previous.code === failure.code &&
      previous.message === failure.message;
    const fields = {
      event: 'setup-failed',
      attempts: this.#setupAttempts,
      retryMs: this.#retryMs,
      ...failure,
    };
    if (same) this.#log.debug(fields, 'probe setup failed again');
    else this.#log.warn(fields, 'probe setup failed; retrying');
  }

  #failureOf(err: unknown): SetupFailure {
    let failure: SetupFailure;
    if (err instanceof ProbeSetupError) {
      failure = { class: err.outcome.class, message: err.message };
      if (err.outcome.code !== undefined) failure.code = err.outcome.code;
    } else if (err instanceof TlsConfigError) {
      failure = {
        class: 'tls_error',
        message: `endpoint \`${this.#options.endpoint.name}\`: ${err.message}`,
      };
    } else {
      const e = err as { code?: unknown; message?: unknown };
      failure = {
        class: 'other',
        message: `endpoint \`${this.#options.endpoint.name}\`: ${String(e.message)}`,
      };
      if (typeof e.code === 'string') failure.code = e.code;
    }
    failure.message = this.redact(failure.message);
    return failure;
  }

  /** Keeps one sample for the controller (the prober's sink; benchmarks feed synthetic ones). */
  record(sample: ProbeSample): void {
    if (sample.message !== undefined) sample.message = this.redact(sample.message);
    if (!this.#store.add(sample)) this.#metrics.dropped(sample.kind);
    this.#metrics.observe(sample);
  }

  async #stop(): Promise<void> {
    this.#stopRequestedAt = new Date();
    this.#retryAbort.abort();
    await this.#setupLoop;
    const wasProbing = this.#prober !== undefined;
    await this.#prober?.stop();
    this.#state = 'stopped';
    this.#stoppedAt = new Date();
    this.#log.info(
      { event: 'stopped', samples: this.#store.size, dropped: this.#store.dropped, wasProbing },
      'probing stopped',
    );
  }
}

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
