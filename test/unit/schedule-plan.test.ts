// The missed-run and overlap policy of FailoverSchedule with a fake clock: no backfill, at most
// one late run within startingDeadlineSeconds, never two runs at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileSchedule, type Plan, planSchedule } from '../../src/schedule/plan.ts';

const at = (iso: string) => Date.parse(iso);
const everyMinute = compileSchedule({ schedule: '* * * * *', timeZone: 'UTC' });

/**
 * A controller that reconciles every `stepMs` while up, handling the plan the way the
 * reconciler does; returns the ticks it ran, skipped and missed.
 */
function simulate(opts: {
  fromIso: string;
  untilIso: string;
  stepMs: number;
  down?: [string, string];
  deadlineSeconds: number;
  activeForMs?: number;
}) {
  let lastHandledMs = at(opts.fromIso);
  const ran: string[] = [];
  const skipped: string[] = [];
  const missed: Array<{ tick: string; ticks: number }> = [];
  const lateRuns: Array<{ tick: string; lateMs: number; missedBefore: number }> = [];
  let activeUntil = -1;
  for (let now = at(opts.fromIso); now <= at(opts.untilIso); now += opts.stepMs) {
    if (opts.down && now >= at(opts.down[0]) && now < at(opts.down[1])) continue;
    const plan: Plan = planSchedule({
      schedule: everyMinute,
      nowMs: now,
      lastHandledMs,
      startingDeadlineSeconds: opts.deadlineSeconds,
      suspended: false,
      hasActiveRun: now < activeUntil,
    });
    const a = plan.action;
    if (a.kind === 'wait') continue;
    lastHandledMs = a.tickMs;
    const tick = new Date(a.tickMs).toISOString().slice(11, 16);
    if (a.kind === 'run') {
      ran.push(tick);
      if (a.lateMs > opts.stepMs) lateRuns.push({ tick, lateMs: a.lateMs, missedBefore: plan.missedTicks });
      activeUntil = now + (opts.activeForMs ?? 0);
    } else if (a.kind === 'skip-active') skipped.push(tick);
    else if (a.kind === 'missed') missed.push({ tick, ticks: a.missedTicks });
  }
  return { ran, skipped, missed, lateRuns };
}

describe('missed runs', () => {
  it('runs exactly once per tick while the controller is up', () => {
    const r = simulate({
      fromIso: '2026-03-02T10:00:00Z',
      untilIso: '2026-03-02T10:05:30Z',
      stepMs: 1000,
      deadlineSeconds: 60,
    });
    assert.deepEqual(r.ran, ['10:01', '10:02', '10:03', '10:04', '10:05']);
    assert.equal(r.missed.length, 0);
  });

  it('down across three ticks, back within the deadline: one late run for the latest tick, no burst', () => {
    const r = simulate({
      fromIso: '2026-03-02T10:00:00Z',
      untilIso: '2026-03-02T10:06:30Z',
      stepMs: 1000,
      down: ['2026-03-02T10:00:30Z', '2026-03-02T10:03:40Z'], // misses 10:01, 10:02, 10:03
      deadlineSeconds: 60,
    });
    assert.deepEqual(r.ran, ['10:03', '10:04', '10:05', '10:06']);
    assert.deepEqual(r.lateRuns, [{ tick: '10:03', lateMs: 40_000, missedBefore: 2 }]);
    assert.equal(r.missed.length, 0);
  });

  it('down across three ticks, back after the deadline: no late run, a MissedSchedule, then on time again', () => {
    const r = simulate({
      fromIso: '2026-03-02T10:00:00Z',
      untilIso: '2026-03-02T10:06:30Z',
      stepMs: 1000,
      down: ['2026-03-02T10:00:30Z', '2026-03-02T10:03:40Z'],
      deadlineSeconds: 30,
    });
    assert.deepEqual(r.missed, [{ tick: '10:03', ticks: 3 }]);
    assert.deepEqual(r.ran, ['10:04', '10:05', '10:06']);
    assert.equal(r.lateRuns.length, 0);
  });

  it('a controller down for a year neither backfills nor walks every minute', () => {
    const started = performance.now();
    const plan = planSchedule({
      schedule: everyMinute,
      nowMs: at('2027-03-02T10:00:30Z'),
      lastHandledMs: at('2026-03-02T10:00:00Z'),
      startingDeadlineSeconds: 60,
      suspended: false,
      hasActiveRun: false,
    });
    assert.deepEqual(plan.action, { kind: 'run', tickMs: at('2027-03-02T10:00:00Z'), lateMs: 30_000 });
    assert.ok(performance.now() - started < 2000);
  });
});

describe('overlap and suspend', () => {
  it('skips ticks while a run is active instead of queueing them', () => {
    // each run stays active 150 s: every other tick finds one running
    const r = simulate({
      fromIso: '2026-03-02T10:00:00Z',
      untilIso: '2026-03-02T10:06:30Z',
      stepMs: 1000,
      deadlineSeconds: 60,
      activeForMs: 150_000,
    });
    assert.deepEqual(r.ran, ['10:01', '10:04']);
    assert.deepEqual(r.skipped, ['10:02', '10:03', '10:05', '10:06']);
  });

  it('a suspended schedule consumes its ticks, so resuming does not fire a stale one', () => {
    const plan = planSchedule({
      schedule: everyMinute,
      nowMs: at('2026-03-02T10:03:10Z'),
      lastHandledMs: at('2026-03-02T10:00:00Z'),
      startingDeadlineSeconds: 600,
      suspended: true,
      hasActiveRun: false,
    });
    assert.deepEqual(plan.action, { kind: 'suspended', tickMs: at('2026-03-02T10:03:00Z') });
    assert.equal(plan.nextTickMs, at('2026-03-02T10:04:00Z'));
  });
});
