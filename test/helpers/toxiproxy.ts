// Toxiproxy (Shopify/toxiproxy v2), a real fault-injecting TCP proxy, as ground truth for the
// measuring instrument: it sits between the probe and a real database and injects outages of
// a known length. The server binary is built from the Go module proxy by
// scripts/build-toxiproxy (cached in .cache/bin, per pinned version).
//
// Fault kinds and what a client sees (Toxiproxy 2.12 mechanics, read from its source):
// - `refuse`: the proxy is disabled: its listener closes (new connections: ECONNREFUSED) and
//   every connection through it is closed (pooled connections die).
// - `reset`: a `reset_peer` toxic (timeout 0) on the downstream (server -> client) stream: the
//   first data the server sends on any connection, new or existing, makes Toxiproxy close it
//   (with SO_LINGER 0, i.e. a TCP RST, for connections opened while the toxic is present).
// - `blackhole`: a `timeout` toxic with timeout 0 on the downstream stream: the server's data
//   is silently dropped, so connects and queries hang until the client's own deadline. When
//   the toxic is removed Toxiproxy closes every connection that passed through it, so hung
//   attempts end (connection lost) at the injected end rather than at their deadline.
// - `latency`: a `latency` toxic on the downstream stream: every chunk the server sends is held
//   `latencyMs`. When the toxic is removed, chunks still held are released at once.
//
// Ground truth: each change is in effect when its API call returns (Toxiproxy applies it to
// the listener and to all live connections before answering), so the injected window runs
// from the return of the call that starts the fault to the return of the call that ends it.
// Times are epoch ms on the same clock as the probe's samples (timeOrigin + performance.now()).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const FAULT_KINDS = ['refuse', 'reset', 'blackhole', 'latency'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface HostPort {
  host: string;
  port: number;
}

export interface FaultOptions {
  /** `latency` only: ms added to every chunk the server sends. */
  latencyMs?: number;
}

/** An injected outage as Toxiproxy applied it. */
export interface InjectedWindow {
  kind: FaultKind;
  requestedMs: number;
  /** Epoch ms the call starting the fault was sent. */
  startSentMs: number;
  /** Epoch ms the call starting the fault returned: the fault is in effect (ground truth start). */
  startMs: number;
  /** Epoch ms the call ending the fault was sent. */
  endSentMs: number;
  /** Epoch ms the call ending the fault returned: the fault is gone (ground truth end). */
  endMs: number;
}

/** Wall-clock epoch ms on the probe's time base. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Builds the pinned toxiproxy-server when missing (a cold build takes a minute); returns its path. */
export function toxiproxyBinary(): string {
  const out = execFileSync('bash', [join(REPO, 'scripts', 'build-toxiproxy')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 15 * 60_000,
  });
  return out.trim().split('\n').at(-1)!;
}

export class ToxiproxyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToxiproxyError';
  }
}

/** A running toxiproxy-server and its HTTP API. */
export class Toxiproxy {
  readonly api: HostPort;
  /** The pinned version, e.g. `v2.12.0`. */
  readonly version: string;
  readonly #child: ChildProcess;

  private constructor(api: HostPort, version: string, child: ChildProcess) {
    this.api = api;
    this.version = version;
    this.#child = child;
  }

  /** Starts toxiproxy-server on `api` (default 127.0.80.1:18474), its log in `logFile`. */
  static async start(options: { api?: HostPort; logFile?: string } = {}): Promise<Toxiproxy> {
    const api = options.api ?? { host: '127.0.80.1', port: 18474 };
    const binary = toxiproxyBinary();
    const fd = openSync(options.logFile ?? '/dev/null', 'a');
    let child: ChildProcess;
    try {
      child = spawn(binary, ['-host', api.host, '-port', String(api.port)], {
        stdio: ['ignore', fd, fd],
        // Every accepted connection is an info line; 100 connections/s would flood the log.
        env: { ...process.env, LOG_LEVEL: 'warn' },
      });
    } finally {
      closeSync(fd);
    }
    child.on('error', () => {});
    const proxy = new Toxiproxy(api, basename(binary).replace(/^toxiproxy-server-/, ''), child);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new ToxiproxyError(`toxiproxy-server exited (${child.exitCode})`);
      try {
        await proxy.request('GET', '/version');
        return proxy;
      } catch (err) {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new ToxiproxyError(`toxiproxy-server did not answer on ${api.host}:${api.port}: ${err}`);
        }
        await sleep(50);
      }
    }
  }

  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const init: RequestInit = { method, signal: AbortSignal.timeout(5000) };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const res = await fetch(`http://${this.api.host}:${this.api.port}${path}`, init);
    const text = await res.text();
    if (!res.ok) throw new ToxiproxyError(`${method} ${path}: HTTP ${res.status} ${text.trim()}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** A new proxy `listen` -> `upstream`, enabled, without toxics. */
  async createProxy(name: string, listen: HostPort, upstream: HostPort): Promise<ToxicProxy> {
    await this.request('POST', '/proxies', {
      name,
      listen: `${listen.host}:${listen.port}`,
      upstream: `${upstream.host}:${upstream.port}`,
      enabled: true,
    });
    return new ToxicProxy(this, name, listen);
  }

  async deleteProxy(name: string): Promise<void> {
    await this.request('DELETE', `/proxies/${encodeURIComponent(name)}`);
  }

  /** Stops the server (SIGTERM, then SIGKILL); its proxies and their connections go with it. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

/** One proxy of a Toxiproxy server: the address the probe connects to. */
export class ToxicProxy {
  readonly name: string;
  readonly listen: HostPort;
  readonly #server: Toxiproxy;
  #active: { kind: FaultKind; toxic?: string } | undefined;

  constructor(server: Toxiproxy, name: string, listen: HostPort) {
    this.#server = server;
    this.name = name;
    this.listen = listen;
  }

  get #path(): string {
    return `/proxies/${encodeURIComponent(this.name)}`;
  }

  /** Starts a fault; resolves when it is in effect. */
  async begin(kind: FaultKind, options: FaultOptions = {}): Promise<void> {
    if (this.#active) throw new ToxiproxyError(`proxy ${this.name}: a ${this.#active.kind} fault is active`);
    if (kind === 'refuse') {
      await this.#server.request('POST', this.#path, { enabled: false });
      this.#active = { kind };
      return;
    }
    const toxic = `failwatch-${kind}`;
    const spec =
      kind === 'reset'
        ? { type: 'reset_peer', attributes: { timeout: 0 } }
        : kind === 'blackhole'
          ? { type: 'timeout', attributes: { timeout: 0 } }
          : { type: 'latency', attributes: { latency: requireLatency(options), jitter: 0 } };
    await this.#server.request('POST', `${this.#path}/toxics`, {
      name: toxic,
      stream: 'downstream',
      toxicity: 1,
      ...spec,
    });
    this.#active = { kind, toxic };
  }

  /** Ends the active fault; resolves when it is gone. */
  async end(): Promise<void> {
    const active = this.#active;
    if (!active) return;
    if (active.toxic === undefined) await this.#server.request('POST', this.#path, { enabled: true });
    else await this.#server.request('DELETE', `${this.#path}/toxics/${active.toxic}`);
    this.#active = undefined;
  }

  /**
   * Injects a fault for `durationMs`: the end call is sent so that the interval between the
   * two calls' returns is as close to `durationMs` as the API latency allows. Returns the
   * window as applied (ground truth).
   */
  async inject(kind: FaultKind, durationMs: number, options: FaultOptions = {}): Promise<InjectedWindow> {
    const startSentMs = nowMs();
    await this.begin(kind, options);
    const startMs = nowMs();
    // The end call takes about as long as the start call took to return.
    const callMs = startMs - startSentMs;
    await sleepUntil(startMs + durationMs - callMs);
    const endSentMs = nowMs();
    await this.end();
    const endMs = nowMs();
    return { kind, requestedMs: durationMs, startSentMs, startMs, endSentMs, endMs };
  }
}

function requireLatency(options: FaultOptions): number {
  const latency = options.latencyMs;
  if (latency === undefined || !(latency > 0))
    throw new ToxiproxyError('a latency fault needs latencyMs > 0');
  return Math.round(latency);
}

/** Sleeps until epoch ms `atMs`: a timer for the bulk, then setImmediate polling for the last ms. */
export async function sleepUntil(atMs: number): Promise<void> {
  for (;;) {
    const left = atMs - nowMs();
    if (left <= 0) return;
    if (left > 3) await sleep(left - 2);
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
