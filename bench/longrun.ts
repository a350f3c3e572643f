// Longrun: can the controller follow a long, dense run in bounded memory? Real prober HTTP
// servers (src/server/prober-service.ts, in a child process) serve a synthetic run of
// `endpoints` x write/read/dns at `intervalMs`, made as fast as the pipeline takes it; the
// controller's code (in another child process, so its RSS is its own) pulls it page by page and
// then runs the final analysis and report. Figures: the controller's peak RSS and heap (sampled
// every 100 ms), samples/s pulled, the final analysis and report times. Targets for the
// streamed path: RSS < 256 MiB throughout and the analysis < 30 s. `before` runs the old path
// (every sample an object, analyzeRun over all of them) on a shorter run to show the problem.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { type LongrunShape, longrunShape, samplesOf } from './longrun-shape.ts';

export const LONGRUN_TARGETS = { rssMiB: 256, analysisSeconds: 30 };

export interface LongrunFigures {
  mode: 'streamed' | 'objects';
  minutes: number;
  samples: number;
  passes: number;
  passMaxMs: number;
  pullSeconds: number;
  samplesPerSecond: number;
  analysisSeconds: number;
  reportSeconds: number;
  spillBytes: number;
  rssMaxMiB: number;
  heapMaxMiB: number;
  verdict: string;
  firstEndpoint: Record<string, unknown>;
  /** Set when the controller process did not finish (e.g. out of memory). */
  failed?: string;
}

export interface LongrunOptions {
  endpoints?: number;
  intervalMs?: number;
  /** Length of the streamed run (default 60: 16 x 3 x 10 ms = 17.3M samples). */
  minutes?: number;
  /** Length of the old path's run (0: skip it). */
  beforeMinutes?: number;
  /** Heap limit of the old path's process, MiB (the chart's 512Mi container limit). */
  beforeHeapMiB?: number;
  log?: (line: string) => void;
}

function node(args: string[], nodeArgs: string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function runOnce(
  mode: 'streamed' | 'objects',
  shape: LongrunShape,
  minutes: number,
  nodeArgs: string[],
  log: (line: string) => void,
): Promise<LongrunFigures> {
  const probers = node([new URL('./longrun-probers.ts', import.meta.url).pathname, JSON.stringify(shape)]);
  let stderr = '';
  probers.stderr!.on('data', (chunk) => {
    stderr += chunk;
  });
  const lines = createInterface({ input: probers.stdout! });
  try {
    const [first] = (await once(lines, 'line')) as [string];
    if (first !== 'ready') throw new Error(`probers did not start: ${first} ${stderr}`);
    lines.on('line', (line) => log(`probers: ${line}`));
    const controller = spawn(
      process.execPath,
      [
        ...nodeArgs,
        new URL('./longrun-controller.ts', import.meta.url).pathname,
        mode,
        JSON.stringify(shape),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LONGRUN_EXPECTED_SAMPLES: String(samplesOf(shape)) },
      },
    );
    let out = '';
    let err = '';
    controller.stdout!.on('data', (chunk) => {
      out += chunk;
    });
    controller.stderr!.on('data', (chunk) => {
      err += chunk;
    });
    const [code, signal] = (await once(controller, 'exit')) as [number | null, string | null];
    const last = out.trim().split('\n').at(-1) ?? '';
    if (code !== 0 || !last.startsWith('{')) {
      const reason = /heap out of memory|Allocation failed/i.test(err)
        ? 'out of memory (heap limit reached)'
        : `exit ${code ?? signal}: ${(err.split('\n').find((line) => /Error/.test(line)) ?? err.trim().split('\n').at(-1) ?? '').trim()}`;
      return { mode, minutes, failed: reason } as LongrunFigures;
    }
    return { ...(JSON.parse(last) as LongrunFigures), minutes };
  } finally {
    probers.kill('SIGKILL');
    if (probers.exitCode === null) await once(probers, 'exit');
  }
}

export async function runLongrun(options: LongrunOptions = {}): Promise<LongrunFigures[]> {
  const log = options.log ?? (() => {});
  const endpoints = options.endpoints ?? 16;
  const intervalMs = options.intervalMs ?? 10;
  const figures: LongrunFigures[] = [];
  const beforeMinutes = options.beforeMinutes ?? 10;
  if (beforeMinutes > 0) {
    const shape = longrunShape(endpoints, intervalMs, beforeMinutes);
    log(
      `longrun before: the old path (objects + analyzeRun), ${samplesOf(shape)} samples, heap limit ${options.beforeHeapMiB ?? 512} MiB`,
    );
    figures.push(
      await runOnce(
        'objects',
        shape,
        beforeMinutes,
        [`--max-old-space-size=${options.beforeHeapMiB ?? 512}`],
        log,
      ),
    );
  }
  const minutes = options.minutes ?? 60;
  const shape = longrunShape(endpoints, intervalMs, minutes);
  log(`longrun: the controller's streamed path, ${samplesOf(shape)} samples`);
  figures.push(await runOnce('streamed', shape, minutes, ['--optimize-for-size'], log));
  return figures;
}

const mib = (value: number) => value.toFixed(0);

export function formatLongrun(figures: readonly LongrunFigures[]): string {
  const lines = [
    `Longrun: 16 endpoints x write/read/dns at 10 ms, real prober HTTP servers, synthetic samples (targets: controller RSS < ${LONGRUN_TARGETS.rssMiB} MiB, final analysis < ${LONGRUN_TARGETS.analysisSeconds} s)`,
    '',
    '| path | run | samples | controller RSS max | heap max | pulled/s | final analysis | report | spill on disk |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const f of figures) {
    const path = f.mode === 'objects' ? 'before: objects + analyzeRun' : 'after: compact state + streamed';
    if (f.failed) {
      lines.push(`| ${path} | ${f.minutes} min | - | ${f.failed} | | | | | |`);
      continue;
    }
    lines.push(
      `| ${path} | ${f.minutes} min | ${(f.samples / 1e6).toFixed(2)}M | ${mib(f.rssMaxMiB)} MiB | ${mib(f.heapMaxMiB)} MiB | ${Math.round(f.samplesPerSecond / 1000)}k | ${f.analysisSeconds.toFixed(1)} s | ${f.reportSeconds.toFixed(1)} s | ${f.spillBytes ? `${mib(f.spillBytes / 1024 / 1024)} MiB` : '-'} |`,
    );
  }
  for (const f of figures)
    if (!f.failed)
      lines.push(
        `  ${f.mode}: verdict ${f.verdict}; endpoint-0 ${JSON.stringify(f.firstEndpoint)}; ${f.passes} pull passes, the longest ${f.passMaxMs} ms`,
      );
  return lines.join('\n');
}
