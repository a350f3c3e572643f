import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Prober } from '../../src/probe/prober.ts';
import { FixedRateScheduler, type Tick } from '../../src/probe/scheduler.ts';
import type { AttemptOutcome, ProbeDriver, ProbeEndpointConfig, ProbeSample } from '../../src/probe/types.ts';

async function runFor(scheduler: FixedRateScheduler, ms: number): Promise<void> {
  scheduler.start();
  await sleep(ms);
  await scheduler.stop();
}

describe('FixedRateScheduler', () => {
  it('keeps starting attempts every 10 ms while one attempt hangs for 500 ms', async () => {
    const ticks: Tick[] = [];
    const ends = new Map<number, number>();
    let hangSeq: number | undefined; // the first attempt from seq 5 on (a loaded machine may skip 5 itself)
    const scheduler = new FixedRateScheduler({ intervalMs: 10, maxInFlight: 100 }, async (tick) => {
      ticks.push(tick);
      if (hangSeq === undefined && tick.seq >= 5) hangSeq = tick.seq;
      await sleep(tick.seq === hangSeq ? 500 : 1);
      ends.set(tick.seq, performance.now());
    });
    await runFor(scheduler, 1000);

    const hung = ticks.find((t) => t.seq === hangSeq)!;
    assert.ok(ends.get(hung.seq)! - hung.startedMs >= 499, 'the hanging attempt really hung');
    const hangEnd = ends.get(hung.seq)!;
    const duringHang = ticks.filter((t) => t.startedMs > hung.startedMs && t.startedMs < hangEnd);
    const stats = scheduler.stats();
    // A loaded machine may wake the loop late; such ticks are skipped and counted, and their
    // seq is used up. The hung attempt itself must hold nothing back: the seqs started during
    // the hang span its 500 ms of 10 ms ticks (started or skipped late, never waiting for it).
    const lastDuring = duringHang.at(-1);
    const span = lastDuring ? lastDuring.seq - hung.seq : 0;
    assert.ok(
      span >= 40 && duringHang.length >= 10,
      `${duringHang.length} attempts started during the hang, seqs ${hung.seq + 1}..${hung.seq + span} (${stats.skippedLate} late ticks in the run)`,
    );
    assert.ok(
      stats.started + stats.skippedLate >= 95 && stats.started + stats.skippedLate <= 101,
      `${stats.started} started + ${stats.skippedLate} late = every tick of 1 s`,
    );
    assert.equal(stats.skippedInFlightCap, 0);
    assert.ok(stats.maxInFlightSeen >= 2, 'the hung attempt overlapped the others');
    for (let i = 1; i < ticks.length; i++) {
      const [a, b] = [ticks[i - 1]!, ticks[i]!];
      assert.ok(b.seq > a.seq, 'seq increases with start');
      assert.ok(
        Math.abs(b.scheduledMs - a.scheduledMs - 10 * (b.seq - a.seq)) < 1e-6,
        'due times on the 10 ms grid',
      );
      assert.ok(b.startedMs - b.scheduledMs >= 0, 'never starts before it is due');
    }
    // Timer lag is a machine property: `npm run bench` measures it, not this test.
  });

  it('counts the ticks skipped at the in-flight cap and uses up their seq', async () => {
    const seqs: number[] = [];
    const skipped: number[] = [];
    const late: number[] = [];
    const scheduler = new FixedRateScheduler(
      {
        intervalMs: 10,
        maxInFlight: 3,
        onSkip: (seq, reason) => (reason === 'in-flight-cap' ? skipped : late).push(seq),
      },
      async (tick) => {
        seqs.push(tick.seq);
        await sleep(95);
      },
    );
    await runFor(scheduler, 500);
    const stats = scheduler.stats();
    assert.equal(stats.maxInFlightSeen, 3);
    // At most 3 in flight for 95 ms each: no more than ceil(500 / 95) * 3 starts.
    assert.ok(stats.started >= 9 && stats.started <= 18, `${stats.started} started`);
    assert.equal(stats.skippedInFlightCap, skipped.length);
    assert.ok(skipped.length > 0);
    const total = stats.started + stats.skippedInFlightCap + stats.skippedLate;
    assert.ok(total >= 45 && total <= 52, `${total} ticks accounted for in 500 ms`);
    const all = [...seqs, ...skipped, ...late].sort((a, b) => a - b);
    assert.deepEqual(
      all,
      all.map((_, i) => i),
      'every seq was either started or skipped',
    );
  });

  it('skips and counts ticks missed while the event loop was blocked', async () => {
    const ticks: Tick[] = [];
    const scheduler = new FixedRateScheduler({ intervalMs: 10, maxInFlight: 10 }, (tick) => {
      ticks.push(tick);
    });
    scheduler.start();
    await sleep(50);
    const until = performance.now() + 55;
    while (performance.now() < until) {
      // block the event loop for 55 ms
    }
    await sleep(50);
    await scheduler.stop();
    const stats = scheduler.stats();
    // At least the ticks due while the loop was blocked; a loaded machine may add its own.
    assert.ok(stats.skippedLate >= 4, `${stats.skippedLate} late ticks skipped`);
    assert.equal(
      stats.started + stats.skippedLate + stats.skippedInFlightCap,
      ticks.length + stats.skippedLate,
    );
    for (const t of ticks)
      assert.ok(t.startedMs - t.scheduledMs < 10, 'a started tick is less than one interval late');
  });
});

function endpoint(overrides: Partial<ProbeEndpointConfig> = {}): ProbeEndpointConfig {
  return {
    name: 'cluster',
    dialect: 'postgresql',
    host: '127.0.0.1',
    port: 1,
    database: 'app',
    user: 'u',
    password: 'p',
    connectionMode: 'pooled',
    intervalMs: 10,
    connectTimeoutMs: 1000,
    queryTimeoutMs: 1000,
    slowThresholdMs: 20,
    tls: { mode: 'disable' },
    kinds: ['write', 'read'],
    ...overrides,
  };
}

/** A driver whose attempts take a given time; the seq decides how long. */
function timedDriver(durationMs: (seq: number) => number): ProbeDriver {
  return {
    setup: async () => {},
    attempt: async (_kind, ctx): Promise<AttemptOutcome> => {
      await sleep(durationMs(ctx.seq));
      return { class: 'ok', server: { id: 'pg-1', role: 'writer' } };
    },
    readBack: async () => [],
    close: async () => {},
  };
}

describe('Prober', () => {
  it('emits one sample per attempt with wall-clock times, write keys and the slow class', async () => {
    const samples: ProbeSample[] = [];
    const prober = new Prober({
      runId: 'r1',
      endpoint: endpoint(),
      sink: (s) => samples.push(s),
      driver: timedDriver((seq) => (seq >= 10 && seq < 15 ? 40 : 1)),
    });
    const before = Date.now();
    prober.start();
    await sleep(300);
    await prober.stop();
    const after = Date.now();

    const writes = samples.filter((s) => s.kind === 'write').sort((a, b) => a.seq - b.seq);
    const reads = samples.filter((s) => s.kind === 'read');
    const late = prober.stats().write?.skippedLate ?? 0;
    // 30 ticks in 300 ms; a loaded machine may skip some as late (counted, never silent).
    assert.ok(
      writes.length + late >= 28 && writes.length + late <= 31,
      `${writes.length} writes + ${late} late`,
    );
    assert.ok(Math.abs(reads.length - writes.length) <= 3, `${reads.length} reads, ${writes.length} writes`);
    const slow = new Set(writes.filter((s) => s.class === 'slow').map((s) => s.seq));
    for (const s of writes)
      if (s.seq >= 10 && s.seq < 15) assert.ok(slow.has(s.seq), `attempt ${s.seq} (40 ms) is slow`);
    for (const s of writes) {
      assert.equal(s.writeKey, `cluster#${s.seq}`);
      assert.ok(s.startMs >= before - 1 && s.endMs <= after + 1, 'wall-clock epoch ms');
      assert.ok(s.endMs >= s.startMs);
      assert.equal(s.server?.id, 'pg-1');
    }
    for (const s of reads) assert.equal(s.writeKey, undefined);
    const first = writes[0]!;
    const last = writes.at(-1)!;
    const spacing = (last.startMs - first.startMs) / (last.seq - first.seq);
    assert.ok(Math.abs(spacing - 10) < 1, `start spacing ${spacing} ms per tick`);
    const stats = prober.stats();
    assert.equal(stats.write?.started, writes.length);
    assert.equal(stats.write?.inFlight, 0);
  });

  it('numbers the attempts of a replacement prober from its seq base (write keys never repeat)', async () => {
    const samples: ProbeSample[] = [];
    const seen: number[] = [];
    const driver = timedDriver(() => 1);
    const prober = new Prober({
      runId: 'r1',
      endpoint: endpoint(),
      sink: (s) => samples.push(s),
      driver: {
        ...driver,
        attempt: (kind, ctx) => {
          seen.push(ctx.seq);
          return driver.attempt(kind, ctx);
        },
      },
      seqBase: 67_108_864,
    });
    prober.start();
    await sleep(100);
    await prober.stop();
    const writes = samples.filter((s) => s.kind === 'write');
    assert.ok(writes.length >= 5);
    for (const s of writes) {
      assert.ok(s.seq >= 67_108_864 && s.seq < 67_108_864 + 20, `seq ${s.seq}`);
      assert.equal(s.writeKey, `cluster#${s.seq}`);
    }
    assert.ok(
      seen.every((seq) => seq >= 67_108_864),
      'the driver inserts rows with the same seq',
    );
  });
});
