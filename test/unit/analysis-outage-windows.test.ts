import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { downtime } from '../../src/analysis/downtime.ts';
import type { ErrorClass } from '../../src/analysis/error-class.ts';
import {
  outageWindows,
  windowEstimateMs,
  windowLowerMs,
  windowUpperMs,
} from '../../src/analysis/outage-windows.ts';
import type { Sample } from '../../src/analysis/sample.ts';
import { attempt, fixedRateLane } from './analysis-synthetic-run.ts';

/** 100 ms fixed-rate attempts from 0 to 3000 ms with 2 ms latency unless `bad` says otherwise. */
function lane(
  outcome: (startMs: number) => { class: ErrorClass; durationMs?: number; endMs?: number } | undefined,
) {
  return fixedRateLane({
    endpoint: 'e',
    kind: 'write',
    fromMs: 0,
    toMs: 3000,
    intervalMs: 100,
    outcomeAt: (startMs) => outcome(startMs) ?? { class: 'ok', durationMs: 2 },
  });
}

describe('outageWindows', () => {
  it('spans from the end of the last good attempt to the end of the first good one after the run', () => {
    const samples = lane((s) =>
      s >= 1000 && s < 2000 ? { class: 'connection_refused', durationMs: 1 } : undefined,
    );
    const windows = outageWindows(samples);
    assert.equal(windows.length, 1);
    const [w] = windows;
    assert.equal(w!.startMs, 902);
    assert.equal(w!.endMs, 2002);
    assert.equal(w!.lowerStartMs, 1000);
    assert.equal(w!.lowerEndMs, 1901);
    assert.equal(windowUpperMs(w!, 3000), 1100);
    assert.equal(windowLowerMs(w!), 901);
    assert.equal(w!.badAttempts, 10);
    assert.deepEqual(w!.classes, { connection_refused: 10 });
    assert.equal(w!.open, false);
  });

  it('counts a read_only run as an outage like any other bad class', () => {
    const samples = lane((s) => (s >= 500 && s < 800 ? { class: 'read_only', durationMs: 3 } : undefined));
    const [w] = outageWindows(samples);
    assert.equal(windowUpperMs(w!, 3000), 802 - 402);
    assert.deepEqual(w!.classes, { read_only: 3 });
  });

  it('counts a stall of slow attempts released together as unavailable for its duration', () => {
    // RDS Proxy shape: every attempt started 1000-2900 is answered at 3000; those waiting > 500 ms are slow.
    const samples = lane((s) =>
      s >= 1000 && s < 3000 ? { class: 3000 - s > 500 ? 'slow' : 'ok', endMs: 3000 } : undefined,
    );
    const [w, ...rest] = outageWindows(samples);
    assert.equal(rest.length, 0);
    assert.equal(w!.startMs, 902);
    assert.equal(w!.endMs, 3000);
    assert.equal(windowUpperMs(w!, 3000), 2098);
    assert.equal(windowLowerMs(w!), 2000);
    assert.deepEqual(w!.classes, { slow: 15 });
  });

  it('ends a lone slow attempt at the next acknowledged attempt that overlaps it', () => {
    const samples = lane((s) => (s === 1000 ? { class: 'slow', durationMs: 1000 } : undefined));
    const [w] = outageWindows(samples);
    assert.equal(w!.startMs, 902);
    assert.equal(w!.endMs, 1102);
    assert.equal(w!.lowerStartMs, 1000);
    assert.equal(w!.lowerEndMs, 1102, 'capped at the acknowledgement that proves the endpoint served');
    assert.ok(windowLowerMs(w!) <= windowUpperMs(w!, 3000));
  });

  it('does not stretch a window by deadlines of attempts hung past recovery (blackhole)', () => {
    // Attempts started 1000-1900 hang until their 1 s connect deadline; the path is back at 2000.
    const samples = lane((s) =>
      s >= 1000 && s < 2000 ? { class: 'connect_timeout', durationMs: 1000 } : undefined,
    );
    const [w] = outageWindows(samples);
    assert.equal(w!.endMs, 2002);
    assert.equal(windowUpperMs(w!, 3000), 1100);
    assert.equal(windowLowerMs(w!), 1002);
  });

  it('orders attempts by start even when they arrive in completion order', () => {
    const samples = lane((s) =>
      s >= 1000 && s < 2000 ? { class: 'connection_lost', durationMs: 1 } : undefined,
    );
    const shuffled = [...samples].sort((a, b) => b.endMs - a.endMs);
    assert.deepEqual(outageWindows(shuffled), outageWindows(samples));
  });

  it('reports an outage still open at the end as open, counted until observation ended', () => {
    const samples = lane((s) => (s >= 2000 ? { class: 'connection_refused', durationMs: 1 } : undefined));
    const [w] = outageWindows(samples);
    assert.equal(w!.open, true);
    assert.equal(w!.endMs, null);
    assert.equal(w!.lowerEndMs, 2901);
    assert.equal(windowUpperMs(w!, 3500), 3500 - 1902);
  });

  it('finds separate windows and marks one that began with the first attempt', () => {
    const samples = lane((s) =>
      s < 200 || (s >= 1500 && s < 1700) ? { class: 'starting_up', durationMs: 3 } : undefined,
    );
    const windows = outageWindows(samples);
    assert.equal(windows.length, 2);
    assert.equal(windows[0]!.startedWithFirstAttempt, true);
    assert.equal(windows[0]!.startMs, 0);
    assert.equal(windows[0]!.endMs, 202);
    assert.equal(windows[1]!.startMs, 1402);
    assert.equal(windows[1]!.endMs, 1702);
  });

  it('starts at the first bad start when the preceding good attempt finished after it', () => {
    const samples: Sample[] = [
      attempt(0, 300, 'ok', 0),
      attempt(100, 101, 'connection_refused', 1),
      attempt(200, 202, 'ok', 2),
    ];
    const [w] = outageWindows(samples);
    assert.equal(w!.startMs, 100);
    assert.equal(w!.endMs, 202);
    assert.equal(windowLowerMs(w!), 1);
  });

  it('merges windows that overlap in time', () => {
    const samples: Sample[] = [
      attempt(0, 2, 'ok', 0),
      attempt(100, 101, 'connection_refused', 1),
      attempt(200, 400, 'ok', 2),
      attempt(300, 301, 'connection_refused', 3),
      attempt(350, 352, 'ok', 4),
    ];
    const windows = outageWindows(samples);
    assert.equal(windows.length, 1);
    assert.equal(windows[0]!.startMs, 2);
    assert.equal(windows[0]!.endMs, 400);
    assert.equal(windows[0]!.badAttempts, 2);
  });

  it('finds nothing when every attempt is ok', () => {
    assert.deepEqual(outageWindows(lane(() => undefined)), []);
  });
});

describe('downtime', () => {
  const samples = lane((s) =>
    (s >= 300 && s < 500) || (s >= 1000 && s < 1500) || (s >= 2000 && s < 2200)
      ? { class: 'connection_refused', durationMs: 1 }
      : undefined,
  );

  it('sums the windows that overlap the observation phase and skips baseline ones', () => {
    const result = downtime(outageWindows(samples), { startMs: 900, endMs: 3000 });
    assert.equal(result.windows.length, 2);
    assert.equal(result.downtimeMs, 600 + 300);
    assert.equal(result.upperBoundMs, 900);
    assert.equal(result.lowerBoundMs, 401 + 101);
    assert.equal(result.recovered, true);
  });

  it('counts a window that straddles T0 whole', () => {
    const result = downtime(outageWindows(samples), { startMs: 1200, endMs: 3000 });
    assert.equal(result.downtimeMs, 900);
  });

  it('is unrecovered when the last window is open', () => {
    const open = lane((s) => (s >= 2500 ? { class: 'connection_refused', durationMs: 1 } : undefined));
    const result = downtime(outageWindows(open), { startMs: 1000, endMs: 4000 });
    assert.equal(result.recovered, false);
    assert.equal(result.downtimeMs, 4000 - 2402);
  });
});

describe('point estimate', () => {
  /**
   * A fault from `a` to `b` seen by attempts every `interval` ms that take `d` ms (connect then
   * query); the same physics as the Toxiproxy bench, without the machine's noise.
   */
  function faultLane(
    fault: 'refuse' | 'blackhole' | 'latency',
    a: number,
    b: number,
    interval: number,
    d: number,
  ) {
    return fixedRateLane({
      endpoint: 'e',
      kind: 'write',
      fromMs: 0,
      toMs: b + 2000,
      intervalMs: interval,
      outcomeAt: (s) => {
        if (fault === 'refuse') {
          if (s >= a && s < b) return { class: 'connection_refused', durationMs: 0.2 };
          if (s < a && s + d > a) return { class: 'connection_lost', endMs: a + 0.1 }; // in flight, cut
          return { class: 'ok', durationMs: d };
        }
        if (fault === 'blackhole') {
          if (s + d > a && s < b) {
            // the attempt's 1 s deadline, or closed by the proxy when the fault ends
            return s + 1000 < b
              ? { class: 'connect_timeout', endMs: s + 1000 }
              : { class: 'connection_lost', endMs: b + 0.1 };
          }
          return { class: 'ok', durationMs: d };
        }
        // latency: 250 ms added to the answer while the fault lasts, held data released at b
        if (s + d > a && s < b) {
          const end = Math.min(s + d + 250, b + d);
          return { class: end - s > 150 ? 'slow' : 'ok', endMs: end };
        }
        return { class: 'ok', durationMs: d };
      },
    });
  }

  for (const fault of ['refuse', 'blackhole', 'latency'] as const)
    for (const interval of [10, 100])
      it(`${fault}, ${interval} ms interval: errs by less than one interval at every phase of the grid`, () => {
        let worst = 0;
        // (a 200 ms stall is shorter than threshold + interval: attempts may all miss it)
        for (const length of fault === 'latency' ? [1000, 5000] : [200, 1000, 5000])
          for (let phase = 0; phase < interval; phase += interval / 10)
            for (const d of [0.5, 4, interval * 0.8]) {
              const a = 3000 + phase;
              const b = a + length;
              const [w, ...rest] = outageWindows(faultLane(fault, a, b, interval, d));
              assert.equal(rest.length, 0, `${fault} phase ${phase} d ${d}: one window`);
              const err = windowEstimateMs(w!, b + 2000) - length;
              worst = Math.max(worst, Math.abs(err));
              // a stall's edges are attempts' ends and starts: a normal attempt's duration on top
              const tolerance = interval + 1 + (fault === 'latency' ? 2 * d : 0);
              assert.ok(
                Math.abs(err) < tolerance,
                `${fault} ${length} ms, phase ${phase}, d ${d}: estimate off by ${err.toFixed(1)} ms`,
              );
              // and the estimate lies inside the DESIGN window
              assert.ok(w!.estimateStartMs >= w!.startMs && w!.estimateEndMs! <= w!.endMs!);
            }
        assert.ok(worst > 0, 'the sweep exercised a quantisation error');
      });

  it('merges estimates with their windows and counts an open window until observation ended', () => {
    const open = lane((s) => (s >= 2500 ? { class: 'connection_refused', durationMs: 1 } : undefined));
    const [w] = outageWindows(open);
    assert.equal(w!.estimateStartMs, 2501);
    assert.equal(w!.estimateEndMs, null);
    assert.equal(windowEstimateMs(w!, 4000), 4000 - 2501);
    assert.equal(downtime(outageWindows(open), { startMs: 1000, endMs: 4000 }).estimateMs, 1499);
  });

  it('takes a timed-out attempt at its start and a stall over its whole duration', () => {
    const samples = lane((s) => {
      if (s === 1000) return { class: 'query_timeout', endMs: 2500 };
      if (s > 1000 && s < 1500) return { class: 'slow', endMs: 1580 };
      return s === 1500 ? { class: 'ok', durationMs: 90 } : undefined;
    });
    const [w] = outageWindows(samples);
    assert.equal(w!.estimateStartMs, 1000);
    // The first good attempt started at 1500, but the stall lasted until 1580.
    assert.equal(w!.estimateEndMs, 1580);
    assert.equal(w!.endMs, 1590);
  });
});
