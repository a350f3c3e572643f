// The controller's sample path against real prober HTTP servers (ProberService on loopback):
// pulled page by page into running state and spill files, a pod lost mid-run keeps what was
// pulled from it, and the streamed analysis over the spill files equals analyzeRun over the
// same samples as objects.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import pino from 'pino';
import { analyzeRun, type RunMeta } from '../../src/analysis/analyze-run.ts';
import { analyzeRunStreamed } from '../../src/analysis/analyze-streamed.ts';
import type { EndpointSpec } from '../../src/api/experiment-spec.ts';
import { LABEL_ENDPOINT } from '../../src/controller/kube.ts';
import { PROBER_PORT } from '../../src/controller/prober-pods.ts';
import { ProberSamples } from '../../src/controller/prober-samples.ts';
import { reportLanesOf } from '../../src/controller/report-lanes.ts';
import { baselineHealth, RecoveryTracker } from '../../src/engine/recovery.ts';
import { RoleFlipWatcher } from '../../src/engine/trigger-protocol.ts';
import type { ProbeSample } from '../../src/probe/types.ts';
import { renderReportHtml, renderReportHtmlOfLanes } from '../../src/report/report-html.ts';
import { type HttpServer, startHttpServer } from '../../src/server/http.ts';
import { createRegistry } from '../../src/server/metrics.ts';
import { ProberService } from '../../src/server/prober-service.ts';
import { fixedRateLane, syntheticRun, T0_MS } from './analysis-synthetic-run.ts';

const TOKEN = 'controller-samples-test-token-0123456789';
const HOSTS = ['127.0.92.1', '127.0.92.2', '127.0.92.3'];

describe('ProberSamples against real prober servers', () => {
  const run = syntheticRun();
  // Pod 0: cluster; pod 1: the rest; pod 2: cluster's replacement (seqs from 100000).
  const first = run.samples.filter((s) => s.endpoint === 'cluster' && s.startMs < T0_MS + 8000);
  const replacement = fixedRateLane({
    endpoint: 'cluster',
    kind: 'write',
    fromMs: T0_MS + 12_000,
    toMs: T0_MS + 30_000,
    intervalMs: 100,
    outcomeAt: () => ({ class: 'ok', server: 'pg-2' }),
  }).map((s) => ({ ...s, seq: s.seq + 100_000, writeKey: `cluster#${s.seq + 100_000}` }));
  // Pod 1: proxy, with an hour-old block of 6,000 more so that a pull takes several pages.
  const early = (s: ProbeSample, n: number): ProbeSample => ({
    ...s,
    seq: s.seq + 1_000_000 * n,
    startMs: s.startMs - 3_600_000 + n * 40_000,
    endMs: s.endMs - 3_600_000 + n * 40_000,
    writeKey: `proxy#${s.seq + 1_000_000 * n}`,
  });
  const proxy = run.samples.filter((s) => s.endpoint === 'proxy');
  const proxyEarly = Array.from({ length: 15 }, (_, n) => proxy.map((s) => early(s, n + 1))).flat();
  const others = proxy;
  const services: ProberService[] = [];
  const servers: HttpServer[] = [];
  const pods = HOSTS.map(
    (ip, i) =>
      ({
        metadata: {
          uid: `uid-${i}`,
          name: `p-${i}`,
          labels: { [LABEL_ENDPOINT]: i === 1 ? 'proxy' : 'cluster' },
        },
        status: { podIP: ip, phase: 'Running' },
      }) as V1Pod,
  );

  before(async () => {
    for (const ip of HOSTS) {
      const service = new ProberService({
        runId: 'r',
        namespace: 'ns',
        experiment: 'x',
        endpoint: { name: 'cluster', probes: ['write'], interval: '100ms' } as unknown as EndpointSpec,
        credentials: () => ({ user: 'u', password: 'unused' }),
        apiToken: TOKEN,
        registry: createRegistry(),
        log: pino({ level: 'silent' }),
      });
      services.push(service);
      servers.push(
        await startHttpServer({
          host: ip,
          port: PROBER_PORT,
          registry: createRegistry(),
          ready: () => true,
          routes: (app) => service.routes(app),
        }),
      );
    }
  });
  after(async () => {
    for (const server of servers) await server.close();
  });

  it('pulls in pages into running state and spill files; the streamed analysis equals analyzeRun', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'failwatch-samples-test-'));
    const baselineStartMs = T0_MS - 10_000;
    const store = new ProberSamples(join(dir, 'uid'), baselineStartMs);
    // Before the trigger: pods 0 and 1 have their first halves.
    const half = (list: ProbeSample[]) => Math.floor(list.length / 2);
    for (const s of first.slice(0, half(first))) services[0]!.record(structuredClone(s));
    for (const s of others.slice(0, half(others))) services[1]!.record(structuredClone(s));
    await store.pull(pods.slice(0, 2), TOKEN);
    assert.equal(store.size, half(first) + half(others));
    // The observe phase starts: its state is fed what is held (read back from disk)...
    const lanes = run.endpoints.flatMap((e) => e.probes.map((kind) => ({ endpoint: e.name, kind })));
    const state = await store.observe(T0_MS, () => new RecoveryTracker(lanes, T0_MS));
    // ...then the rest, more than one page (5,000) at a time for pod 1, and pod 0 is lost
    // after its last pull: its samples stay.
    for (const s of first.slice(half(first))) services[0]!.record(structuredClone(s));
    for (const s of others.slice(half(others))) services[1]!.record(structuredClone(s));
    for (const s of proxyEarly) services[1]!.record(structuredClone(s));
    await store.pull(pods.slice(0, 2), TOKEN);
    for (const s of replacement) services[2]!.record(structuredClone(s));
    await store.pull([pods[1]!, pods[2]!], TOKEN);

    const pulled = [...first, ...others, ...proxyEarly, ...replacement];
    assert.ok(proxyEarly.length > 5000);
    assert.equal(store.size, pulled.length);
    // The running state is what the same state fed every sample at once would say.
    const direct = new RecoveryTracker(lanes, T0_MS);
    const flips = new RoleFlipWatcher(T0_MS);
    for (const s of pulled) {
      direct.add(s);
      flips.add(s);
    }
    assert.deepEqual(state.tracker.summary(), direct.summary());
    assert.equal(state.roleFlips.firstFlipMs(), flips.firstFlipMs());
    assert.ok(flips.firstFlipMs() !== undefined);
    assert.deepEqual(
      new Map(store.baselineHealth().map((l) => [l.lane, l])),
      new Map(baselineHealth(pulled.filter((s) => s.startMs >= baselineStartMs)).map((l) => [l.lane, l])),
    );
    assert.equal(store.newestEndMs, Math.max(...pulled.map((s) => s.endMs)));

    const { samples: _, ...meta } = run;
    const runMeta: RunMeta = {
      ...meta,
      endpoints: run.endpoints.map((e) => ({ ...e, intervalMs: 100, dnsIntervalMs: 100 })),
    };
    const expected = analyzeRun({ ...runMeta, samples: pulled });
    const streamed = await analyzeRunStreamed(runMeta, (endpoint) => store.spill.lanesOf(endpoint));
    // The lost prober's gap (8 s .. 12 s) shows as a coverage gap of the cluster's write lane.
    const cluster = expected.endpoints.find((e) => e.name === 'cluster')!;
    assert.equal(cluster.coverage!.lanes.find((l) => l.kind === 'write')!.gaps[0]!.cause, 'gap');
    assert.deepStrictEqual(JSON.parse(JSON.stringify(streamed)), JSON.parse(JSON.stringify(expected)));
    // The report drawn from the spill files is the report drawn from the sample objects.
    assert.equal(
      renderReportHtmlOfLanes(streamed, await reportLanesOf(streamed, store.spill)),
      renderReportHtml(expected, pulled),
    );
    store.remove();
    assert.equal(existsSync(join(dir, 'uid')), false);
  });
});
