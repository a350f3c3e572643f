// A pooled attempt that had to reconnect is judged on its statement, not on the reconnect:
// the slow threshold is about stalls; a reconnect is a stall only beyond RECONNECT_ALLOWANCE_MS.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Prober } from '../../src/probe/prober.ts';
import type { AttemptOutcome, ProbeDriver, ProbeEndpointConfig, ProbeSample } from '../../src/probe/types.ts';

const ENDPOINT: ProbeEndpointConfig = {
  name: 'cluster',
  dialect: 'postgresql',
  host: '127.0.0.1',
  port: 5432,
  database: 'db',
  user: 'u',
  password: 'p',
  connectionMode: 'pooled',
  intervalMs: 10_000,
  connectTimeoutMs: 1000,
  queryTimeoutMs: 1000,
  slowThresholdMs: 80,
  tls: { mode: 'disable' },
  kinds: ['read'],
};

/** One attempt that takes `tookMs`, `reconnectMs` of it opening a connection. */
async function firstSample(tookMs: number, outcome: AttemptOutcome): Promise<ProbeSample> {
  const samples: ProbeSample[] = [];
  const driver: ProbeDriver = {
    setup: async () => {},
    attempt: async () => {
      if (outcome.reconnectMs === undefined) {
        await sleep(tookMs);
        return outcome;
      }
      // The reconnect as it really took (a loaded machine oversleeps), then the statement.
      const reconnectStart = performance.now();
      await sleep(outcome.reconnectMs);
      const reconnectMs = performance.now() - reconnectStart;
      await sleep(tookMs - outcome.reconnectMs);
      return { ...outcome, reconnectMs };
    },
    readBack: async () => [],
    close: async () => {},
  };
  const prober = new Prober({ runId: 'r', endpoint: ENDPOINT, driver, sink: (s) => samples.push(s) });
  prober.start();
  while (samples.length === 0) await sleep(5);
  await prober.stop();
  return samples[0]!;
}

describe('Prober slow threshold in pooled mode', () => {
  it('a 120 ms attempt that spent 100 ms reconnecting is ok (20 ms statement, threshold 80 ms)', async () => {
    const s = await firstSample(120, { class: 'ok', reconnectMs: 100 });
    // Over the 80 ms threshold, so only the reconnect allowance keeps it ok. (Not >= 120: timers
    // run on libuv's millisecond loop clock and each of the two sleeps may end up to 1 ms early.)
    assert.ok(s.endMs - s.startMs >= 110, `took ${s.endMs - s.startMs} ms`);
    assert.equal(s.class, 'ok');
  });

  it('a 120 ms attempt on a pooled connection is slow', async () => {
    assert.equal((await firstSample(120, { class: 'ok' })).class, 'slow');
  });

  it('a reconnect held longer than the 250 ms allowance is a stall (700 ms, 680 ms of it reconnecting)', async () => {
    assert.equal((await firstSample(700, { class: 'ok', reconnectMs: 680 })).class, 'slow');
  });

  it('a reconnect does not hide a slow statement (120 ms, 30 ms of it reconnecting)', async () => {
    assert.equal((await firstSample(120, { class: 'ok', reconnectMs: 30 })).class, 'slow');
  });
});
