import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Sample } from '../../src/analysis/sample.ts';
import { RecoveryTracker } from '../../src/engine/recovery.ts';

const sample = (endpoint: string, startMs: number, ok = true): Sample => ({
  endpoint,
  kind: 'write',
  seq: startMs,
  startMs,
  endMs: startMs + 2,
  class: ok ? 'ok' : 'connection_refused',
});

describe('RecoveryTracker', () => {
  const lanes = [
    { endpoint: 'a', kind: 'write' as const, intervalMs: 100 },
    { endpoint: 'b', kind: 'write' as const, intervalMs: 100 },
  ];

  it('does not count a lane whose prober stopped reporting (even while healthy) as recovered', () => {
    const tracker = new RecoveryTracker(lanes, 0);
    for (let t = 0; t < 10_000; t += 100) tracker.add(sample('a', t, t < 1000 || t > 3000));
    // b was healthy, then its prober was lost at 4 s.
    for (let t = 0; t < 4000; t += 100) tracker.add(sample('b', t));
    assert.equal(tracker.allRecovered(4500, 1000), true, 'b last reported 0.6 s ago: within 1 s');
    assert.equal(tracker.allRecovered(9902, 1000), false, 'b silent for 6 s');
    for (let t = 9000; t < 9500; t += 100) tracker.add(sample('b', t));
    assert.equal(tracker.allRecovered(9402, 1000), false, 'a replacement, good for 0.4 s only');
    for (let t = 9500; t < 10_100; t += 100) tracker.add(sample('b', t));
    assert.equal(tracker.allRecovered(10_002, 1000), true, 'good for 1 s after the gap');
  });

  it('a lane without samples is not recovered', () => {
    const tracker = new RecoveryTracker(lanes, 0);
    for (let t = 0; t < 5000; t += 100) tracker.add(sample('a', t));
    assert.equal(tracker.allRecovered(5000, 1000), false);
  });
});
