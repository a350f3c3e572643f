// The longrun bench's controller side, in its own process so that its RSS is the controller's
// alone. Arguments: mode (`streamed`: the controller's code, ProberSamples pulling page by page
// into running state and spill files, then analyzeRunStreamed and the report from the spill;
// `objects`: the old path, every sample kept as an object and analyzeRun over all of them) and
// the LongrunShape as JSON. Pulls until the probers have recorded everything and a pull brings
// nothing new, as the observe loop would (compressed time: no wait between passes), then runs
// the final analysis. Prints one JSON line with the figures.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { analyzeRun, type RunMeta } from '../src/analysis/analyze-run.ts';
import { analyzeRunStreamed } from '../src/analysis/analyze-streamed.ts';
import type { Results } from '../src/analysis/results.ts';
import { LABEL_ENDPOINT } from '../src/controller/kube.ts';
import { ProberClient } from '../src/controller/prober-pods.ts';
import { ProberSamples } from '../src/controller/prober-samples.ts';
import { reportLanesOf } from '../src/controller/report-lanes.ts';
import { RecoveryTracker } from '../src/engine/recovery.ts';
import type { ProbeSample } from '../src/probe/types.ts';
import { renderReportHtml, renderReportHtmlOfLanes } from '../src/report/report-html.ts';
import { type LongrunShape, proberHost } from './longrun-shape.ts';

const mode = process.argv[2] as 'streamed' | 'objects';
const shape = JSON.parse(process.argv[3]!) as LongrunShape;
const MiB = 1024 * 1024;

let rssMax = 0;
let heapMax = 0;
const sampleMemory = () => {
  const m = process.memoryUsage();
  rssMax = Math.max(rssMax, m.rss);
  heapMax = Math.max(heapMax, m.heapUsed);
};
const sampler = setInterval(sampleMemory, 100);

const endpoints = Array.from({ length: shape.endpoints }, (_, e) => `endpoint-${e}`);
const pods = endpoints.map(
  (name, e) =>
    ({
      metadata: { uid: `uid-${e}`, name: `prober-${e}`, labels: { [LABEL_ENDPOINT]: name } },
      status: { podIP: proberHost(e), phase: 'Running' },
    }) as V1Pod,
);
/** How many samples the probers will hold: the run is pulled once all are there. */
const expected = Number(process.env.LONGRUN_EXPECTED_SAMPLES);

function meta(observeEndMs: number, dropped: Record<string, number>): RunMeta {
  return {
    experiment: { name: 'longrun', namespace: 'bench', runId: 'longrun' },
    phases: {
      baselineStartMs: shape.startMs,
      triggerMs: shape.t0Ms,
      observeEndMs,
      coverageEndMs: shape.endMs,
    },
    trigger: { type: 'aws-rds', action: 'FailoverDBCluster', target: 'bench', events: [] },
    endpoints: endpoints.map((name) => ({
      name,
      probes: shape.kinds,
      intervalMs: shape.intervalMs,
      dnsIntervalMs: shape.intervalMs,
    })),
    droppedSamples: dropped,
    defaultSlo: { maxWriteDowntimeSeconds: 30, maxReadDowntimeSeconds: 30 },
  };
}

const started = performance.now();
let passes = 0;
let pulled = 0;
let passMaxMs = 0;
let results: Results;
let pullSeconds: number;
let analysisSeconds: number;
let reportSeconds: number;
let reportBytes: number;
let spillBytes = 0;
if (mode === 'streamed') {
  const store = new ProberSamples(mkdtempSync(join(tmpdir(), 'failwatch-longrun-')), shape.startMs);
  const lanes = endpoints.flatMap((endpoint) =>
    shape.kinds.map((kind) => ({ endpoint, kind, intervalMs: shape.intervalMs })),
  );
  const { tracker, roleFlips } = await store.observe(
    shape.t0Ms,
    () => new RecoveryTracker(lanes, shape.t0Ms),
  );
  for (;;) {
    const before = store.size;
    const passStarted = performance.now();
    await store.pull(pods, shape.token);
    // What the observe loop asks each pass.
    tracker.allRecovered(store.newestEndMs, 10_000);
    roleFlips.firstFlipMs();
    store.baselineHealth();
    passMaxMs = Math.max(passMaxMs, performance.now() - passStarted);
    passes++;
    if (store.size === before && store.size >= expected) break;
    if (store.size === before) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  pulled = store.size;
  pullSeconds = (performance.now() - started) / 1000;
  const analysisStarted = performance.now();
  results = await analyzeRunStreamed(meta(store.newestEndMs, store.droppedByEndpoint()), (endpoint) =>
    store.spill.lanesOf(endpoint),
  );
  analysisSeconds = (performance.now() - analysisStarted) / 1000;
  const reportStarted = performance.now();
  reportBytes = renderReportHtmlOfLanes(results, await reportLanesOf(results, store.spill)).length;
  reportSeconds = (performance.now() - reportStarted) / 1000;
  spillBytes = store.spill.bytes;
  store.remove();
} else {
  const samples: ProbeSample[] = [];
  const next = new Map<string, number>();
  let newestEndMs = 0;
  for (;;) {
    const before = samples.length;
    const passStarted = performance.now();
    await Promise.all(
      pods.map((p) =>
        new ProberClient(p.status!.podIP!, shape.token).eachPageFrom(
          next.get(p.metadata!.uid!) ?? 0,
          (page) => {
            for (const s of page.samples) {
              samples.push(s);
              if (s.endMs > newestEndMs) newestEndMs = s.endMs;
            }
            next.set(p.metadata!.uid!, page.next);
          },
        ),
      ),
    );
    passMaxMs = Math.max(passMaxMs, performance.now() - passStarted);
    passes++;
    if (samples.length === before && samples.length >= expected) break;
    if (samples.length === before) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  pulled = samples.length;
  pullSeconds = (performance.now() - started) / 1000;
  const analysisStarted = performance.now();
  results = analyzeRun({ ...meta(newestEndMs, {}), samples });
  analysisSeconds = (performance.now() - analysisStarted) / 1000;
  const reportStarted = performance.now();
  reportBytes = renderReportHtml(results, samples).length;
  reportSeconds = (performance.now() - reportStarted) / 1000;
}
sampleMemory();
clearInterval(sampler);
const first = results.endpoints[0]!;
process.stdout.write(
  `${JSON.stringify({
    mode,
    samples: pulled,
    passes,
    passMaxMs: Math.round(passMaxMs),
    pullSeconds,
    samplesPerSecond: Math.round(pulled / pullSeconds),
    analysisSeconds,
    reportSeconds,
    reportBytes,
    spillBytes,
    rssMaxMiB: rssMax / MiB,
    heapMaxMiB: heapMax / MiB,
    verdict: results.verdict.result,
    firstEndpoint: {
      writeDowntimeSeconds: first.write?.downtimeSeconds,
      readDowntimeSeconds: first.read?.downtimeSeconds,
      roleFlipSeconds: first.roleFlipSeconds,
      dnsFlipSeconds: first.dnsFlipSeconds,
      attempts: first.write?.attempts,
      coverageComplete: first.coverage?.complete,
    },
  })}\n`,
);
process.exit(0);
