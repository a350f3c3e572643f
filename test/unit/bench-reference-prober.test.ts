// The accuracy bench's reference client: its attempts are judged by failwatch's definitions
// (a reconnect counts beyond the case's allowance; the outage is failwatch's point estimate
// over its attempts), and its own deadline, not the driver's, ends a hung attempt as a timeout.
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import {
  answeredInTime,
  asSample,
  type ReferenceAttempt,
  ReferenceProber,
  referenceOutage,
} from '../../bench/reference-prober.ts';
import { RECONNECT_ALLOWANCE_MS } from '../../src/probe/prober.ts';

describe('reference client: an answered attempt', () => {
  const slowMs = 50;
  it('on a kept connection is good when its query is within the threshold', () => {
    assert.equal(
      answeredInTime({ startMs: 0, queryStartMs: 0, endMs: 50 }, slowMs, RECONNECT_ALLOWANCE_MS),
      true,
    );
    assert.equal(
      answeredInTime({ startMs: 0, queryStartMs: 0, endMs: 51 }, slowMs, RECONNECT_ALLOWANCE_MS),
      false,
    );
  });

  it('that reconnected is held to the part of the reconnect beyond the allowance', () => {
    const q = RECONNECT_ALLOWANCE_MS;
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: q, endMs: q + 40 }, slowMs, q), true);
    // A login that waited 130 ms past the allowance behind a server's backlog, then a 5 ms query.
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: q + 130, endMs: q + 135 }, slowMs, q), false);
    // 45 ms past it and a 5 ms query: exactly the threshold.
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: q + 45, endMs: q + 50 }, slowMs, q), true);
  });

  it('in a fresh case counts the whole reconnect, as failwatch counts a fresh login', () => {
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: 40, endMs: 45 }, 150, 0), true);
    assert.equal(answeredInTime({ startMs: 0, queryStartMs: 148, endMs: 151 }, 150, 0), false);
  });
});

describe('reference client: its attempts as failwatch samples', () => {
  it('keeps good, stall, timeout and error apart', () => {
    const base = { startMs: 0, endMs: 1, ok: false, slow: false };
    assert.equal(asSample({ ...base, ok: true }, 1).class, 'ok');
    assert.equal(asSample({ ...base, slow: true }, 1).class, 'slow');
    assert.equal(asSample({ ...base, timedOut: 'connect' }, 1).class, 'connect_timeout');
    assert.equal(asSample({ ...base, timedOut: 'query' }, 1).class, 'query_timeout');
    assert.equal(asSample(base, 1).class, 'connection_lost');
  });
});

describe('reference client: its outage (failwatch point estimate over its attempts)', () => {
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
  const phase = (startMs: number, endMs: number) => ({ startMs, endMs });

  it('runs from the first answered error to the first good start after the last failure', () => {
    const attempts = [good(0), good(2), failed(4), failed(6), failed(1004), good(1006), good(1008)];
    assert.deepEqual(referenceOutage(attempts, phase(3, 2000)), {
      startMs: 5,
      endMs: 1006,
      estimateMs: 1001,
      windows: 1,
    });
  });

  it('ends no earlier than the end of its last stall, nor after the first good answer', () => {
    // An attempt held by the stall (started at 990) answered at 1130; one started at 1006
    // answered at 1135, released with it.
    const attempts = [good(0), failed(4), stalled(990, 1130), good(1006, 1135), good(1140)];
    assert.equal(referenceOutage(attempts, phase(3, 2000))?.endMs, 1130);
    // Had the one started at 1006 answered at 1007, the path was back by then.
    const early = [good(0), failed(4), stalled(990, 1130), good(1006, 1007), good(1140)];
    assert.equal(referenceOutage(early, phase(3, 2000))?.endMs, 1007);
  });

  it('starts with the stall, not at a good answer released with it', () => {
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
    const seen = referenceOutage(attempts, phase(0, 1000));
    assert.equal(seen?.startMs, -3);
    assert.equal(seen?.endMs, 195.4);
  });

  it('holds to a connection closed under a held attempt, not to a timeout', () => {
    // A blackhole from 0 to 5130: an attempt hung from 4990 until Toxiproxy closed its
    // connection at 5128; one hung from 4200 until its own 1 s deadline at 5200; a new
    // connection started at 5015 waited for the end and answered at 5135 (good).
    const closed: ReferenceAttempt = { startMs: 4990, endMs: 5128, ok: false, slow: false };
    const timedOut: ReferenceAttempt = {
      startMs: 4200,
      endMs: 5200,
      ok: false,
      slow: false,
      timedOut: 'query',
    };
    const lead = [good(-4, -3), failed(0, 1)];
    assert.equal(
      referenceOutage([...lead, timedOut, closed, good(5015, 5135), good(5140)], phase(0, 6000))?.endMs,
      5128,
    );
    assert.equal(
      referenceOutage([...lead, timedOut, good(5015, 5135), good(5140)], phase(0, 6000))?.endMs,
      5015,
    );
    // The same attempt closed at once (not hung) counts at its end: 5016, after the good start.
    const quick: ReferenceAttempt = { startMs: 5010, endMs: 5016, ok: false, slow: false };
    assert.equal(
      referenceOutage([...lead, timedOut, quick, good(5015, 5135), good(5140)], phase(0, 6000))?.endMs,
      5016,
    );
  });

  it('is none without a failure in the phase, or without a good answer after it', () => {
    assert.equal(referenceOutage([good(0), good(2)], phase(3, 1005)), null);
    assert.equal(referenceOutage([good(0), failed(4), failed(1004)], phase(3, 1005)), null);
    // A failure that ended long before the phase (the first connections) is not this outage.
    assert.equal(referenceOutage([failed(-500, -400), good(-300), good(2000)], phase(3, 2500)), null);
  });
});

describe('reference client against a server that never answers', () => {
  it('ends each hung connect at its own 1 s deadline, a timeout, opening at most two, 5 ms apart', async () => {
    const sockets: Socket[] = [];
    const server = createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const reference = new ReferenceProber({
      db: 'postgresql',
      host: '127.0.0.1',
      port,
      database: 'x',
      user: 'x',
      password: 'x',
      slowMs: 50,
      reconnectAllowanceMs: 0,
    });
    try {
      reference.start();
      await new Promise((resolve) => setTimeout(resolve, 1300));
      await reference.stop();
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
    const attempts = [...reference.attempts].sort((a, b) => a.startMs - b.startMs);
    // Two at once, hung until their deadline at ~1000 ms, then two more: 2 to 4 in 1.3 s.
    assert.ok(attempts.length >= 2 && attempts.length <= 4, `attempts: ${attempts.length}`);
    for (const a of attempts) {
      assert.equal(a.timedOut, 'connect', `attempt ${a.startMs} timed out by its own deadline`);
      assert.ok(a.endMs - a.startMs >= 990 && a.endMs - a.startMs < 1500, `lasted ${a.endMs - a.startMs} ms`);
    }
    assert.ok(attempts[1]!.startMs - attempts[0]!.startMs >= 4.5, 'the second connect waited its 5 ms');
  });
});
