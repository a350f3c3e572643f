// Cron, time zone and window math of FailoverSchedule, with fixed instants (no real clock).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CRON_PATTERN, TIME_ZONE_PATTERN } from '../../src/api/schedule-spec.ts';
import { parseCron } from '../../src/schedule/cron.ts';
import { compileSchedule, nextTick, type ScheduleTiming } from '../../src/schedule/plan.ts';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The first `n` ticks strictly after `after`, as ISO strings in UTC. */
function ticks(timing: ScheduleTiming, after: string, n: number): string[] {
  const s = compileSchedule(timing);
  const out: string[] = [];
  let t = at(after);
  for (let i = 0; i < n; i++) {
    t = nextTick(s, t)!;
    out.push(iso(t)!);
  }
  return out;
}

describe('cron in a time zone', () => {
  it('fires 02:00 Asia/Tokyo on weekdays at 17:00 UTC the day before, across the New York DST change', () => {
    // 2026-03-08 (Sunday) New York springs forward; Tokyo has no DST, so nothing moves.
    assert.deepEqual(ticks({ schedule: '0 2 * * 1-5', timeZone: 'Asia/Tokyo' }, '2026-03-05T00:00:00Z', 5), [
      '2026-03-05T17:00:00.000Z', // Fri 6 Mar 02:00 JST
      '2026-03-08T17:00:00.000Z', // Mon 9 Mar (Sat, Sun skipped)
      '2026-03-09T17:00:00.000Z',
      '2026-03-10T17:00:00.000Z',
      '2026-03-11T17:00:00.000Z',
    ]);
  });

  it('the same instants from an hourly schedule limited to a Mon-Fri 02:00-03:00 window in Tokyo', () => {
    const timing: ScheduleTiming = {
      schedule: '@hourly',
      timeZone: 'Asia/Tokyo',
      windows: [{ days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], start: '02:00', end: '03:00' }],
    };
    assert.deepEqual(ticks(timing, '2026-03-05T00:00:00Z', 3), [
      '2026-03-05T17:00:00.000Z',
      '2026-03-08T17:00:00.000Z',
      '2026-03-09T17:00:00.000Z',
    ]);
  });

  it('moves a New York 09:00 run from 14:00 to 13:00 UTC on 2026-03-08', () => {
    assert.deepEqual(
      ticks({ schedule: '0 9 * * *', timeZone: 'America/New_York' }, '2026-03-06T00:00:00Z', 4),
      [
        '2026-03-06T14:00:00.000Z',
        '2026-03-07T14:00:00.000Z',
        '2026-03-08T13:00:00.000Z',
        '2026-03-09T13:00:00.000Z',
      ],
    );
  });

  it('skips 02:30 New York on the day it does not exist, fires 01:30 twice when it repeats', () => {
    assert.deepEqual(
      ticks({ schedule: '30 2 * * *', timeZone: 'America/New_York' }, '2026-03-07T00:00:00Z', 2),
      ['2026-03-07T07:30:00.000Z', '2026-03-09T06:30:00.000Z'],
    );
    assert.deepEqual(
      ticks({ schedule: '30 1 * * *', timeZone: 'America/New_York' }, '2026-11-01T00:00:00Z', 3),
      [
        '2026-11-01T05:30:00.000Z', // 01:30 EDT
        '2026-11-01T06:30:00.000Z', // 01:30 EST
        '2026-11-02T06:30:00.000Z',
      ],
    );
  });

  it('@weekly is Sunday 00:00 in the zone', () => {
    assert.deepEqual(ticks({ schedule: '@weekly', timeZone: 'UTC' }, '2026-03-04T12:00:00Z', 2), [
      '2026-03-08T00:00:00.000Z',
      '2026-03-15T00:00:00.000Z',
    ]);
    assert.deepEqual(ticks({ schedule: '@weekly', timeZone: 'Asia/Tokyo' }, '2026-03-04T12:00:00Z', 1), [
      '2026-03-07T15:00:00.000Z',
    ]);
  });

  it('@monthly, steps, lists and names', () => {
    assert.deepEqual(ticks({ schedule: '@monthly', timeZone: 'UTC' }, '2026-01-15T00:00:00Z', 2), [
      '2026-02-01T00:00:00.000Z',
      '2026-03-01T00:00:00.000Z',
    ]);
    assert.deepEqual(
      ticks({ schedule: '*/20 3 * jan sun,sat', timeZone: 'UTC' }, '2026-01-01T00:00:00Z', 4),
      [
        '2026-01-03T03:00:00.000Z',
        '2026-01-03T03:20:00.000Z',
        '2026-01-03T03:40:00.000Z',
        '2026-01-04T03:00:00.000Z',
      ],
    );
    // day-of-month OR day-of-week when both are restricted (Vixie cron)
    assert.deepEqual(ticks({ schedule: '0 0 13 * 5', timeZone: 'UTC' }, '2026-02-01T00:00:00Z', 3), [
      '2026-02-06T00:00:00.000Z',
      '2026-02-13T00:00:00.000Z',
      '2026-02-20T00:00:00.000Z',
    ]);
  });
});

describe('bad schedules', () => {
  it('rejects invalid cron with a message naming the field', () => {
    assert.throws(() => parseCron('61 * * * *'), /minute: 61 is out of range 0-59/);
    assert.throws(() => parseCron('0 24 * * *'), /hour: 24 is out of range 0-23/);
    assert.throws(() => parseCron('every monday'), /has 2 fields; a schedule has 5/);
    assert.throws(() => parseCron('@fortnightly'), /unknown shortcut "@fortnightly"/);
    assert.throws(() => parseCron('*/0 * * * *'), /step "0" must be a positive number/);
    assert.throws(() => parseCron('5-1 * * * *'), /range 5-1 goes backwards/);
  });

  it('rejects an unknown time zone', () => {
    assert.throws(
      () => compileSchedule({ schedule: '@daily', timeZone: 'Mars/Olympus_Mons' }),
      /unknown time zone "Mars\/Olympus_Mons"/,
    );
  });

  it('rejects an empty window', () => {
    const w = (start: string, end: string, days = ['Mon' as const]) => ({ days, start, end });
    assert.throws(
      () => compileSchedule({ schedule: '@hourly', timeZone: 'UTC', windows: [w('10:00', '10:00')] }),
      /window 10:00-10:00 is empty/,
    );
    assert.throws(
      () => compileSchedule({ schedule: '@hourly', timeZone: 'UTC', windows: [w('22:00', '02:00')] }),
      /overnight/,
    );
    assert.throws(
      () => compileSchedule({ schedule: '@hourly', timeZone: 'UTC', windows: [w('01:00', '02:00', [])] }),
      /no days/,
    );
  });

  it('has no next tick when no tick falls in a window', () => {
    const s = compileSchedule({
      schedule: '0 12 * * *',
      timeZone: 'UTC',
      windows: [{ days: ['Mon'], start: '01:00', end: '02:00' }],
    });
    const started = performance.now();
    assert.equal(nextTick(s, at('2026-01-01T00:00:00Z')), undefined);
    assert.ok(performance.now() - started < 3000, 'the search is bounded');
  });

  it('the CRD patterns let the apiserver reject what they can', () => {
    const cron = new RegExp(CRON_PATTERN);
    for (const ok of ['0 2 * * 1-5', '@weekly', '*/5 * * * *', '0 0 1 jan,jul *']) assert.match(ok, cron);
    for (const bad of ['every monday', '* * *', '@fortnightly', '0 2 * * 1-5 2026', ''])
      assert.doesNotMatch(bad, cron);
    const tz = new RegExp(TIME_ZONE_PATTERN);
    for (const ok of ['UTC', 'Asia/Tokyo', 'America/Argentina/Buenos_Aires', 'Etc/GMT+9'])
      assert.match(ok, tz);
    for (const bad of ['', 'Asia/', '../etc/passwd', 'Tokyo Time']) assert.doesNotMatch(bad, tz);
  });
});
