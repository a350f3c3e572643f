import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dnsFlip } from '../../src/analysis/dns-flip.ts';
import { ERROR_CLASSES, isErrorClass } from '../../src/analysis/error-class.ts';
import { errorCounts, firstAndLastError } from '../../src/analysis/error-counts.ts';
import { latencySummary, percentile } from '../../src/analysis/latency.ts';
import type { Sample } from '../../src/analysis/sample.ts';
import { roleFlip, serverFlip } from '../../src/analysis/server-flip.ts';
import { serverSideGap } from '../../src/analysis/server-side-gap.ts';
import { auditWrites } from '../../src/analysis/write-audit.ts';
import { attempt, fixedRateLane } from './analysis-synthetic-run.ts';

function withServer(sample: Sample, id: string): Sample {
  return { ...sample, server: { id, role: 'writer' } };
}

describe('error classes', () => {
  it('has the fifteen classes of the taxonomy, ok first', () => {
    assert.equal(ERROR_CLASSES.length, 15);
    assert.equal(ERROR_CLASSES[0], 'ok');
    assert.equal(isErrorClass('read_only'), true);
    assert.equal(isErrorClass('readonly'), false);
  });
});

describe('errorCounts and firstAndLastError', () => {
  const samples = [
    attempt(0, 2, 'ok', 0),
    attempt(100, 101, 'connection_lost', 1),
    attempt(200, 201, 'connection_refused', 2),
    attempt(300, 1300, 'connect_timeout', 3),
    attempt(400, 403, 'read_only', 4),
    attempt(500, 503, 'read_only', 5),
    attempt(600, 602, 'ok', 6),
  ];

  it('counts every class except ok', () => {
    assert.deepEqual(errorCounts(samples), {
      connection_lost: 1,
      connection_refused: 1,
      connect_timeout: 1,
      read_only: 2,
    });
  });

  it('reports the first bad start and the last bad end', () => {
    const result = firstAndLastError(samples)!;
    assert.equal(result.first.atMs, 100);
    assert.equal(result.first.class, 'connection_lost');
    assert.equal(result.last.atMs, 1300);
    assert.equal(result.last.class, 'connect_timeout');
    assert.equal(firstAndLastError([attempt(0, 1, 'ok')]), null);
  });
});

describe('roleFlip', () => {
  const samples = [
    withServer(attempt(0, 2, 'ok', 0), 'pg-1'),
    withServer(attempt(100, 102, 'ok', 1), 'pg-1'),
    attempt(200, 201, 'connection_refused', 2),
    withServer(attempt(300, 900, 'slow', 3), 'pg-2'),
    withServer(attempt(400, 402, 'ok', 4), 'pg-2'),
  ];

  it('finds the first write acknowledged by another server than the pre-trigger writer', () => {
    assert.deepEqual(roleFlip(samples, 150), { atMs: 402, fromServer: 'pg-1', toServer: 'pg-2' });
  });

  it('is null without a writer before the trigger or without a change', () => {
    assert.equal(roleFlip(samples, -1), null);
    assert.equal(roleFlip(samples.slice(0, 3), 150), null);
  });

  it('looks only at the asked probe kind', () => {
    assert.equal(serverFlip(samples, 'read', 150), null);
  });
});

describe('dnsFlip', () => {
  const samples = fixedRateLane({
    endpoint: 'cluster',
    kind: 'dns',
    fromMs: 0,
    toMs: 20_000,
    intervalMs: 1000,
    outcomeAt: (s) =>
      s === 12_000
        ? { class: 'dns_error', durationMs: 5 }
        : {
            class: 'ok',
            durationMs: 3,
            dnsAnswer: s < 14_000 ? ['pg-1.example.', '10.0.0.1'] : ['pg-2.example', '10.0.0.2'],
          },
  });

  it('finds the first answer naming another target than before the trigger', () => {
    const flip = dnsFlip(samples, 5_000)!;
    assert.equal(flip.atMs, 14_003);
    assert.deepEqual(flip.from, ['pg-1.example.', '10.0.0.1']);
    assert.deepEqual(flip.to, ['pg-2.example', '10.0.0.2']);
  });

  it('treats a trailing dot and letter case as the same name', () => {
    const same = [
      { ...samples[0]!, dnsAnswer: ['PG-1.example.'] },
      { ...samples[9]!, dnsAnswer: ['pg-1.example'] },
    ];
    assert.equal(dnsFlip(same, 5_000), null);
  });
});

describe('auditWrites', () => {
  const samples: Sample[] = [
    { ...attempt(0, 2, 'ok', 0), writeKey: 'k0' },
    { ...attempt(100, 102, 'ok', 1), writeKey: 'k1' },
    { ...attempt(200, 1200, 'slow', 2), writeKey: 'k2' },
    { ...attempt(300, 301, 'connection_lost', 3), writeKey: 'k3' },
    { ...attempt(400, 1400, 'query_timeout', 4), writeKey: 'k4' },
    { ...attempt(500, 503, 'read_only', 5), writeKey: 'k5' },
  ];

  it('counts acknowledged-but-missing rows as lost and failed-but-present rows as ambiguous', () => {
    const audit = auditWrites(samples, ['k0', 'k3', 'k4']);
    assert.equal(audit.lostWrites, 2);
    assert.deepEqual(audit.lostKeys, ['k1', 'k2']);
    assert.equal(audit.ambiguousWrites, 2);
    assert.deepEqual(audit.ambiguousKeys, ['k3', 'k4']);
    assert.equal(audit.confirmedWrites, 1);
    assert.equal(audit.failedWrites, 1);
  });

  it('reports 0 lost and 0 ambiguous on a clean switchover', () => {
    const audit = auditWrites(samples, new Set(['k0', 'k1', 'k2']));
    assert.equal(audit.lostWrites, 0);
    assert.equal(audit.ambiguousWrites, 0);
    assert.equal(audit.failedWrites, 3);
  });
});

describe('serverSideGap', () => {
  it('finds the largest gap between consecutive server timestamps, in any input order', () => {
    const rows = [1000, 2000, 3010, 15_050, 16_000, 4000].map((serverMs, i) => ({ key: `k${i}`, serverMs }));
    assert.deepEqual(serverSideGap(rows), { gapMs: 11_050, fromMs: 4000, toMs: 15_050 });
    assert.equal(serverSideGap(rows.slice(0, 1)), null);
  });
});

describe('latency', () => {
  it('gives nearest-rank percentiles of ok attempts only', () => {
    const samples = Array.from({ length: 100 }, (_, i) => attempt(i * 10, i * 10 + i + 1, 'ok', i));
    samples.push(attempt(5000, 9000, 'slow', 100), attempt(6000, 6001, 'connection_refused', 101));
    assert.deepEqual(latencySummary(samples), { count: 100, p50Ms: 50, p95Ms: 95, p99Ms: 99, maxMs: 100 });
    assert.equal(latencySummary([attempt(0, 1, 'read_only')]), null);
  });

  it('picks the nearest rank on short lists', () => {
    assert.equal(percentile([1, 2, 3], 50), 2);
    assert.equal(percentile([1, 2, 3], 99), 3);
    assert.equal(percentile([7], 1), 7);
  });
});
