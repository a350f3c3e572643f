// How far an end-to-end test lets a measured outage edge sit from the lab's ground truth.
//
// An e2e test checks that each edge belongs to the right event (the writer going away, DNS
// naming the new writer, RESUME), in the right order, with nothing lost. It does not check the
// instrument's precision: the Toxiproxy suite bounds that to one interval + 10 ms on a quiet
// process, and the accuracy bench measures it (`npm run bench -- --only accuracy`). On CI's two
// cores, with a control plane, prober pods and the lab sharing them, an attempt can start or
// end well after it was due (seen: 1.9 s late in a clean-clone CI run), and the lab can record
// a step a little after the clients already see it (hence EARLY_MS).
import assert from 'node:assert/strict';
import type { Results } from '../../src/analysis/results.ts';
import { PROBER_WARM_UP_MS } from '../../src/engine/recovery.ts';

/** A measured edge may precede the lab's record of its event by this much. */
export const EARLY_MS = 500;
/** A measured edge may follow its event by one probe interval plus this much. */
export const LATE_MS = 2500;

/** `measuredMs` lies within [truthMs - EARLY_MS, truthMs + intervalMs + LATE_MS]. */
export function assertEdge(measuredMs: number, truthMs: number, intervalMs: number, what: string): void {
  const d = Math.round(measuredMs - truthMs);
  assert.ok(
    d >= -EARLY_MS && d <= intervalMs + LATE_MS,
    `${what}: ${d} ms from it (allowed ${-EARLY_MS}..${intervalMs + LATE_MS} ms)`,
  );
}

/** `measuredMs` lies between two events, each widened as in assertEdge. */
export function assertEdgeBetween(
  measuredMs: number,
  fromMs: number,
  toMs: number,
  intervalMs: number,
  what: string,
): void {
  assert.ok(
    measuredMs >= fromMs - EARLY_MS && measuredMs <= toMs + intervalMs + LATE_MS,
    `${what}: ${Math.round(measuredMs - fromMs)} ms after the first event, ${Math.round(measuredMs - toMs)} ms from the second (allowed ${-EARLY_MS}..${intervalMs + LATE_MS} ms)`,
  );
}

/** Two durations (seconds) of the same outage agree within one interval plus LATE_MS. */
export function assertSameDuration(
  aSeconds: number,
  bSeconds: number,
  intervalMs: number,
  what: string,
): void {
  const d = Math.abs(aSeconds - bSeconds) * 1000;
  assert.ok(
    d <= intervalMs + LATE_MS,
    `${what}: ${aSeconds} s vs ${bSeconds} s (${Math.round(d)} ms apart; allowed ${intervalMs + LATE_MS} ms)`,
  );
}

/**
 * The baseline started after the probers' warm-up (PROBER_WARM_UP_MS): every lane's first
 * attempt (at most one interval after its prober started) is at least the warm-up minus that
 * interval before the baseline's start.
 */
export function assertWarmUpBeforeBaseline(results: Results): void {
  for (const e of results.endpoints)
    for (const l of e.coverage?.lanes ?? []) {
      assert.ok(l.firstAttempt, `${e.name}/${l.kind}: no attempt`);
      const lead = results.baseline.start.seconds - l.firstAttempt.seconds;
      assert.ok(
        lead >= PROBER_WARM_UP_MS / 1000 - l.intervalSeconds - 0.05,
        `${e.name}/${l.kind}: first attempt ${lead.toFixed(3)} s before the baseline`,
      );
    }
  assert.ok(
    results.endpoints.every((e) => e.coverage),
    'every endpoint has its coverage',
  );
}
