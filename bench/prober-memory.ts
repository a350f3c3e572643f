// Prober memory: a real `failwatch probe` process (the prober pod's entry point) probing a real
// PostgreSQL with write and read probes every 10 ms (--interval) and a DNS probe every 100 ms
// against a real BIND, with the plain driver or the AWS Advanced NodeJS Wrapper (--client), under the same V8 settings the controller gives prober pods (PROBER_NODE_OPTIONS), its
// samples pulled every 10 s as the controller does. Prints RSS and V8 heap over time.
// --endpoints N: one process probes N endpoints (a shared prober pod, spec.probers.sharing
// Zone), each with its own pool, under the V8 settings and limit the controller gives such a pod,
// and the worst schedule lag p99 of its lanes is printed (the footprint target: 16 endpoints in
// 3 zones under 1 GiB in all, lag p99 under 5 ms at 10 ms).
//
// A real memory cgroup is not used: this machine's cgroups are v1 and belong to the sandbox
// that runs it, so the limit is enforced the way the pod's V8 settings enforce it (old space)
// and RSS is compared with the pod's memory limit.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseDurationMs } from '../src/api/duration.ts';
import { proberNodeOptions, proberResources } from '../src/controller/prober-resources.ts';
import { auroraPgTopologySql } from '../src/lab/aurora-topology.ts';
import { LAB_ZONE, startDns, stopDns } from '../src/lab/dns.ts';
import * as pg from '../src/lab/postgres.ts';
import type { ProbeSample } from '../src/probe/types.ts';
import { pgInstance, TempDir } from '../test/helpers/probe-servers.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
/** Own addresses and ports: the accuracy bench (127.0.80.x) or an e2e test may run alongside. */
/** Per client stack, so that a driver run and a wrapper run may go on side by side. */
const ADDRESSES = {
  driver: { pgHost: '127.0.82.2', dnsPort: 15382, api: '127.0.82.10:19190' },
  wrapper: { pgHost: '127.0.83.2', dnsPort: 15383, api: '127.0.83.10:19192' },
};
const TOKEN = 'bench-prober-memory-token-0123456789';
const PULL_EVERY_MS = 10_000;

export interface MemoryPoint {
  seconds: number;
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  samples: number;
  /** CPU of the prober process since the previous point, in % of one core. */
  cpuPercent: number;
  load1: number;
}

export interface ProberMemoryResult {
  nodeOptions: string;
  /** Whether the prober loaded its modules from a warmed compile cache (as in the image). */
  compileCache: boolean;
  endpoints: number;
  /** The worst schedule lag p50, p99 and maximum of any lane and kind at the end, ms. */
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** Write and read attempts' lag after the first STEADY_AFTER_MS, from the samples (SteadyLag). */
  steadyLag: { p50Ms: number; p99Ms: number; maxMs: number; attempts: number };
  client: 'driver' | 'wrapper';
  interval: string;
  limitMiB: number;
  durationSeconds: number;
  points: MemoryPoint[];
  peakRssMiB: number;
  samples: number;
  dropped: number;
  /** Samples per second over the run, all kinds. */
  samplesPerSecond: number;
  pulled: number;
  /** The prober process exited before the end (e.g. out of memory): its exit code / signal. */
  exited?: string;
}

export interface ProberMemoryOptions {
  durationSeconds: number;
  /** The client stack: the plain driver (default) or the AWS Advanced NodeJS Wrapper. */
  client?: 'driver' | 'wrapper';
  /** Write and read probe interval (default 10ms; the wrapper probes at 100ms or slower). */
  interval?: string;
  /** Seconds between RSS readings. */
  everySeconds: number;
  /** Endpoints probed by the one process (default 1). */
  endpoints?: number;
  nodeOptions?: string;
  /** Run the prober with a warmed compile cache, as the image does (default true). */
  compileCache?: boolean;
  onPoint?: (p: MemoryPoint) => void;
}

/** Git-ignored: the bench's compile cache, warmed as the image build warms /app/.compile-cache. */
const COMPILE_CACHE = fileURLToPath(new URL('../.cache/compile-cache', import.meta.url));

/** Fills COMPILE_CACHE with every module (src/cli/warm-compile-cache.ts), as the Dockerfile does. */
function warmCompileCache(): void {
  execFileSync(
    process.execPath,
    [fileURLToPath(new URL('../src/cli/warm-compile-cache.ts', import.meta.url))],
    {
      env: { PATH: process.env.PATH, NODE_COMPILE_CACHE: COMPILE_CACHE },
      stdio: 'ignore',
    },
  );
}

const MiB = 1024 * 1024;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/** utime + stime of `pid`, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : Number.NaN;
}

async function get<T>(path: string, base: string): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
  return (path === '/metrics' ? await res.text() : await res.json()) as T;
}

export async function runProberMemory(opts: ProberMemoryOptions): Promise<ProberMemoryResult> {
  const endpoints = opts.endpoints ?? 1;
  const nodeOptions = opts.nodeOptions ?? proberNodeOptions(endpoints);
  const compileCache = opts.compileCache ?? true;
  const names = Array.from({ length: endpoints }, (_, i) => (i === 0 ? 'cluster' : `cluster${i}`));
  // A pod of several endpoints serves each one's API under /endpoints/<name>.
  const lanePath = (name: string) => (endpoints === 1 ? '' : `/endpoints/${name}`);
  const dir = new TempDir();
  const client = opts.client ?? 'driver';
  const { pgHost: PG_HOST, dnsPort, api: API } = ADDRESSES[client];
  const DNS = { host: '127.0.0.1', port: dnsPort };
  const apiBase = `http://${API}`;
  const primary = pgInstance(dir, 'pg', PG_HOST);
  let dnsPid = 0;
  let child: ChildProcess | undefined;
  try {
    dnsPid = await startDns({ dir: dir.sub('dns'), ...DNS }, [
      { name: `cluster.${LAB_ZONE}`, type: 'CNAME', value: `pg-1.${LAB_ZONE}` },
      { name: `pg-1.${LAB_ZONE}`, type: 'A', value: PG_HOST },
    ]);
    await pg.initPrimary(primary);
    const interval = opts.interval ?? '10ms';
    // The wrapper reads Aurora's topology: the lab's emulation, one instance (pg-1).
    if (client === 'wrapper')
      await pg.psqlLocal(
        primary,
        auroraPgTopologySql([{ id: 'pg-1', host: PG_HOST, port: primary.port }]),
        pg.LAB_DB_NAME,
      );
    const [host, port] = API.split(':') as [string, string];
    const endpointOf = (name: string) => ({
      name,
      dialect: client === 'wrapper' ? 'aurora-postgresql' : 'postgresql',
      host: `cluster.${LAB_ZONE}`,
      port: primary.port,
      database: pg.LAB_DB_NAME,
      role: 'cluster',
      probes: ['write', 'read', 'dns'],
      connectionMode: 'pooled',
      interval,
      // Many endpoints on one local PostgreSQL: connects wait behind the probes' queries.
      ...(endpoints > 1 ? { connectTimeout: '5s' } : {}),
      ...(client === 'wrapper'
        ? {
            client: {
              stack: 'aws-advanced-nodejs-wrapper',
              plugins: ['failover2', 'efm2'],
              clusterInstanceHostPattern: `?.${LAB_ZONE}`,
            },
          }
        : {}),
      dns: { server: `${DNS.host}:${DNS.port}`, interval: '100ms' },
      tls: { mode: 'disable' },
      credentials: { secretRef: { name: 'pg' } },
    });
    if (compileCache) warmCompileCache();
    child = spawn(process.execPath, [MAIN, 'probe'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        PATH: process.env.PATH,
        NODE_OPTIONS: nodeOptions,
        ...(compileCache ? { NODE_COMPILE_CACHE: COMPILE_CACHE } : {}),
        FAILWATCH_RUN_ID: `memory-${Date.now()}`,
        FAILWATCH_EXPERIMENT: 'bench/prober-memory',
        ...Object.fromEntries(
          names.flatMap((name, i) => {
            const suffix = i === 0 ? '' : `_${i}`;
            return [
              [`FAILWATCH_ENDPOINT${suffix}`, JSON.stringify(endpointOf(name))],
              [`FAILWATCH_DB_USERNAME${suffix}`, pg.LAB_DB_USER],
              [`FAILWATCH_DB_PASSWORD${suffix}`, pg.LAB_DB_PASSWORD],
            ];
          }),
        ),
        ...(endpoints > 1 ? { FAILWATCH_LANES: String(endpoints) } : {}),
        FAILWATCH_LISTEN: API,
        FAILWATCH_METRICS_PORT: String(Number(port) + 1),
        FAILWATCH_API_TOKEN: TOKEN,
        FAILWATCH_LOG_LEVEL: 'warn',
      },
    });
    let exited: string | undefined;
    child.on('exit', (code, signal) => {
      exited = signal ?? `exit ${code}`;
    });
    const metricsBase = `http://${host}:${Number(port) + 1}`;
    const samplesHeld = async () =>
      (
        await Promise.all(names.map((name) => get<{ samples: number }>(`${lanePath(name)}/status`, apiBase)))
      ).reduce((n, st) => n + st.samples, 0);
    for (let i = 0; ; i++) {
      const states = await Promise.all(
        names.map((name) =>
          get<{ state: string }>(`${lanePath(name)}/status`, apiBase).catch(() => undefined),
        ),
      );
      if (states.every((st) => st?.state === 'probing')) break;
      if (exited || i > 600)
        throw new Error(
          `the prober did not start probing (${exited ?? 'timeout'}): ${JSON.stringify(states.filter((st) => st?.state !== 'probing'))}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }

    const started = performance.now();
    const points: MemoryPoint[] = [];
    const cursors = names.map(() => 0);
    const steady = new SteadyLag(parseDurationMs(interval), Date.now() + STEADY_AFTER_MS);
    let pulled = 0;
    let nextPull = started + PULL_EVERY_MS;
    let nextPoint = started;
    let lastCpu = { at: started, ms: cpuMs(child.pid!) };
    const end = started + opts.durationSeconds * 1000;
    while (!exited) {
      const now = performance.now();
      if (now >= nextPull) {
        for (const [i, name] of names.entries())
          for (;;) {
            const page = await get<{ next: number; samples: ProbeSample[] }>(
              `${lanePath(name)}/samples?from=${cursors[i]}`,
              apiBase,
            );
            pulled += page.samples.length;
            steady.add(name, page.samples);
            if (page.samples.length === 0 || page.next === cursors[i]) break;
            cursors[i] = page.next;
          }
        nextPull += PULL_EVERY_MS;
      }
      if (now >= nextPoint || now >= end) {
        const text = await get<string>('/metrics', metricsBase);
        const samples = await samplesHeld();
        const cpu = { at: performance.now(), ms: cpuMs(child.pid!) };
        const cpuPercent = cpu.at > lastCpu.at ? (100 * (cpu.ms - lastCpu.ms)) / (cpu.at - lastCpu.at) : 0;
        lastCpu = cpu;
        const point: MemoryPoint = {
          seconds: (now - started) / 1000,
          rssMiB: rssMiB(child.pid!),
          heapUsedMiB: metric(text, 'nodejs_heap_size_used_bytes') / MiB,
          heapTotalMiB: metric(text, 'nodejs_heap_size_total_bytes') / MiB,
          externalMiB: metric(text, 'nodejs_external_memory_bytes') / MiB,
          samples,
          cpuPercent,
          load1: loadavg()[0]!,
        };
        points.push(point);
        opts.onPoint?.(point);
        nextPoint += opts.everySeconds * 1000;
        if (now >= end) break;
      }
      await new Promise((r) =>
        setTimeout(r, Math.max(10, Math.min(nextPull, nextPoint, end) - performance.now())),
      );
    }
    const statuses = await Promise.all(
      names.map((name) =>
        get<{ samples: number; dropped: number }>(`${lanePath(name)}/status`, apiBase).catch(() => ({
          samples: 0,
          dropped: 0,
        })),
      ),
    );
    const status = {
      samples: statuses.reduce((n, st) => n + st.samples, 0) || (points.at(-1)?.samples ?? 0),
      dropped: statuses.reduce((n, st) => n + st.dropped, 0),
    };
    const lagText = await get<string>('/metrics', metricsBase).catch(() => '');
    const worstLag = (quantile: string) =>
      1000 *
      Math.max(
        0,
        ...[
          ...lagText.matchAll(
            new RegExp(`failwatch_probe_schedule_lag_seconds\\{[^}]*quantile="${quantile}"\\} (\\S+)`, 'g'),
          ),
        ].map((m) => Number(m[1])),
      );
    const lagP99Ms = worstLag('0\\.99');
    const lagP50Ms = worstLag('0\\.5');
    const lagMaxMs = worstLag('1');
    const seconds = (performance.now() - started) / 1000;
    return {
      nodeOptions,
      compileCache,
      endpoints,
      lagP50Ms,
      lagP99Ms,
      lagMaxMs,
      steadyLag: steady.summary(),
      client,
      interval,
      limitMiB: Number.parseInt(proberResources(undefined, endpoints).limits!.memory!, 10),
      durationSeconds: seconds,
      points,
      peakRssMiB: Math.max(...points.map((p) => p.rssMiB)),
      samples: status.samples,
      dropped: status.dropped,
      samplesPerSecond: status.samples / seconds,
      pulled,
      ...(exited ? { exited } : {}),
    };
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (dnsPid) await stopDns(dnsPid).catch(() => {});
    await pg.stop(primary, 'immediate').catch(() => {});
    dir.remove();
  }
}

/** Warm-up (module loading, JIT, the first logins) left out of the steady lag. */
const STEADY_AFTER_MS = 10_000;

/**
 * Schedule lag from the samples themselves: a kind's attempt n is due at origin + n x interval,
 * so startMs - n x interval is origin + lag; its minimum over the lane's attempts is the origin
 * (the earliest attempt on time). The lags of attempts after the warm-up give the steady figure
 * the prober's own histogram (counted since start) cannot.
 */
class SteadyLag {
  readonly #intervalMs: number;
  readonly #fromMs: number;
  readonly #lanes = new Map<string, { origin: number; late: number[] }>();
  constructor(intervalMs: number, fromMs: number) {
    this.#intervalMs = intervalMs;
    this.#fromMs = fromMs;
  }
  add(lane: string, samples: readonly ProbeSample[]): void {
    for (const sample of samples) {
      if (sample.kind !== 'write' && sample.kind !== 'read') continue;
      const key = `${lane}/${sample.kind}`;
      const state = this.#lanes.get(key) ?? { origin: Number.POSITIVE_INFINITY, late: [] };
      this.#lanes.set(key, state);
      const offset = sample.startMs - sample.seq * this.#intervalMs;
      if (offset < state.origin) state.origin = offset;
      if (sample.startMs >= this.#fromMs && state.late.length < 2_000_000) state.late.push(offset);
    }
  }
  summary(): { p50Ms: number; p99Ms: number; maxMs: number; attempts: number } {
    const lags = [...this.#lanes.values()].flatMap(({ origin, late }) => late.map((o) => o - origin));
    lags.sort((a, b) => a - b);
    const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))] ?? Number.NaN;
    return { p50Ms: at(0.5), p99Ms: at(0.99), maxMs: lags.at(-1) ?? Number.NaN, attempts: lags.length };
  }
}

export function formatProberMemory(r: ProberMemoryResult): string {
  const lines = [
    `Prober memory: failwatch probe (${r.client === 'wrapper' ? 'AWS Advanced NodeJS Wrapper, failover2 + efm2' : 'plain driver'}), ${r.endpoints === 1 ? 'one endpoint' : `${r.endpoints} endpoints in one process`}: pooled PostgreSQL write + read every ${r.interval}, DNS every 100 ms,`,
    `samples pulled every ${PULL_EVERY_MS / 1000} s; NODE_OPTIONS="${r.nodeOptions}", pod memory limit ${r.limitMiB} MiB; compile cache ${r.compileCache ? 'warm (as in the image)' : 'off'}`,
    '',
    '   time s   RSS MiB   heap used MiB   heap total MiB   external MiB    samples   CPU %   load',
  ];
  for (const p of r.points)
    lines.push(
      `${p.seconds.toFixed(0).padStart(9)} ${p.rssMiB.toFixed(1).padStart(9)} ${p.heapUsedMiB.toFixed(1).padStart(15)} ${p.heapTotalMiB.toFixed(1).padStart(16)} ${p.externalMiB.toFixed(1).padStart(14)} ${String(p.samples).padStart(10)} ${p.cpuPercent.toFixed(1).padStart(7)} ${p.load1.toFixed(2).padStart(6)}`,
    );
  const half = r.limitMiB / 2;
  lines.push(
    '',
    `peak RSS ${r.peakRssMiB.toFixed(1)} MiB over ${(r.durationSeconds / 60).toFixed(1)} min ` +
      `(target < ${half} MiB, half the limit: ${r.peakRssMiB < half ? 'met' : 'NOT met'}); ` +
      `${r.samples} samples (${r.samplesPerSecond.toFixed(0)}/s), ${r.dropped} dropped, ${r.pulled} pulled; ` +
      `schedule lag since start (worst lane): p50 ${r.lagP50Ms.toFixed(2)} ms, p99 ${r.lagP99Ms.toFixed(2)} ms, max ${r.lagMaxMs.toFixed(1)} ms; ` +
      `after the first ${STEADY_AFTER_MS / 1000} s (all write/read attempts, ${r.steadyLag.attempts}): p50 ${r.steadyLag.p50Ms.toFixed(2)} ms, p99 ${r.steadyLag.p99Ms.toFixed(2)} ms (target < 5 ms), max ${r.steadyLag.maxMs.toFixed(1)} ms` +
      (r.endpoints > 1
        ? `; ${r.endpoints} endpoints: ${(r.peakRssMiB / r.endpoints).toFixed(1)} MiB each`
        : '') +
      (r.exited ? `; the prober EXITED early: ${r.exited}` : ''),
  );
  return lines.join('\n');
}
