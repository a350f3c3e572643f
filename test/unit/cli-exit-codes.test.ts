// What `failwatch`'s exit codes mean, its numeric options, and the live progress line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Results } from '../../src/analysis/results.ts';
import { EXIT, runExitCode, VERDICT_EXIT_CODES } from '../../src/cli/exit-codes.ts';
import { intOption, listOption } from '../../src/cli/options.ts';
import { Progress } from '../../src/cli/progress.ts';
import { UsageError } from '../../src/cli/usage.ts';
import { dryRunMessage } from '../../src/engine/dry-run.ts';
import type { ProbeSample } from '../../src/probe/types.ts';
import { formatErrorCounts } from '../../src/report/format.ts';

const withVerdict = (result: 'Pass' | 'Fail') =>
  ({ verdict: { result, reasons: [], checks: [] } }) as unknown as Results;

describe('exit codes', () => {
  it('mean one thing each: 0 Pass, 1 Fail, 2 usage, 3 run failed, 4 internal', () => {
    assert.deepEqual(
      [EXIT.pass, EXIT.fail, EXIT.usage, EXIT.runFailed, EXIT.internal, EXIT.interrupted],
      [0, 1, 2, 3, 4, 130],
    );
  });

  it('map a run to its code: verdict, DryRun, Failed, Aborted', () => {
    assert.equal(runExitCode({ end: 'Completed', results: withVerdict('Pass') }), 0);
    assert.equal(runExitCode({ end: 'Completed', results: withVerdict('Fail') }), 1);
    assert.equal(runExitCode({ end: 'Completed', reason: 'DryRun' }), 0);
    assert.equal(runExitCode({ end: 'Failed', reason: 'BaselineUnhealthy' }), 3);
    // A run that failed after the trigger has results, and is still a failed run.
    assert.equal(runExitCode({ end: 'Failed', reason: 'InternalError', results: withVerdict('Pass') }), 4);
    assert.equal(runExitCode({ end: 'Aborted', results: withVerdict('Pass') }), 130);
    assert.equal(runExitCode({ end: 'Completed' }), 4);
  });

  it('give every verdict a code, distinct from usage and internal errors', () => {
    assert.deepEqual(VERDICT_EXIT_CODES, { Pass: 0, Fail: 1, Inconclusive: 5, DryRun: 0 });
    for (const code of Object.values(VERDICT_EXIT_CODES))
      assert.ok(code !== EXIT.usage && code !== EXIT.internal);
  });
});

describe('numeric options', () => {
  it('take an integer in range and fall back when absent', () => {
    assert.equal(intOption('concurrency', '8', 4, 1, 256), 8);
    assert.equal(intOption('concurrency', undefined, 4, 1, 256), 4);
  });

  for (const bad of ['abc', '', ' ', '0', '-1', '2.5', '257', '1e9', '0x10x'])
    it(`reject --concurrency "${bad}" as a usage error`, () => {
      assert.throws(
        () => intOption('concurrency', bad, 4, 1, 256),
        (e: unknown) =>
          e instanceof UsageError &&
          e.message === `--concurrency must be an integer from 1 to 256 (got "${bad}")`,
      );
    });

  it('check list items against the allowed values', () => {
    const all = ['experiments', 'schedules'] as const;
    assert.deepEqual(listOption('controllers', 'schedules', all, all), ['schedules']);
    assert.deepEqual(listOption('controllers', undefined, all, all), ['experiments', 'schedules']);
    assert.throws(() => listOption('controllers', 'experiment', all, all), /unknown value "experiment"/);
  });
});

function sample(
  endpoint: string,
  kind: ProbeSample['kind'],
  cls: ProbeSample['class'],
  seq: number,
): ProbeSample {
  return { endpoint, kind, seq, startMs: 1000 + seq * 100, endMs: 1050 + seq * 100, class: cls };
}

describe('the live progress line', () => {
  it('counts slow apart from errors, in the words of the table', () => {
    const p = new Progress();
    const classes: ProbeSample['class'][] = [
      'ok',
      'connection_refused',
      'connection_refused',
      'read_only',
      'slow',
    ];
    classes.forEach((c, i) => {
      p.add(sample('cluster', 'write', c, i));
    });
    for (let i = 0; i < 9; i++) p.add(sample('proxy', 'write', 'slow', i));
    p.add(sample('reader', 'read', 'ok', 0));
    assert.equal(
      p.line(),
      '[baseline] cluster/write SLOW: connection_refused 2, read_only 1, slow 1 | proxy/write SLOW: slow 9 | reader/read up: none',
    );
    // The same words as the table's "errors by class" column.
    assert.equal(
      formatErrorCounts({ connection_refused: 2, read_only: 1, slow: 1 }),
      'connection_refused 2, read_only 1, slow 1',
    );
  });

  it('says how long after T0, and marks the last line', () => {
    const p = new Progress();
    p.add(sample('cluster', 'write', 'starting_up', 0));
    p.setT0(10_000);
    assert.equal(
      p.line(22_340, 'observing ended'),
      '[T0+12.3s, observing ended] cluster/write DOWN(starting_up): starting_up 1',
    );
  });
});

describe('dry run message', () => {
  it('states the baseline was healthy, with counts per lane, and that nothing was called', () => {
    assert.equal(
      dryRunMessage([
        { lane: 'cluster/write', attempts: 30, bad: 0, ratio: 0 },
        { lane: 'proxy/read', attempts: 30, bad: 1, ratio: 1 / 30 },
      ]),
      'dry run: the baseline was healthy (cluster/write 30/30 good, proxy/read 29/30 good); the failover was not called',
    );
  });
});
