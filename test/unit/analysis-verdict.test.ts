import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type EndpointMeasurement, verdict } from '../../src/analysis/verdict.ts';

const cluster: EndpointMeasurement = {
  name: 'cluster',
  writeDowntimeSeconds: 11.2,
  readDowntimeSeconds: 2.1,
  unrecoveredKinds: [],
  writes: true,
  lostWrites: 0,
};

describe('verdict', () => {
  it('passes when every measurement is within its SLO', () => {
    const result = verdict([cluster], () => ({
      maxWriteDowntimeSeconds: 15,
      maxReadDowntimeSeconds: 5,
      maxLostWrites: 0,
    }));
    assert.equal(result.result, 'Pass');
    assert.deepEqual(result.reasons, []);
    assert.equal(result.checks.length, 4);
  });

  it('fails with one readable reason per exceeded objective', () => {
    const result = verdict([{ ...cluster, lostWrites: 2 }], () => ({
      maxWriteDowntimeSeconds: 10,
      maxReadDowntimeSeconds: 2,
      maxLostWrites: 0,
    }));
    assert.equal(result.result, 'Fail');
    assert.deepEqual(result.reasons, [
      'endpoint `cluster`: write downtime 11.2s exceeds maxWriteDowntime 10s',
      'endpoint `cluster`: read downtime 2.1s exceeds maxReadDowntime 2s',
      'endpoint `cluster`: 2 lost writes exceed maxLostWrites 0',
    ]);
  });

  it('fails an endpoint that had not recovered, even without SLOs', () => {
    const result = verdict([{ ...cluster, unrecoveredKinds: ['write'] }], () => ({}));
    assert.equal(result.result, 'Fail');
    assert.deepEqual(result.reasons, ['endpoint `cluster`: write had not recovered when observation ended']);
  });

  it('fails maxLostWrites when no audit ran, and skips it for endpoints without writes', () => {
    const slo = () => ({ maxLostWrites: 0 });
    assert.equal(verdict([{ ...cluster, lostWrites: null }], slo).result, 'Fail');
    assert.equal(verdict([{ ...cluster, writes: false, lostWrites: null }], slo).result, 'Pass');
  });

  it('is Inconclusive, never Pass, when a finding says the data cannot decide', () => {
    const gap = { reason: 'CoverageGap' as const, endpoint: 'cluster', message: 'endpoint `cluster`: gap' };
    const slo = () => ({ maxWriteDowntimeSeconds: 15, maxLostWrites: 0 });
    const result = verdict([{ ...cluster, lostWrites: null }], slo, [gap]);
    assert.equal(result.result, 'Inconclusive');
    assert.deepEqual(result.reasons, ['endpoint `cluster`: gap']);
    assert.deepEqual(result.inconclusive, [gap]);
    // Passing checks on incomplete data are unproven; a missing audit does not fail the run.
    assert.deepEqual(
      result.checks.map((check) => [check.objective, check.passed, check.unproven]),
      [
        ['maxWriteDowntime', true, true],
        ['maxLostWrites', true, true],
        ['recovered', true, true],
      ],
    );
  });

  it('is Fail when a check fails on measured data, with the findings kept', () => {
    const gap = { reason: 'CoverageGap' as const, endpoint: 'reader', message: 'endpoint `reader`: gap' };
    const reader = { ...cluster, name: 'reader', writeDowntimeSeconds: 1 };
    const result = verdict([cluster, reader], () => ({ maxWriteDowntimeSeconds: 10 }), [gap]);
    assert.equal(result.result, 'Fail');
    assert.deepEqual(result.reasons, [
      'endpoint `cluster`: write downtime 11.2s exceeds maxWriteDowntime 10s',
      'endpoint `reader`: gap',
    ]);
    assert.equal(result.inconclusive.length, 1);
  });

  it('a run-wide finding (FailoverNotObserved) concerns every endpoint', () => {
    const finding = { reason: 'FailoverNotObserved' as const, message: 'no new writer' };
    const result = verdict([cluster], () => ({}), [finding]);
    assert.equal(result.result, 'Inconclusive');
    assert.ok(result.checks.every((check) => check.unproven));
  });
});
