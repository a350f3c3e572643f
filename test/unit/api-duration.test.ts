import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDurationMs, isDuration, parseDurationMs } from '../../src/api/duration.ts';

describe('parseDurationMs', () => {
  it('parses Kubernetes-style durations to milliseconds', () => {
    assert.equal(parseDurationMs('100ms'), 100);
    assert.equal(parseDurationMs('10ms'), 10);
    assert.equal(parseDurationMs('30s'), 30_000);
    assert.equal(parseDurationMs('1.5s'), 1500);
    assert.equal(parseDurationMs('2m'), 120_000);
    assert.equal(parseDurationMs('1h30m'), 5_400_000);
    assert.equal(parseDurationMs('1m30s500ms'), 90_500);
  });

  it('rejects anything else with a message that shows the syntax', () => {
    for (const bad of ['', '10', '10 seconds', '-1s', '1d', 's', '1.s', '5 ms', '1S']) {
      assert.equal(isDuration(bad), false, bad);
      assert.throws(() => parseDurationMs(bad), {
        name: 'RangeError',
        message: /like 100ms, 30s, 2m or 1h30m/,
      });
    }
  });
});

describe('formatDurationMs', () => {
  it('formats milliseconds as the shortest readable duration', () => {
    assert.equal(formatDurationMs(100), '100ms');
    assert.equal(formatDurationMs(1500), '1.5s');
    assert.equal(formatDurationMs(120_000), '2m');
    assert.equal(formatDurationMs(90_500), '1m30.5s');
    assert.equal(parseDurationMs(formatDurationMs(90_500)), 90_500);
  });
});
