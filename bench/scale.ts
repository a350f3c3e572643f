// Scale: the operator against a real control plane (kube-apiserver + etcd, no node agent, so
// prober pods stay Pending) holding 1,000 FailoverExperiment objects, half Completed and half
// Pending (blocked on a missing Secret). The objects exist before the operator starts, so it
// lists all of them at start-up. Figures:
// - the operator's peak RSS (VmRSS of its process, sampled every second once the work queue
//   has drained), target < 200 MiB;
// - for a new experiment, the time from the create call to its first status update (a phase
//   or a condition, polled every 20 ms), p50 and max over a few runs, target < 1 s.
// The operator runs with the Node.js options the chart gives it (values.yaml nodeArgs);
// FAILWATCH_BENCH_NODE_ARGS="..." replaces them (empty: none) to compare.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { MAIN } from '../test/helpers/cli.ts';
import { type ControlPlane, startControlPlane } from '../test/helpers/kube.ts';

export const SCALE_TARGETS = { rssMiB: 200, firstStatusMs: 1000 };

export interface ScaleOptions {
  objects?: number;
  completed?: number;
  concurrency?: number;
  rssSampleSeconds?: number;
  latencyRuns?: number;
  /** How long to wait for the work queue to stay empty before measuring anyway. */
  drainTimeoutSeconds?: number;
  metricsListen?: string;
  /** Node.js options of the operator process (default: operatorNodeArgs()). */
  nodeOptions?: string[];
  log?: (line: string) => void;
}

export interface ScaleResult {
  objects: number;
  completed: number;
  pending: number;
  setupSeconds: number;
  /** Seconds from the operator's start to ready and an empty work queue (or to giving up). */
  drainSeconds: number;
  /** Whether the work queue stayed empty for 3 s in a row within the drain timeout. */
  drained: boolean;
  /** Work queue depth when the measurements started, and its range while sampling RSS. */
  depthAtStart: number;
  depthMin: number;
  depthMax: number;
  reconciles: number;
  reconcileRate: number;
  rssSamples: number;
  /** Peak over the whole run (start-up listing included); the target applies to it. */
  rssMaxMiB: number;
  /** Peak from start to the end of the drain wait, and over the 1 s samples after it. */
  rssStartupMaxMiB: number;
  rssSampledMaxMiB: number;
  /** The operator's V8 heap (used, total) and external memory at the RSS peak of the 1 s samples. */
  heapAtPeak?: { usedMiB: number; totalMiB: number; externalMiB: number };
  nodeOptions: string[];
  latenciesMs: number[];
  latencyP50Ms: number;
  latencyMaxMs: number;
  met: { rss: boolean; latency: boolean };
}

const NS = 'scale';
const GROUP = { group: 'failwatch.io', version: 'v1alpha1', plural: 'failoverexperiments' } as const;

type Obj = Record<string, unknown>;
/** The fields of a stored experiment this benchmark reads. */
interface Stored extends Obj {
  metadata: { name: string; generation?: number };
  status?: { phase?: string; conditions?: unknown[] };
}

function experiment(name: string, secret: string): Obj {
  return {
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverExperiment',
    metadata: { name, namespace: NS },
    spec: {
      trigger: { type: 'none' },
      endpoints: [
        {
          name: 'cluster',
          dialect: 'postgresql',
          host: '127.0.0.1',
          database: 'failwatch',
          credentials: { secretRef: { name: secret } },
        },
      ],
    },
  };
}

/** A small, realistic status of a finished run. */
function completedStatus(i: number, generation: number): Obj {
  const start = new Date(Date.now() - 3_600_000 + i * 1000);
  const at = (s: number) => new Date(start.getTime() + s * 1000).toISOString();
  const write = 8 + (i % 7) * 0.37;
  const read = 3 + (i % 5) * 0.21;
  return {
    phase: 'Completed',
    observedGeneration: generation,
    conditions: [
      {
        type: 'Running',
        status: 'False',
        reason: 'Completed',
        message: 'the run completed',
        observedGeneration: generation,
        lastTransitionTime: at(120),
      },
      {
        type: 'Passed',
        status: 'True',
        reason: 'WithinSLO',
        message: 'every SLO held',
        observedGeneration: generation,
        lastTransitionTime: at(120),
      },
    ],
    runId: `run-${i.toString(36).padStart(6, '0')}`,
    startTime: at(0),
    baselineStartTime: at(5),
    triggerTime: at(35),
    completionTime: at(120),
    trigger: { intentTime: at(35), calledTime: at(35.2), outcome: 'Skipped', action: 'none' },
    verdict: 'Pass',
    worstDowntimeSeconds: write,
    endpoints: [
      {
        name: 'cluster',
        writeDowntimeSeconds: write,
        writeLowerBoundSeconds: write - 0.1,
        readDowntimeSeconds: read,
        readLowerBoundSeconds: read - 0.1,
        recovered: true,
        errors: { connection_refused: 40 + (i % 11), connection_lost: 2, read_only: 3 },
        roleFlipSeconds: write - 0.5,
        lostWrites: 0,
        ambiguousWrites: 0,
        windows: [
          {
            kind: 'write',
            startSeconds: 0.1,
            endSeconds: write + 0.1,
            lowerBoundSeconds: write - 0.1,
            upperBoundSeconds: write,
          },
          {
            kind: 'read',
            startSeconds: 0.2,
            endSeconds: read + 0.2,
            lowerBoundSeconds: read - 0.1,
            upperBoundSeconds: read,
          },
        ],
        verdict: 'Pass',
      },
      {
        name: 'reader',
        readDowntimeSeconds: read / 2,
        readLowerBoundSeconds: read / 2 - 0.05,
        recovered: true,
        errors: { connection_refused: 12 },
        verdict: 'Pass',
      },
    ],
  };
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Sum of a metric's samples (every label set) in a Prometheus text exposition. */
function metricSum(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The Node.js options the chart runs the operator with, or FAILWATCH_BENCH_NODE_ARGS. */
export function operatorNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  const override = env.FAILWATCH_BENCH_NODE_ARGS;
  if (override !== undefined) return override.split(/\s+/).filter((a) => a !== '');
  const values = parse(readFileSync(new URL('../charts/failwatch/values.yaml', import.meta.url), 'utf8')) as {
    nodeArgs?: string[] | null;
  };
  return values.nodeArgs ?? [];
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

export async function runScale(opts: ScaleOptions = {}): Promise<ScaleResult> {
  const objects = opts.objects ?? 1000;
  const completed = opts.completed ?? Math.floor(objects / 2);
  const concurrency = opts.concurrency ?? 20;
  const rssSampleSeconds = opts.rssSampleSeconds ?? 20;
  const latencyRuns = opts.latencyRuns ?? 5;
  const drainTimeoutSeconds = opts.drainTimeoutSeconds ?? 90;
  const nodeOptions = opts.nodeOptions ?? operatorNodeArgs();
  const listen = opts.metricsListen ?? '127.0.95.5:18095';
  const log = opts.log ?? (() => {});
  const tmp = mkdtempSync(join(tmpdir(), 'fw-scale-'));
  const operatorLog = join(tmp, 'operator.log');
  let cp: ControlPlane | undefined;
  let operator: ChildProcess | undefined;
  const operatorTail = () => {
    try {
      return readFileSync(operatorLog, 'utf8').slice(-3000);
    } catch {
      return '';
    }
  };

  try {
    log('scale: starting kube-apiserver and etcd (no node agent)');
    cp = await startControlPlane({ nodeAgent: false });
    const kubectl = (args: string[]) =>
      execFileSync('kubectl', ['--kubeconfig', cp!.kubeconfigPath, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    kubectl(['apply', '-f', 'crds/']);
    kubectl(['create', 'namespace', 'failwatch-system']);
    kubectl(['create', 'namespace', NS]);
    kubectl(['wait', '--for=condition=Established', 'crd/failoverexperiments.failwatch.io', '--timeout=30s']);
    const admin = cp.kubeConfig();
    const core = admin.makeApiClient(CoreV1Api);
    const custom = admin.makeApiClient(CustomObjectsApi);
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'ok-secret' }, stringData: { username: 'failwatch', password: 'failwatch' } },
    });

    const setupStarted = performance.now();
    log(`scale: creating ${objects} experiments (${completed} then Completed), ${concurrency} at a time`);
    const indices = Array.from({ length: objects }, (_, i) => i);
    await pool(indices, concurrency, async (i) => {
      const name = `exp-${String(i).padStart(4, '0')}`;
      const created = (await custom.createNamespacedCustomObject({
        ...GROUP,
        namespace: NS,
        body: experiment(name, 'missing-secret'),
      })) as Stored;
      if (i >= completed) return;
      created.status = completedStatus(i, created.metadata.generation ?? 1);
      await custom.replaceNamespacedCustomObjectStatus({ ...GROUP, namespace: NS, name, body: created });
    });
    const setupSeconds = (performance.now() - setupStarted) / 1000;
    log(`scale: objects ready in ${setupSeconds.toFixed(1)} s; starting the operator`);

    const out = openSync(operatorLog, 'a');
    const drainStarted = performance.now();
    operator = spawn(
      process.execPath,
      [
        ...nodeOptions,
        MAIN,
        'operator',
        '--kubeconfig',
        cp.kubeconfigPath,
        '--namespace',
        'failwatch-system',
        '--prober-image',
        'failwatch:test',
        '--metrics-listen',
        listen,
        '--no-leader-elect',
      ],
      { stdio: ['ignore', out, out] },
    );
    const pid = operator.pid!;
    const alive = () => operator!.exitCode === null && operator!.signalCode === null;
    const fetchText = async (path: string) => {
      const res = await fetch(`http://${listen}${path}`, { signal: AbortSignal.timeout(2000) });
      return { status: res.status, text: await res.text() };
    };

    const queue = async () => {
      const metrics = (await fetchText('/metrics')).text;
      const mib = (name: string) => (metricSum(metrics, name) ?? 0) / 2 ** 20;
      return {
        depth: metricSum(metrics, 'failwatch_workqueue_depth'),
        reconciles: metricSum(metrics, 'failwatch_reconcile_total') ?? 0,
        heap: {
          usedMiB: mib('nodejs_heap_size_used_bytes'),
          totalMiB: mib('nodejs_heap_size_total_bytes'),
          externalMiB: mib('nodejs_external_memory_bytes'),
        },
      };
    };

    // Ready (hard limit 300 s), then the work queue empty for 3 s in a row (up to the drain
    // timeout; past it the figures are measured anyway and the backlog is reported).
    const readyDeadline = Date.now() + 300_000;
    let drainDeadline: number | undefined;
    let zeroSince: number | undefined;
    let drained = false;
    let depth = 0;
    let reconciles = 0;
    let peakKiB = 0;
    for (;;) {
      if (!alive()) throw new Error(`the operator exited early:\n${operatorTail()}`);
      peakKiB = Math.max(peakKiB, rssKiB(pid) ?? 0);
      try {
        if (drainDeadline === undefined && (await fetchText('/readyz')).status === 200)
          drainDeadline = Date.now() + drainTimeoutSeconds * 1000;
        if (drainDeadline !== undefined) {
          const q = await queue();
          depth = q.depth ?? 0;
          reconciles = q.reconciles;
          if (q.depth === 0 && reconciles > 0) {
            zeroSince ??= Date.now();
            if (Date.now() - zeroSince >= 3000) {
              drained = true;
              break;
            }
          } else zeroSince = undefined;
          if (Date.now() > drainDeadline) break;
        }
      } catch {
        // not listening yet
      }
      if (drainDeadline === undefined && Date.now() > readyDeadline)
        throw new Error(`the operator was not ready within 300 s:\n${operatorTail()}`);
      await sleep(500);
    }
    const drainSeconds = (performance.now() - drainStarted) / 1000;
    const depthAtStart = depth;
    const startupKiB = peakKiB;
    let sampledKiB = 0;
    log(
      drained
        ? `scale: ready and drained after ${drainSeconds.toFixed(1)} s (${reconciles} reconciles)`
        : `scale: ready, but the work queue did not stay empty within ${drainTimeoutSeconds} s ` +
            `(depth ${depth}, ${reconciles} reconciles); measuring anyway`,
    );

    log(`scale: sampling RSS and queue depth every second for ${rssSampleSeconds} s`);
    let samples = 0;
    let depthMin = depth;
    let depthMax = depth;
    const reconcilesBefore = reconciles;
    const sampleStarted = performance.now();
    let heapAtPeak: ScaleResult['heapAtPeak'];
    let peakSampleKiB = 0;
    for (let s = 0; s < rssSampleSeconds; s++) {
      const kib = rssKiB(pid);
      if (kib !== undefined) {
        samples++;
        sampledKiB = Math.max(sampledKiB, kib);
      }
      const q = await queue().catch(() => undefined);
      if (q && kib !== undefined && kib >= peakSampleKiB) {
        peakSampleKiB = kib;
        heapAtPeak = q.heap;
      }
      if (q?.depth !== undefined) {
        depthMin = Math.min(depthMin, q.depth);
        depthMax = Math.max(depthMax, q.depth);
        reconciles = q.reconciles;
      }
      await sleep(1000);
    }
    const reconcileRate = (reconciles - reconcilesBefore) / ((performance.now() - sampleStarted) / 1000);

    const latenciesMs: number[] = [];
    for (let run = 0; run < latencyRuns; run++) {
      const name = `new-${run}`;
      const started = performance.now();
      await custom.createNamespacedCustomObject({
        ...GROUP,
        namespace: NS,
        body: experiment(name, 'ok-secret'),
      });
      const giveUp = Date.now() + 30_000;
      for (;;) {
        const o = (await custom.getNamespacedCustomObject({ ...GROUP, namespace: NS, name })) as Stored;
        if (o.status?.phase || (o.status?.conditions?.length ?? 0) > 0) break;
        if (Date.now() > giveUp) throw new Error(`${name} got no status within 30 s:\n${operatorTail()}`);
        await sleep(20);
      }
      const ms = performance.now() - started;
      latenciesMs.push(ms);
      sampledKiB = Math.max(sampledKiB, rssKiB(pid) ?? 0);
      log(`scale: ${name} first status update after ${ms.toFixed(0)} ms`);
      await sleep(1000);
    }

    const sorted = [...latenciesMs].sort((a, b) => a - b);
    const rssMaxMiB = Math.max(startupKiB, sampledKiB) / 1024;
    const latencyP50Ms = percentile(sorted, 50);
    const latencyMaxMs = sorted.at(-1)!;
    return {
      objects,
      completed,
      pending: objects - completed,
      setupSeconds,
      drainSeconds,
      drained,
      depthAtStart,
      depthMin,
      depthMax,
      reconciles,
      reconcileRate,
      rssSamples: samples,
      rssMaxMiB,
      rssStartupMaxMiB: startupKiB / 1024,
      rssSampledMaxMiB: sampledKiB / 1024,
      heapAtPeak,
      nodeOptions,
      latenciesMs,
      latencyP50Ms,
      latencyMaxMs,
      met: {
        rss: rssMaxMiB < SCALE_TARGETS.rssMiB,
        latency: latencyMaxMs < SCALE_TARGETS.firstStatusMs,
      },
    };
  } finally {
    if (operator && operator.exitCode === null && operator.signalCode === null) {
      const exited = new Promise((r) => operator!.once('exit', r));
      operator.kill('SIGKILL');
      await exited;
    }
    await cp?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function formatScale(r: ScaleResult): string {
  const yes = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const rows = [
    ['FailoverExperiment objects', `${r.objects} (${r.completed} Completed, ${r.pending} Pending)`, '', ''],
    ['operator RSS max', `${r.rssMaxMiB.toFixed(1)} MiB`, `< ${SCALE_TARGETS.rssMiB} MiB`, yes(r.met.rss)],
    [
      '  start-up / steady (1 s samples)',
      `${r.rssStartupMaxMiB.toFixed(1)} / ${r.rssSampledMaxMiB.toFixed(1)} MiB`,
      '',
      '',
    ],
    [
      '  V8 heap used / total, external',
      r.heapAtPeak
        ? `${r.heapAtPeak.usedMiB.toFixed(0)} / ${r.heapAtPeak.totalMiB.toFixed(0)}, ${r.heapAtPeak.externalMiB.toFixed(0)} MiB`
        : '-',
      '',
      '',
    ],
    [
      'first status update p50 / max',
      `${r.latencyP50Ms.toFixed(0)} / ${r.latencyMaxMs.toFixed(0)} ms`,
      `< ${SCALE_TARGETS.firstStatusMs} ms`,
      yes(r.met.latency),
    ],
    ['queue empty 3 s before measuring', r.drained ? 'yes' : 'no (timed out)', '', ''],
    ['work queue depth while sampling', `${r.depthMin}..${r.depthMax}`, '', ''],
  ];
  const head = ['figure', 'value', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join(' | ')
      .trimEnd();
  return [
    'Scale (operator on a real kube-apiserver + etcd, objects listed at start-up)',
    line(head),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...rows.map(line),
    `  (operator: node ${r.nodeOptions.length > 0 ? `${r.nodeOptions.join(' ')} ` : ''}main.ts operator; ` +
      `heap figures at the highest 1 s RSS sample)`,
    `  (objects created and statuses set in ${r.setupSeconds.toFixed(1)} s; measuring began ` +
      `${r.drainSeconds.toFixed(1)} s after the operator started, queue depth ${r.depthAtStart}; ` +
      `${r.reconciles} reconciles, ${r.reconcileRate.toFixed(1)}/s while sampling; ${r.rssSamples} RSS samples ` +
      `at 1 s; latencies ${r.latenciesMs.map((x) => x.toFixed(0)).join(', ')} ms)`,
  ].join('\n');
}
