// History pruning and the regression signal of FailoverSchedule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { childName, type RunRecord, regressionSignal, runsToPrune } from '../../src/schedule/history.ts';

const run = (minute: number, outcome: RunRecord['outcome'], worst?: number): RunRecord => ({
  name: `gameday-${minute}`,
  scheduledMs: minute * 60_000,
  outcome,
  worstDowntimeSeconds: worst,
});

describe('history pruning', () => {
  it('deletes finished runs beyond each limit oldest first, never a running one', () => {
    const runs = [
      run(1, 'Succeeded'),
      run(2, 'Failed'),
      run(3, 'Succeeded'),
      run(4, 'Running'), // an old run still going: kept whatever the limits
      run(5, 'Succeeded'),
      run(6, 'Failed'),
      run(7, 'Succeeded'),
      run(8, 'Failed'),
      run(9, 'Running'),
    ];
    assert.deepEqual(runsToPrune(runs, { successfulRunsHistoryLimit: 2, failedRunsHistoryLimit: 1 }), [
      'gameday-1',
      'gameday-2',
      'gameday-3',
      'gameday-6',
    ]);
    assert.deepEqual(
      runsToPrune(runs, { successfulRunsHistoryLimit: 0, failedRunsHistoryLimit: 0 }).length,
      7,
    );
    assert.deepEqual(runsToPrune(runs, { successfulRunsHistoryLimit: 10, failedRunsHistoryLimit: 10 }), []);
  });

  it('names runs <schedule>-<unix minutes>', () => {
    assert.equal(childName('gameday', Date.parse('2026-03-02T10:03:00Z')), 'gameday-29540763');
  });
});

describe('regression signal', () => {
  it('flags the latest run when it exceeds the median of the earlier ones by more than the margin', () => {
    const runs = [
      run(1, 'Succeeded', 10),
      run(2, 'Succeeded', 12),
      run(3, 'Succeeded', 11),
      run(4, 'Failed', 14),
    ];
    assert.deepEqual(regressionSignal(runs, 20), {
      detected: true,
      latestSeconds: 14,
      medianSeconds: 11,
      marginPercent: 20,
      comparedRuns: 3,
    });
    assert.equal(regressionSignal(runs, 30).detected, false); // 14 <= 11 * 1.3 = 14.3
  });

  it('ignores running and unmeasured runs, and needs one earlier run', () => {
    assert.equal(regressionSignal([run(1, 'Succeeded', 10)], 0).detected, false);
    assert.equal(regressionSignal([run(1, 'Succeeded', 10)], 0).comparedRuns, 0);
    const runs = [run(1, 'Succeeded', 10), run(2, 'Failed'), run(3, 'Succeeded', 9), run(4, 'Running')];
    assert.deepEqual(regressionSignal(runs, 0), {
      detected: false,
      latestSeconds: 9,
      medianSeconds: 10,
      marginPercent: 0,
      comparedRuns: 1,
    });
  });
});
