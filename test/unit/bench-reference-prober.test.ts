// The accuracy bench's reference client judges its attempts and bounds its outage by the rules
// docs/accuracy.md states: a reconnect counts only beyond failwatch's pooled allowance, and a
// client stuck in a stall waits until it ends.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answeredInTime, type ReferenceAttempt, referenceOutage } from '../../bench/reference-prober.ts';
import { RECONNECT_ALLOWANCE_MS } from '../../src/probe/prober.ts';

describe('reference client: an answered attempt', () => {
  const slowMs = 50;
  it('on a kept connection is good when its query is within the threshold', () => {
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: 0, endMs: 50 }, slowMs), true);
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: 0, endMs: 51 }, slowMs), false);
  });

  it('that reconnected first is not held to the reconnect up to the allowance', () => {
    const q = RECONNECT_ALLOWANCE_MS;
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: q, endMs: q + 40 }, slowMs), true);
  });

  it('that waited longer than the allowance for its login is a stall', () => {
    // A login that waited 130 ms past the allowance behind a server's backlog, then a 5 ms query.
    const q = RECONNECT_ALLOWANCE_MS + 130;
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: q, endMs: q + 5 }, slowMs), false);
    // 45 ms past the allowance and a 5 ms query: exactly the threshold.
    const r = RECONNECT_ALLOWANCE_MS + 45;
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: r, endMs: r + 5 }, slowMs), true);
  });
});

describe('reference client: its outage', () => {
  const good = (startMs: number, endMs = startMs + 1): ReferenceAttempt => ({
    startMs,
    endMs,
    ok: true,
    slow: false,
  });
  const failed = (startMs: number, endMs = startMs + 1): ReferenceAttempt => ({
    startMs,
    endMs,
    ok: false,
    slow: false,
  });
  const stalled = (startMs: number, endMs: number): ReferenceAttempt => ({
    startMs,
    endMs,
    ok: false,
    slow: true,
  });

  it('runs from the last good answer before the first failure to the first good start after the last', () => {
    const attempts = [good(0), good(2), failed(4), failed(6), failed(1004), good(1006), good(1008)];
    assert.deepEqual(referenceOutage(attempts, 3, 1005), { startMs: 3, endMs: 1006 });
  });

  it('ends no earlier than the end of its last stall, nor after the first good answer', () => {
    // An attempt held by the stall (started at 990) answered at 1130; one started at 1006
    // answered at 1135, released with it.
    const attempts = [good(0), failed(4), stalled(990, 1130), good(1006, 1135), good(1140)];
    assert.deepEqual(referenceOutage(attempts, 3, 1005), { startMs: 1, endMs: 1130 });
    // Had the one started at 1006 answered at 1007, the path was back by then.
    const early = [good(0), failed(4), stalled(990, 1130), good(1006, 1007), good(1140)];
    assert.deepEqual(referenceOutage(early, 3, 1005), { startMs: 1, endMs: 1007 });
  });

  it('starts at a good answer that came before the first failure, not at one released with the stall', () => {
    // 0.2 s latency fault from 0 to 195: kept connections stall from -3 to 195; a login started
    // at -5 was held with them and answered at 200, within the reconnect allowance (good).
    const attempts = [
      good(-10, -9),
      { startMs: -5, endMs: 200, ok: true, slow: false, connectMs: 198 },
      stalled(-3, 195.4),
      stalled(4, 195.1),
      { startMs: 6, endMs: 199, ok: true, slow: false, connectMs: 192 },
      good(202),
    ];
    assert.deepEqual(referenceOutage(attempts, 0, 195), { startMs: -9, endMs: 195.4 });
  });

  it('ends no earlier than a connection closed under a held attempt, but a timeout does not hold it', () => {
    // A blackhole from 0 to 5130: an attempt hung from 4990 until Toxiproxy closed its
    // connection at 5128; one hung from 4200 until its own 1 s deadline at 5200; a new
    // connection started at 5015 waited for the end and answered at 5135 (good).
    const closed: ReferenceAttempt = { startMs: 4990, endMs: 5128, ok: false, slow: false };
    const timedOut: ReferenceAttempt = { startMs: 4200, endMs: 5200, ok: false, slow: false, timedOut: true };
    const attempts = [good(-4, -3), failed(0, 1), timedOut, closed, good(5015, 5135), good(5140)];
    assert.deepEqual(referenceOutage(attempts, 0, 5130), { startMs: -3, endMs: 5128 });
    // Without the closed one, the timeout alone leaves recovery at the good attempt's start.
    assert.deepEqual(referenceOutage([good(-4, -3), failed(0, 1), timedOut, good(5015, 5135)], 0, 5130), {
      startMs: -3,
      endMs: 5015,
    });
    // An error answered at once (not hung) does not hold it either.
    assert.deepEqual(
      referenceOutage([good(-4, -3), failed(0, 1), failed(5010, 5011), good(5015, 5135)], 0, 5130),
      {
        startMs: -3,
        endMs: 5015,
      },
    );
  });

  it('is none without a failure near the window, or without a good answer after it', () => {
    assert.equal(referenceOutage([good(0), good(2)], 3, 1005), null);
    assert.equal(referenceOutage([good(0), failed(4), failed(1004)], 3, 1005), null);
    // A failure that ended long before the window (the first connections) is not this outage.
    assert.equal(referenceOutage([failed(-500, -400), good(0), good(2000)], 3, 1005), null);
  });
});
