// A run probed per zone: each lane `<endpoint>@<zone>` is analyzed on its own and keeps its
// endpoint and zone through results, status, the printed table, the report and the metrics.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyzeRun, type RunInput } from '../../src/analysis/analyze-run.ts';
import { statusSummary } from '../../src/analysis/status-summary.ts';
import { renderReportHtml } from '../../src/report/report-html.ts';
import { formatSummaryTable } from '../../src/report/table.ts';
import { createRegistry, createResultMetrics } from '../../src/server/metrics.ts';
import { syntheticRun } from './analysis-synthetic-run.ts';

/** The synthetic run with its cluster endpoint probed from two zones (the second 0.1 s later). */
function zonedRun(): RunInput {
  const run = syntheticRun();
  const zones = ['us-east-1a', 'us-east-1c'];
  const cluster = run.endpoints.find((e) => e.name === 'cluster')!;
  const lane = (zone: string) => `cluster@${zone}`;
  return {
    ...run,
    endpoints: [
      ...zones.map((zone) => ({ ...cluster, name: lane(zone), endpoint: 'cluster', zone })),
      ...run.endpoints.filter((e) => e !== cluster),
    ],
    samples: run.samples.flatMap((s) =>
      s.endpoint !== 'cluster'
        ? [s]
        : zones.map((zone, i) => ({
            ...s,
            endpoint: lane(zone),
            startMs: s.startMs + i * 100,
            endMs: s.endMs + i * 100,
            ...(s.writeKey ? { writeKey: s.writeKey.replace(/^cluster#/, `${lane(zone)}#`) } : {}),
          })),
    ),
    auditRows: run.auditRows?.flatMap((r) =>
      r.endpoint !== 'cluster'
        ? [r]
        : zones.map((zone) => ({
            ...r,
            endpoint: lane(zone),
            key: r.key.replace(/^cluster#/, `${lane(zone)}#`),
          })),
    ),
  };
}

test('per-zone lanes: results, status, table, report and metrics carry endpoint and zone', async () => {
  const plain = analyzeRun(syntheticRun());
  const results = analyzeRun(zonedRun());
  const plainCluster = plain.endpoints.find((e) => e.name === 'cluster')!;
  assert.equal(plainCluster.zone, undefined, 'without zones: no zone field');
  assert.equal(plainCluster.endpoint, undefined);
  const [a, c] = results.endpoints;
  assert.deepEqual([a!.name, a!.endpoint, a!.zone], ['cluster@us-east-1a', 'cluster', 'us-east-1a']);
  assert.deepEqual([c!.name, c!.endpoint, c!.zone], ['cluster@us-east-1c', 'cluster', 'us-east-1c']);
  // Each zone's lane is the whole measurement: the same downtime and lost writes as unzoned.
  assert.equal(a!.write!.downtimeSeconds, plainCluster.write!.downtimeSeconds);
  assert.equal(c!.write!.downtimeSeconds, plainCluster.write!.downtimeSeconds);
  assert.equal(a!.lostWrites, plainCluster.lostWrites);
  assert.equal(c!.lostWrites, plainCluster.lostWrites);
  assert.equal(a!.write!.windows[0]!.start.seconds + 0.1, c!.write!.windows[0]!.start.seconds);

  const status = statusSummary(results);
  assert.deepEqual(
    status.endpoints!.slice(0, 2).map((e) => [e.name, e.endpoint, e.zone]),
    [
      ['cluster@us-east-1a', 'cluster', 'us-east-1a'],
      ['cluster@us-east-1c', 'cluster', 'us-east-1c'],
    ],
  );
  assert.equal(statusSummary(plain).endpoints![0]!.zone, undefined);

  const table = formatSummaryTable(results);
  assert.match(table, /^cluster@us-east-1a +\| /m);
  assert.match(table, /^cluster@us-east-1c +\| /m);
  const html = renderReportHtml(results, zonedRun().samples);
  assert.ok(
    html.includes('cluster@us-east-1a') && html.includes('cluster@us-east-1c'),
    'lanes labelled by zone',
  );

  const registry = createRegistry();
  const metrics = createResultMetrics(registry);
  metrics.recordResults('default', 'zones', results);
  metrics.recordResults('default', 'plain', plain);
  const text = await registry.metrics();
  assert.match(
    text,
    new RegExp(
      `failwatch_experiment_downtime_seconds\\{namespace="default",experiment="zones",endpoint="cluster",zone="us-east-1a",kind="write"\\} ${a!.write!.downtimeSeconds}\\n`,
    ),
  );
  assert.match(text, /experiment="zones",endpoint="cluster",zone="us-east-1c",kind="write"/);
  // Without zones the zone label is empty: Prometheus stores it as no label.
  assert.match(text, /experiment="plain",endpoint="cluster",zone="",kind="write"/);
});
