import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeRun, type RunInput } from '../../src/analysis/analyze-run.ts';
import {
  FRESH_SAMPLES_MS,
  laneCoverage,
  laneCoverageEnd,
  maxGapMs,
  recoveredThroughAtDecision,
} from '../../src/analysis/coverage.ts';
import type { Sample } from '../../src/analysis/sample.ts';
import { statusSummary } from '../../src/analysis/status-summary.ts';
import { fixedRateLane, syntheticRun, T0_MS } from './analysis-synthetic-run.ts';

const at = (seconds: number) => T0_MS + seconds * 1000;

/** The cluster endpoint of the synthetic run with its intervals known (coverage checked). */
function withIntervals(input: RunInput): RunInput {
  return {
    ...input,
    endpoints: input.endpoints.map((e) => ({ ...e, intervalMs: 100, dnsIntervalMs: 500 })),
  };
}

/** Drops `endpoint`'s samples that started in [fromS, toS) (a lost prober). */
function without(input: RunInput, endpoint: string, fromS: number, toS: number): RunInput {
  return {
    ...input,
    samples: input.samples.filter(
      (s) => s.endpoint !== endpoint || s.startMs < at(fromS) || s.startMs >= at(toS),
    ),
  };
}

describe('laneCoverage', () => {
  const lane = { endpoint: 'e', kind: 'write' as const, intervalMs: 100 };
  const samples = (starts: number[]): Sample[] =>
    starts.map((s, seq) => ({ endpoint: 'e', kind: 'write', seq, startMs: s, endMs: s + 2, class: 'ok' }));

  it('allows max(5 x interval, 1 s) between attempt starts', () => {
    assert.equal(maxGapMs(10), 1000);
    assert.equal(maxGapMs(100), 1000);
    assert.equal(maxGapMs(500), 2500);
    const ok = laneCoverage(lane, samples([0, 1000, 2000, 2900]), { fromMs: 0, toMs: 3900 });
    assert.deepEqual(ok.gaps, []);
    assert.equal(ok.endCovered, true);
  });

  it('finds gaps between attempts, at the start and at the end, and a lane without samples', () => {
    const c = laneCoverage(lane, samples([1500, 2000, 3001, 4000]), { fromMs: 0, toMs: 6000 });
    assert.deepEqual(c.gaps, [
      { fromMs: 0, toMs: 1500, cause: 'start' },
      { fromMs: 2000, toMs: 3001, cause: 'gap' },
      { fromMs: 4000, toMs: 6000, cause: 'end' },
    ]);
    assert.equal(c.endCovered, false);
    const none = laneCoverage(lane, [], { fromMs: 0, toMs: 6000 });
    assert.deepEqual(none.gaps, [{ fromMs: 0, toMs: 6000, cause: 'no-samples' }]);
  });

  it("ignores a gap that ended before the span (the probers' warm-up), not one across its start", () => {
    // A 1.5 s stall in the warm-up (-2500 .. -1000) is not the run's; -800 .. 400 crosses the start.
    const c = laneCoverage(lane, samples([-2500, -1000, -800, 400, 1000]), { fromMs: 0, toMs: 1500 });
    assert.deepEqual(c.gaps, [{ fromMs: -800, toMs: 400, cause: 'gap' }]);
  });
});

describe('laneCoverageEnd and recoveredThroughAtDecision (the operator)', () => {
  // The controller asked at 8100 ms; last attempt of a lane at 8017 ms (300 ms interval).
  const lane = { endpoint: 'e', kind: 'write' as const, intervalMs: 300 };
  const last = [
    { endpoint: 'e', kind: 'write' as const, seq: 0, startMs: 8017, endMs: 8019, class: 'ok' as const },
  ];

  it('a prober frozen when the stop came (it arrived 10.4 s late): covered up to the ask', () => {
    const end = laneCoverageEnd(8100, 18_560);
    assert.equal(end, 8100);
    assert.equal(laneCoverage(lane, last, { fromMs: 0, toMs: end }).endCovered, true);
    // Held to the late arrival instead, the lane showed an end gap of 10.5 s (the CI failure).
    assert.equal(laneCoverage(lane, last, { fromMs: 0, toMs: 18_560 }).endCovered, false);
  });

  it('a prober whose clock is behind is held to its own stop; one that did not answer, or gave no time, to the ask', () => {
    assert.equal(laneCoverageEnd(8100, 7900), 7900);
    assert.equal(laneCoverageEnd(8100, undefined), 8100);
    assert.equal(laneCoverageEnd(8100, Number.NaN), 8100);
  });

  it('a prober that stopped probing long before the ask still shows its end gap', () => {
    const end = laneCoverageEnd(8100, 8120);
    const early = [{ ...last[0]!, startMs: 6000, endMs: 6002 }];
    assert.deepEqual(laneCoverage(lane, early, { fromMs: 5000, toMs: end }).gaps, [
      { fromMs: 6000, toMs: 8100, cause: 'end' },
    ]);
  });

  it('what the pass that ended observation proved bounds every lane, only on fresh samples', () => {
    // The CI case: the pass began at 8050 ms and waited 10 s for a frozen pod; the others'
    // samples reached 8040 ms and showed every lane recovered: nothing after 8040 ms is owed.
    const proved = recoveredThroughAtDecision({ recovered: true, newestEndMs: 8040, passStartMs: 8050 });
    assert.equal(proved, 8040);
    assert.equal(laneCoverageEnd(18_100, 18_560, proved), 8040);
    assert.equal(
      laneCoverage(lane, last, { fromMs: 0, toMs: laneCoverageEnd(18_100, 18_560, proved) }).endCovered,
      true,
    );
    // Observation went on for minutes after the probers' data stopped (RDS not settled): stale.
    assert.equal(
      recoveredThroughAtDecision({ recovered: true, newestEndMs: 8040, passStartMs: 90_000 }),
      undefined,
    );
    assert.equal(
      recoveredThroughAtDecision({
        recovered: true,
        newestEndMs: 8040,
        passStartMs: 8040 + FRESH_SAMPLES_MS + 1,
      }),
      undefined,
    );
    // Ended without every lane recovered (observe.maxDuration): the probers owe samples to their stop.
    assert.equal(
      recoveredThroughAtDecision({ recovered: false, newestEndMs: 8040, passStartMs: 8050 }),
      undefined,
    );
    assert.equal(laneCoverageEnd(18_100, 18_560, undefined), 18_100);
  });
});

describe('analyzeRun with coverage', () => {
  it('a complete run keeps its verdict and reports complete coverage', () => {
    const results = analyzeRun(withIntervals(syntheticRun()));
    const cluster = results.endpoints.find((e) => e.name === 'cluster')!;
    assert.equal(cluster.coverage!.complete, true);
    assert.deepEqual(
      cluster.coverage!.lanes.map((l) => [l.kind, l.attempts, l.gaps.length]),
      [
        ['write', 400, 0],
        ['read', 400, 0],
        ['dns', 80, 0],
      ],
    );
    assert.deepEqual(results.verdict.inconclusive, []);
    assert.equal(cluster.write!.downtimeSeconds, 6.1);
  });

  it('a prober lost during the outage and replaced: Inconclusive, the gap is not downtime', () => {
    // cluster's prober is lost at +6.0 s (in the outage, which lasts 4.9-11.0 s) and its
    // replacement probes from +20.0 s on.
    const input = without(withIntervals(syntheticRun()), 'cluster', 6, 20);
    const results = analyzeRun(input);
    const cluster = results.endpoints.find((e) => e.name === 'cluster')!;
    // Measured part only: 4.902 s (last good end) .. 5.901 s (last bad end, where the data stops).
    assert.equal(cluster.write!.downtimeSeconds, 0.999);
    assert.equal(cluster.write!.windows.length, 1);
    assert.equal(cluster.write!.windows[0]!.cutByGap, true);
    assert.equal(cluster.write!.windows[0]!.end!.seconds, 5.901);
    // The replacement saw good writes up to the end: recovered.
    assert.equal(cluster.write!.recovered, true);
    const write = cluster.coverage!.lanes.find((l) => l.kind === 'write')!;
    assert.deepEqual(
      write.gaps.map((g) => [g.start.seconds, g.end.seconds, g.seconds, g.cause]),
      [[5.9, 20, 14.1, 'gap']],
    );
    // Lost writes: only acknowledged writes we have samples for are audited (none invented).
    assert.equal(cluster.lostWrites, 2);
    assert.equal(results.verdict.result, 'Fail', 'the 2 measured lost writes still fail maxLostWrites 0');
    const noLossSlo = analyzeRun({ ...input, defaultSlo: { maxWriteDowntimeSeconds: 15 } });
    assert.equal(noLossSlo.verdict.result, 'Inconclusive');
    assert.equal(noLossSlo.verdict.inconclusive.length, 1);
    assert.equal(noLossSlo.verdict.inconclusive[0]!.reason, 'CoverageGap');
    assert.match(
      noLossSlo.verdict.inconclusive[0]!.message,
      /^endpoint `cluster`: samples do not cover the run \(write: 1 gap \(14\.1s in all\), the first from \+5\.9s to \+20s; read: 1 gap/,
    );
    assert.equal(noLossSlo.endpoints.find((e) => e.name === 'proxy')!.verdict.result, 'Pass');
    const status = statusSummary(noLossSlo);
    assert.equal(status.verdict, 'Inconclusive');
    assert.deepEqual(status.endpoints!.find((e) => e.name === 'cluster')!.coverage, {
      complete: false,
      gaps: 3,
      firstGaps: [
        { kind: 'dns', startSeconds: 5.5, endSeconds: 20 },
        { kind: 'write', startSeconds: 5.9, endSeconds: 20 },
        { kind: 'read', startSeconds: 5.95, endSeconds: 20.05 },
      ],
    });
  });

  it('a prober lost for good during the outage: not 24 s of downtime, not unrecovered, Inconclusive', () => {
    const results = analyzeRun({
      ...without(withIntervals(syntheticRun()), 'cluster', 6, 30),
      defaultSlo: { maxWriteDowntimeSeconds: 15 },
      auditMissing: ['cluster'],
    });
    const cluster = results.endpoints.find((e) => e.name === 'cluster')!;
    assert.equal(cluster.write!.downtimeSeconds, 0.999);
    assert.equal(cluster.write!.recovered, false, 'nothing shows it recovered');
    assert.equal(cluster.lostWrites, null, 'no read-back: unknown, not every write lost');
    assert.equal(results.verdict.result, 'Inconclusive');
    assert.ok(results.verdict.checks.every((check) => check.passed));
  });

  it('a prober lost while healthy is not recovered either: Inconclusive, never Pass', () => {
    const results = analyzeRun({
      ...without(withIntervals(syntheticRun()), 'cluster', 15, 30),
      defaultSlo: {},
    });
    const cluster = results.endpoints.find((e) => e.name === 'cluster')!;
    assert.equal(cluster.write!.downtimeSeconds, 6.1);
    assert.equal(cluster.write!.recovered, false);
    assert.equal(results.verdict.result, 'Inconclusive');
  });

  it("each endpoint's lanes are held to its own prober's end (coverageEndByEndpointMs)", () => {
    // The cluster's prober stopped at 20 s by its own clock; the run's end is 30 s.
    const input = without(withIntervals(syntheticRun()), 'cluster', 20, 30);
    const held = analyzeRun({ ...input, defaultSlo: {} });
    assert.equal(held.endpoints.find((e) => e.name === 'cluster')!.coverage!.complete, false);
    assert.equal(held.verdict.result, 'Inconclusive');
    const own = analyzeRun({
      ...input,
      phases: { ...input.phases, coverageEndByEndpointMs: { cluster: at(20) } },
      defaultSlo: {},
    });
    assert.equal(own.endpoints.find((e) => e.name === 'cluster')!.coverage!.complete, true);
    // The other endpoints keep the run's end: the proxy's samples stop at 25 s, an end gap.
    const proxyShort = analyzeRun({
      ...without(input, 'proxy', 25, 30),
      phases: { ...input.phases, coverageEndByEndpointMs: { cluster: at(20) } },
      defaultSlo: {},
    });
    const proxy = proxyShort.endpoints.find((e) => e.name === 'proxy')!;
    assert.equal(proxy.coverage!.lanes.find((l) => l.kind === 'write')!.endCovered, false);
    assert.equal(proxyShort.endpoints.find((e) => e.name === 'cluster')!.coverage!.complete, true);
  });

  it('a lane without samples and dropped samples make it Inconclusive', () => {
    const input = withIntervals(syntheticRun());
    const noReader = analyzeRun({
      ...input,
      samples: input.samples.filter((s) => s.endpoint !== 'reader'),
      defaultSlo: {},
    });
    const reader = noReader.endpoints.find((e) => e.name === 'reader')!;
    assert.equal(reader.read!.recovered, false);
    assert.equal(reader.coverage!.lanes[0]!.gaps[0]!.cause, 'no-samples');
    assert.equal(noReader.verdict.result, 'Inconclusive');
    const dropped = analyzeRun({ ...input, defaultSlo: {}, droppedSamples: { proxy: 7 } });
    assert.equal(dropped.verdict.result, 'Inconclusive');
    assert.match(dropped.verdict.reasons[0]!, /7 samples dropped/);
  });

  it('samples of a replacement prober continue the lane (its own seq)', () => {
    const old = fixedRateLane({
      endpoint: 'e',
      kind: 'write',
      fromMs: at(-10),
      toMs: at(2),
      intervalMs: 100,
      outcomeAt: () => ({ class: 'ok' }),
    });
    const replacement = fixedRateLane({
      endpoint: 'e',
      kind: 'write',
      fromMs: at(2.5),
      toMs: at(10),
      intervalMs: 100,
      outcomeAt: () => ({ class: 'ok' }),
    }).map((s) => ({ ...s, seq: s.seq + 1_000_000 }));
    const c = laneCoverage({ endpoint: 'e', kind: 'write', intervalMs: 100 }, [...old, ...replacement], {
      fromMs: at(-10),
      toMs: at(10),
    });
    assert.deepEqual(c.gaps, [], 'a 0.6 s hand-over is within the 1 s allowance');
  });
});
