import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Value from 'typebox/value';
import { analyzeRun } from '../../src/analysis/analyze-run.ts';
import { RESULTS_API_VERSION } from '../../src/analysis/results.ts';
import { statusSummary } from '../../src/analysis/status-summary.ts';
import { FailoverExperimentStatusSchema } from '../../src/api/experiment-status.ts';
import { syntheticRun } from './analysis-synthetic-run.ts';

describe('analyzeRun on a seed-shaped failover', () => {
  const results = analyzeRun(syntheticRun());
  const endpoint = (name: string) => results.endpoints.find((e) => e.name === name)!;

  it('is a versioned document with T0 as the trigger time', () => {
    assert.equal(results.apiVersion, RESULTS_API_VERSION);
    assert.equal(results.trigger.time, '2024-05-01T12:00:00.000Z');
    assert.deepEqual(results.observation.end, { seconds: 30, time: '2024-05-01T12:00:30.000Z' });
    assert.deepEqual(results.baseline.start.seconds, -10);
    assert.deepEqual(
      results.trigger.events.map((e) => e.seconds),
      [0.4, 9, 24],
    );
    assert.equal(results.trigger.events[0]!.message, 'Started cross AZ failover to DB instance: pg-2');
  });

  it('measures the cluster endpoint write window with its bounds, errors and role flip', () => {
    const cluster = endpoint('cluster');
    assert.equal(cluster.write!.downtimeSeconds, 6.1);
    assert.equal(cluster.write!.upperBoundSeconds, 6.1);
    assert.equal(cluster.write!.lowerBoundSeconds, 5.903);
    assert.equal(cluster.write!.windows.length, 1);
    assert.deepEqual(cluster.write!.windows[0]!.start, { seconds: 4.902, time: '2024-05-01T12:00:04.902Z' });
    assert.equal(cluster.write!.windows[0]!.end!.seconds, 11.002);
    assert.deepEqual(cluster.write!.errors, {
      connection_lost: 5,
      connection_refused: 5,
      starting_up: 20,
      read_only: 30,
    });
    assert.equal(cluster.write!.firstError!.seconds, 5);
    assert.equal(cluster.write!.firstError!.class, 'connection_lost');
    assert.equal(cluster.write!.lastError!.seconds, 10.903);
    assert.equal(cluster.write!.lastError!.class, 'read_only');
    // One example per class: the earliest attempt of each, with its code.
    assert.deepEqual(
      Object.entries(cluster.write!.errorExamples).map(([c, e]) => [c, e.seconds, e.class, e.code ?? null]),
      [
        ['connection_lost', 5, 'connection_lost', null],
        ['connection_refused', 5.5, 'connection_refused', null],
        ['starting_up', 6, 'starting_up', '57P03'],
        ['read_only', 8, 'read_only', '25006'],
      ],
    );
    assert.equal(cluster.write!.recoveredAt!.seconds, 11.002);
    assert.equal(cluster.roleFlipSeconds, 11.002);
    assert.deepEqual([cluster.roleFlip!.fromServer, cluster.roleFlip!.toServer], ['pg-1', 'pg-2']);
    assert.equal(cluster.write!.latency!.p50Ms, 2);
  });

  it('measures reads, DNS flip, lost writes and the server-side gap of the cluster endpoint', () => {
    const cluster = endpoint('cluster');
    assert.equal(cluster.read!.downtimeSeconds, 2.1);
    assert.equal(cluster.read!.lowerBoundSeconds, 1.901);
    assert.equal(cluster.dnsFlipSeconds, 10.501);
    assert.deepEqual(cluster.dnsFlip!.to, ['pg-2.lab.local', '127.0.10.12']);
    assert.equal(cluster.lostWrites, 2);
    assert.deepEqual(cluster.lostWriteKeys, ['cluster:148', 'cluster:149']);
    assert.equal(cluster.ambiguousWrites, 0);
    assert.equal(cluster.serverSideGapSeconds, 6.3);
    assert.equal(cluster.serverSideGap!.from.seconds, 4.701);
    assert.deepEqual(cluster.errors, {
      connection_lost: 5,
      connection_refused: 25,
      starting_up: 20,
      read_only: 30,
    });
  });

  it('measures the proxy stall as downtime with only slow attempts', () => {
    const proxy = endpoint('proxy');
    assert.equal(proxy.write!.downtimeSeconds, 2.398);
    assert.equal(proxy.write!.lowerBoundSeconds, 2.3);
    assert.deepEqual(proxy.errors, { slow: 18 });
    assert.equal(proxy.roleFlipSeconds, 7.3);
    assert.equal(proxy.lostWrites, 0);
    assert.equal(proxy.read, null);
  });

  it('measures the reader endpoint on its own window, without write fields', () => {
    const reader = endpoint('reader');
    assert.equal(reader.read!.downtimeSeconds, 1.1);
    assert.equal(reader.read!.lowerBoundSeconds, 0.901);
    assert.equal(reader.write, null);
    assert.equal(reader.lostWrites, null);
    assert.equal(reader.roleFlipSeconds, null);
    assert.equal(reader.dnsFlipSeconds, null);
  });

  it('judges each endpoint against its SLOs, endpoint SLO over the default', () => {
    assert.equal(results.verdict.result, 'Fail');
    assert.deepEqual(endpoint('cluster').verdict.reasons, [
      'endpoint `cluster`: write downtime 6.1s exceeds maxWriteDowntime 3s',
      'endpoint `cluster`: 2 lost writes exceed maxLostWrites 0',
    ]);
    assert.equal(endpoint('proxy').verdict.result, 'Pass');
    assert.equal(endpoint('reader').verdict.result, 'Pass');
    assert.equal(results.verdict.reasons.length, 2);
  });

  it('leaves lost writes unknown when no audit ran', () => {
    const { auditRows: _, ...withoutAudit } = syntheticRun();
    const run = analyzeRun(withoutAudit);
    assert.equal(run.endpoints[0]!.lostWrites, null);
    assert.equal(run.endpoints[0]!.serverSideGapSeconds, null);
  });

  it('survives a JSON round trip unchanged', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(results)), results);
  });
});

describe('statusSummary', () => {
  it('is a bounded summary that the status schema accepts', () => {
    const status = statusSummary(analyzeRun(syntheticRun()));
    assert.equal(status.verdict, 'Fail');
    assert.equal(status.worstDowntimeSeconds, 6.1);
    assert.deepEqual(
      status.endpoints![0]!.windows!.map((w) => [w.kind, w.startSeconds, w.endSeconds]),
      [
        ['write', 4.902, 11.002],
        ['read', 4.951, 7.051],
      ],
    );
    assert.equal(status.endpoints![2]!.lostWrites, undefined);
    assert.equal(Value.Check(FailoverExperimentStatusSchema, { phase: 'Completed', ...status }), true);
  });
});
