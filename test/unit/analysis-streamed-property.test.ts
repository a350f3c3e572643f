// Property: the streamed analysis (compact lanes, one endpoint at a time) gives the same
// results.json as analyzeRun over sample objects, for many random runs with outages, coverage
// gaps, every error class, overlapping and out-of-order attempts, DNS and role flips, lost and
// ambiguous writes, dropped samples and lanes with no samples.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AuditRow, analyzeRun, type RunInput } from '../../src/analysis/analyze-run.ts';
import { analyzeRunStreamed } from '../../src/analysis/analyze-streamed.ts';
import { ERROR_CLASSES, type ErrorClass } from '../../src/analysis/error-class.ts';
import { lanesOf } from '../../src/analysis/lane-columns.ts';
import { PROBE_KINDS, type ProbeKind, type Sample } from '../../src/analysis/sample.ts';

/** mulberry32: a small seeded generator, so a failing seed can be replayed. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const T0 = Date.UTC(2026, 0, 1, 12);

function randomRun(seed: number): RunInput {
  const random = generator(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const chance = (p: number) => random() < p;
  const baselineStartMs = T0 - (1000 + Math.floor(random() * 4000));
  const observeEndMs = T0 + 2000 + Math.floor(random() * 20_000);
  const samples: Sample[] = [];
  const auditRows: AuditRow[] = [];
  const endpoints: RunInput['endpoints'] = [];
  const auditMissing: string[] = [];
  const droppedSamples: Record<string, number> = {};
  const endpointCount = 1 + Math.floor(random() * 3);
  for (let e = 0; e < endpointCount; e++) {
    const name = `ep-${e}`;
    const probes = PROBE_KINDS.filter(() => chance(0.7));
    const intervalMs = pick([10, 20, 50, 100, 250]);
    const dnsIntervalMs = pick([intervalMs, 100, 500]);
    const checked = chance(0.8);
    endpoints.push({
      name,
      probes,
      ...(checked ? { intervalMs, dnsIntervalMs } : {}),
      ...(chance(0.3) ? { slo: { maxWriteDowntimeSeconds: random() * 5 } } : {}),
    });
    if (chance(0.15)) auditMissing.push(name);
    if (chance(0.15)) droppedSamples[name] = Math.floor(random() * 100);
    // A kind not probed sometimes has samples too (a spec changed under a running prober).
    const kinds: ProbeKind[] = chance(0.1) ? [...PROBE_KINDS] : probes;
    for (const kind of kinds) {
      if (chance(0.05)) continue; // a lane with no samples at all
      const every = kind === 'dns' ? dnsIntervalMs : intervalMs;
      const outages = Array.from({ length: Math.floor(random() * 4) }, () => {
        const fromMs = baselineStartMs + random() * (observeEndMs - baselineStartMs);
        return { fromMs, toMs: fromMs + random() * 6000, errorClass: pick(ERROR_CLASSES.slice(1)) };
      });
      const gaps = Array.from({ length: chance(0.3) ? 1 + Math.floor(random() * 2) : 0 }, () => {
        const fromMs = baselineStartMs + random() * (observeEndMs - baselineStartMs);
        return { fromMs, toMs: fromMs + 500 + random() * 4000 };
      });
      const flipMs = T0 + random() * (observeEndMs - T0);
      const startAt = baselineStartMs + (chance(0.1) ? random() * 3000 : random() * 5);
      const stopAt = observeEndMs + 200 - (chance(0.1) ? random() * 5000 : 0);
      const lane: Sample[] = [];
      let seq = Math.floor(random() * 1000);
      for (let startMs = startAt; startMs < stopAt; startMs += every * (0.9 + random() * 0.2)) {
        seq++;
        if (gaps.some((g) => startMs >= g.fromMs && startMs < g.toMs)) continue;
        const outage = outages.find((o) => startMs >= o.fromMs && startMs < o.toMs);
        const errorClass: ErrorClass = outage
          ? chance(0.8)
            ? outage.errorClass
            : pick(ERROR_CLASSES)
          : chance(0.02)
            ? pick(ERROR_CLASSES)
            : 'ok';
        const durationMs = errorClass.endsWith('timeout')
          ? 1000 + random() * 2000
          : chance(0.05)
            ? random() * 800
            : random() * 8;
        const sample: Sample = {
          endpoint: name,
          kind,
          seq: chance(0.01) ? seq - 1 : seq,
          startMs: chance(0.02) ? (lane.at(-1)?.startMs ?? startMs) : startMs,
          endMs: startMs + durationMs,
          class: errorClass,
        };
        if (errorClass !== 'ok' && chance(0.7)) sample.code = pick(['57P03', '25006', 'ECONNREFUSED']);
        if (errorClass !== 'ok' && chance(0.5)) sample.message = pick(['refused', 'read-only', 'gone']);
        const server = startMs < flipMs ? 'db-1' : pick(['db-2', 'db-2', 'db-3']);
        if (kind !== 'dns' && (errorClass === 'ok' || errorClass === 'slow') && chance(0.95))
          sample.server = { id: server, role: chance(0.5) ? 'writer' : 'reader' };
        if (kind === 'dns' && errorClass === 'ok')
          sample.dnsAnswer =
            startMs < flipMs
              ? ['db-1.example.', '10.0.0.1']
              : pick([['DB-2.example', '10.0.0.2'], ['db-1.example.', '10.0.0.1'], []]);
        if (kind === 'write') {
          sample.writeKey = chance(0.9) ? `${name}#${sample.seq}` : `${name}:custom:${sample.seq}`;
          const acknowledged = errorClass === 'ok' || errorClass === 'slow';
          // Most acknowledged rows are there (some lost), a few failed ones too (ambiguous).
          if (acknowledged ? chance(0.97) : chance(0.05))
            auditRows.push({
              endpoint: name,
              key: sample.writeKey,
              ...(chance(0.8) ? { serverMs: sample.endMs - 1 } : {}),
            });
        }
        lane.push(sample);
      }
      // Arrival order is completion order, roughly: neighbours swap.
      for (let i = 1; i < lane.length; i++)
        if (chance(0.1)) [lane[i - 1], lane[i]] = [lane[i]!, lane[i - 1]!];
      samples.push(...lane);
    }
  }
  // Lanes arrive interleaved, as pulls do; a stray endpoint's samples are ignored.
  for (let i = samples.length - 1; i > 0; i--) {
    if (!chance(0.3)) continue;
    const j = Math.max(0, i - Math.floor(random() * 50));
    [samples[i], samples[j]] = [samples[j]!, samples[i]!];
  }
  samples.push({ endpoint: 'stray', kind: 'write', seq: 1, startMs: T0, endMs: T0 + 1, class: 'other' });
  return {
    experiment: { name: `run-${seed}`, namespace: 'default', runId: `r${seed}` },
    phases: {
      baselineStartMs,
      triggerMs: T0,
      observeEndMs,
      ...(chance(0.5) ? { coverageEndMs: observeEndMs + random() * 300 } : {}),
      // Some endpoints' probers stopped earlier by their own clocks (the operator's per-lane end).
      ...(chance(0.5)
        ? {
            coverageEndByEndpointMs: Object.fromEntries(
              endpoints.filter(() => chance(0.5)).map((e) => [e.name, observeEndMs - random() * 3000]),
            ),
          }
        : {}),
    },
    trigger: {
      type: 'aws-rds',
      action: 'FailoverDBCluster',
      target: 'c',
      events: [{ atMs: T0 + 500, message: 'x' }],
    },
    endpoints,
    samples,
    ...(chance(0.85) ? { auditRows } : {}),
    ...(auditMissing.length ? { auditMissing } : {}),
    ...(Object.keys(droppedSamples).length ? { droppedSamples } : {}),
    defaultSlo: { maxWriteDowntimeSeconds: 3, maxReadDowntimeSeconds: 3 },
  };
}

describe('analyzeRunStreamed', () => {
  it('gives the results.json of analyzeRun on 300 random runs', async () => {
    let windows = 0;
    let gaps = 0;
    let lost = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const input = randomRun(seed);
      const expected = JSON.parse(JSON.stringify(analyzeRun(input)));
      const { samples, ...meta } = input;
      const streamed = await analyzeRunStreamed(meta, (endpoint) => lanesOf(endpoint, samples));
      assert.deepStrictEqual(JSON.parse(JSON.stringify(streamed)), expected, `seed ${seed}`);
      // The controller's way: each endpoint's read-back rows asked for as its lanes are analysed.
      const { auditRows, auditMissing, ...rest } = meta;
      const perEndpoint = await analyzeRunStreamed(
        rest,
        (endpoint) => lanesOf(endpoint, samples),
        async (endpoint) =>
          auditRows === undefined || auditMissing?.includes(endpoint)
            ? undefined
            : auditRows.filter((row) => row.endpoint === endpoint),
      );
      assert.deepStrictEqual(
        JSON.parse(JSON.stringify(perEndpoint)),
        expected,
        `seed ${seed}, rows per endpoint`,
      );
      for (const e of expected.endpoints) {
        windows += (e.write?.windows.length ?? 0) + (e.read?.windows.length ?? 0);
        gaps += e.coverage?.lanes.reduce((n: number, l: { gaps: unknown[] }) => n + l.gaps.length, 0) ?? 0;
        lost += e.lostWrites ?? 0;
      }
    }
    // The runs exercise what they claim to (a generator that made no outages proves nothing).
    assert.ok(windows > 500, `outage windows ${windows}`);
    assert.ok(gaps > 100, `coverage gaps ${gaps}`);
    assert.ok(lost > 50, `lost writes ${lost}`);
  });
});
