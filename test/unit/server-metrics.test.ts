import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Registry } from 'prom-client';
import { analyzeRun } from '../../src/analysis/analyze-run.ts';
import { ERROR_CLASSES } from '../../src/analysis/error-class.ts';
import type { Results } from '../../src/analysis/results.ts';
import type { ProbeKind } from '../../src/analysis/sample.ts';
import type { FailoverExperimentSpec } from '../../src/api/experiment-spec.ts';
import { EXPERIMENT_PHASES } from '../../src/api/experiment-status.ts';
import { probeConfigFor } from '../../src/engine/endpoint-config.ts';
import {
  createControllerMetrics,
  createProbeMetrics,
  createRegistry,
  createResultMetrics,
  createScheduleMetrics,
  type TriggeredExperiment,
} from '../../src/server/metrics.ts';
import { parseProbePodEnv } from '../../src/server/probe-pod-env.ts';
import { syntheticRun } from './analysis-synthetic-run.ts';

interface Series {
  name: string;
  labels: Record<string, string | number>;
  value: number;
}

async function allSeries(registry: Registry): Promise<Series[]> {
  const out: Series[] = [];
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values) {
      const labels: Record<string, string | number> = {};
      for (const [k, value] of Object.entries(v.labels)) if (value !== undefined) labels[k] = value;
      // Histograms list their _bucket/_sum/_count series under the family with metricName set.
      const name = (v as { metricName?: string }).metricName ?? metric.name;
      out.push({ name, labels, value: v.value });
    }
  }
  return out;
}

const PASSWORD = 'pw-Zq81-never-a-label';

function everyMetric(
  probeLabels = { namespace: 'team-a', experiment: 'weekly', endpoint: 'cluster', zone: '' },
  kinds: ProbeKind[] = ['write', 'read'],
): { registry: Registry; results: Results } {
  const registry = createRegistry();
  const results = analyzeRun(syntheticRun());
  const probe = createProbeMetrics(registry, probeLabels, kinds, () => ({
    write: { count: 10, p50Ms: 0.4, p99Ms: 2, maxMs: 3.5 },
  }));
  probe.observe({ endpoint: 'cluster', kind: 'write', seq: 0, startMs: 1000, endMs: 1004, class: 'ok' });
  probe.observe({
    endpoint: 'cluster',
    kind: 'read',
    seq: 0,
    startMs: 1000,
    endMs: 1001,
    class: 'auth_error',
    message: `password authentication failed (tried ${PASSWORD})`,
  });
  probe.skipped('write', 'late');
  const controller = createControllerMetrics(registry);
  controller.observeReconcile('experiment', 'success', 0.02);
  controller.observeReconcile('experiment', 'error', 0.5);
  controller.workqueueDepth.set({ controller: 'experiment' }, 3);
  controller.setExperimentsByPhase({ Completed: 2, Observing: 1 });
  const resultMetrics = createResultMetrics(registry);
  resultMetrics.recordResults('team-a', 'weekly', results);
  resultMetrics.setTriggerTimes([
    {
      metadata: { namespace: 'team-a', name: 'weekly' },
      status: { triggerTime: '2025-01-01T00:00:00.000Z', target: 'db' },
    },
  ]);
  return { registry, results };
}

describe('metrics', () => {
  it('names every metric failwatch_*, counters *_total, durations and times in seconds', async () => {
    const { registry } = everyMetric();
    const metrics = await registry.getMetricsAsJSON();
    assert.ok(metrics.length >= 14, `${metrics.length} metrics`);
    for (const m of metrics) {
      assert.match(m.name, /^failwatch_[a-z0-9_]+$/, m.name);
      if (String(m.type) === 'counter') assert.match(m.name, /_total$/, `counter ${m.name}`);
      else assert.doesNotMatch(m.name, /_total$/, `${m.type} ${m.name}`);
      if (String(m.type) === 'histogram') assert.match(m.name, /_seconds$/, `histogram ${m.name}`);
      assert.doesNotMatch(m.name, /_(ms|millis|milliseconds|minutes)$/, m.name);
      assert.ok(m.help.length > 10, `help of ${m.name}`);
    }
  });

  it('starts every error class at 0 for each probe kind and counts attempts by class', async () => {
    const { registry } = everyMetric();
    const attempts = (await allSeries(registry)).filter((s) => s.name === 'failwatch_probe_attempts_total');
    assert.equal(attempts.length, 2 * ERROR_CLASSES.length);
    const value = (kind: string, errorClass: string) =>
      attempts.find((s) => s.labels.kind === kind && s.labels.class === errorClass)?.value;
    assert.equal(value('write', 'ok'), 1);
    assert.equal(value('read', 'auth_error'), 1);
    assert.equal(value('read', 'ok'), 0);
    const text = await registry.metrics();
    assert.match(text, /failwatch_probe_up\{[^}]*kind="write"\} 1\n/);
    assert.match(text, /failwatch_probe_up\{[^}]*kind="read"\} 0\n/);
    assert.match(text, /failwatch_probe_attempt_duration_seconds_bucket\{le="0.005",[^}]*kind="write"\} 1\n/);
    assert.match(text, /failwatch_probe_attempt_duration_seconds_bucket\{le="0.001",[^}]*kind="write"\} 0\n/);
    assert.match(text, /failwatch_probe_attempt_duration_seconds_bucket\{le="30",/);
    assert.match(text, /failwatch_probe_schedule_lag_seconds\{[^}]*kind="write",quantile="0.99"\} 0.002\n/);
    assert.match(text, /failwatch_probe_skipped_ticks_total\{[^}]*kind="write",reason="late"\} 1\n/);
  });

  it('counts reconciles, errors, durations, queue depth and experiments in every phase', async () => {
    const { registry } = everyMetric();
    const text = await registry.metrics();
    assert.match(text, /failwatch_reconcile_total\{controller="experiment",result="success"\} 1\n/);
    assert.match(text, /failwatch_reconcile_total\{controller="experiment",result="error"\} 1\n/);
    assert.match(text, /failwatch_reconcile_errors_total\{controller="experiment"\} 1\n/);
    assert.match(text, /failwatch_reconcile_duration_seconds_count\{controller="experiment"\} 2\n/);
    assert.match(text, /failwatch_workqueue_depth\{controller="experiment"\} 3\n/);
    const phases = (await allSeries(registry)).filter((s) => s.name === 'failwatch_experiments');
    assert.deepEqual(phases.map((s) => s.labels.phase).sort(), [...EXPERIMENT_PHASES].sort());
    assert.equal(phases.find((s) => s.labels.phase === 'Completed')?.value, 2);
    assert.equal(phases.find((s) => s.labels.phase === 'Pending')?.value, 0);
    // A controller without errors has its error series at 0 (a panel and rate() see it).
    const clean = createRegistry();
    createControllerMetrics(clean).observeReconcile('schedule', 'success', 0.01);
    assert.match(await clean.metrics(), /failwatch_reconcile_errors_total\{controller="schedule"\} 0\n/);
  });

  it('records coverage gaps, their length and dropped samples, and an Inconclusive verdict', async () => {
    const input = syntheticRun();
    const results = analyzeRun({
      ...input,
      endpoints: input.endpoints.map((e) => ({ ...e, intervalMs: 100, dnsIntervalMs: 500 })),
      // cluster's prober lost from +6 s to +20 s.
      samples: input.samples.filter(
        (s) =>
          s.endpoint !== 'cluster' ||
          s.startMs < Date.parse('2024-05-01T12:00:06Z') ||
          s.startMs >= Date.parse('2024-05-01T12:00:20Z'),
      ),
      defaultSlo: {},
      droppedSamples: { proxy: 3 },
    });
    const registry = createRegistry();
    createResultMetrics(registry).recordResults('team-a', 'weekly', results);
    const series = await allSeries(registry);
    const of = (name: string) =>
      series
        .filter((s) => s.name === name)
        .map((s) => `${s.labels.endpoint}/${s.labels.kind ?? ''}=${s.value}`)
        .sort();
    assert.deepEqual(of('failwatch_experiment_coverage_gaps'), [
      'cluster/dns=1',
      'cluster/read=1',
      'cluster/write=1',
      'proxy/write=0',
      'reader/read=0',
    ]);
    assert.deepEqual(of('failwatch_experiment_coverage_gap_seconds'), [
      'cluster/dns=14.5',
      'cluster/read=14.1',
      'cluster/write=14.1',
      'proxy/write=0',
      'reader/read=0',
    ]);
    assert.deepEqual(of('failwatch_experiment_dropped_samples'), ['cluster/=0', 'proxy/=3', 'reader/=0']);
    assert.ok(
      series.some(
        (s) =>
          s.name === 'failwatch_experiment_verdict' && s.labels.verdict === 'Inconclusive' && s.value === 1,
      ),
    );
  });

  it('records downtime per endpoint and kind, lost writes, the verdict and the run time', async () => {
    const { registry, results } = everyMetric();
    const series = await allSeries(registry);
    const downtime = series.filter((s) => s.name === 'failwatch_experiment_downtime_seconds');
    const expected = results.endpoints.flatMap((e) =>
      (['write', 'read'] as const).flatMap((kind) => {
        const r = e[kind];
        return r ? [`${e.name}/${kind}=${r.downtimeSeconds}`] : [];
      }),
    );
    assert.ok(expected.length >= 3);
    assert.deepEqual(
      downtime.map((s) => `${s.labels.endpoint}/${s.labels.kind}=${s.value}`).sort(),
      expected.sort(),
    );
    for (const s of downtime)
      assert.deepEqual([s.labels.namespace, s.labels.experiment], ['team-a', 'weekly']);
    const lost = series.filter((s) => s.name === 'failwatch_experiment_lost_writes');
    assert.equal(lost.length, results.endpoints.filter((e) => e.lostWrites !== null).length);
    const verdict = series.filter((s) => s.name === 'failwatch_experiment_verdict');
    assert.deepEqual(
      verdict.map((s) => `${s.labels.verdict}=${s.value}`).sort(),
      ['Fail', 'Inconclusive', 'Pass'].map((v) => `${v}=${v === results.verdict.result ? 1 : 0}`),
    );
    const lastRun = series.find((s) => s.name === 'failwatch_experiment_last_run_timestamp_seconds');
    assert.equal(lastRun?.value, Date.parse(results.observation.end.time) / 1000);
  });

  it("forgetExperiment removes every series of that experiment and only that one's", async () => {
    const registry = createRegistry();
    const results = analyzeRun(syntheticRun());
    const metrics = createResultMetrics(registry);
    metrics.recordResults('team-a', 'weekly', results);
    metrics.recordResults('team-b', 'weekly', results);
    const before = await allSeries(registry);
    const ofA = before.filter((s) => s.labels.namespace === 'team-a');
    assert.ok(ofA.length >= 6, `${ofA.length} series of team-a/weekly`);

    metrics.forgetExperiment('team-a', 'weekly');
    const after = await allSeries(registry);
    assert.equal(after.filter((s) => s.labels.namespace === 'team-a').length, 0);
    assert.equal(after.length, before.length - ofA.length);
    assert.doesNotMatch(await registry.metrics(), /namespace="team-a"/);
    metrics.forgetExperiment('team-a', 'weekly'); // twice is fine

    metrics.forgetExperiment('team-b', 'weekly');
    assert.equal((await allSeries(registry)).length, 0);
  });

  it('a new run replaces the series of the previous one (an endpoint removed since is gone)', async () => {
    const registry = createRegistry();
    const metrics = createResultMetrics(registry);
    const first = analyzeRun(syntheticRun());
    metrics.recordResults('team-a', 'weekly', first);
    const second = structuredClone(first);
    const removed = second.endpoints.pop()!.name;
    metrics.recordResults('team-a', 'weekly', second);
    const series = await allSeries(registry);
    assert.equal(series.filter((s) => s.labels.endpoint === removed).length, 0);
    assert.ok(series.some((s) => s.labels.endpoint === second.endpoints[0]!.name));
  });

  it('puts no credential into any label value', async () => {
    const env = parseProbePodEnv({
      FAILWATCH_RUN_ID: 'r1',
      FAILWATCH_EXPERIMENT: 'team-a/weekly',
      FAILWATCH_ENDPOINT: JSON.stringify({
        name: 'cluster',
        dialect: 'postgresql',
        host: 'db.example',
        database: 'app',
      }),
      FAILWATCH_DB_USERNAME: 'probe',
      FAILWATCH_DB_PASSWORD: PASSWORD,
      FAILWATCH_API_TOKEN: 'metrics-test-token-0123456789',
    });
    const config = probeConfigFor(env.endpoint, env.credentials());
    assert.equal(config.password, PASSWORD);
    const { registry } = everyMetric(
      { namespace: env.namespace, experiment: env.experiment, endpoint: config.name, zone: '' },
      config.kinds,
    );
    const values = (await allSeries(registry)).flatMap((s) => Object.values(s.labels).map(String));
    assert.ok(values.length > 100);
    assert.ok(!values.some((v) => v.includes(PASSWORD)), 'a label value holds the password');
    assert.ok(!values.includes('probe'), 'a label value holds the user name');
    assert.ok(!(await registry.metrics()).includes(PASSWORD));
    assert.ok(!(await registry.metrics()).includes(env.apiToken));
  });

  it('sets the trigger time of every cached experiment that has one, and drops the others', async () => {
    const registry = createRegistry();
    const metrics = createResultMetrics(registry);
    const spec = {
      target: { kind: 'aurora-cluster', clusterIdentifier: 'payments-prod' },
      trigger: { type: 'aws-rds', action: 'reboot-db-instance' },
    } as unknown as FailoverExperimentSpec;
    metrics.setTriggerTimes([
      {
        metadata: { namespace: 'team-a', name: 'weekly' },
        // The status names the operation it called; the spec (here none) is not asked.
        status: {
          triggerTime: '2025-03-01T10:00:01.250Z',
          target: 'lab-pg',
          trigger: { operation: 'failover-db-cluster' },
        },
      },
      // No status.target yet: the spec names the target.
      {
        metadata: { namespace: 'team-b', name: 'daily' },
        spec,
        status: { triggerTime: '2025-03-01T11:00:00Z' },
      },
      // Not triggered (yet): no series.
      { metadata: { namespace: 'team-c', name: 'pending' }, spec, status: {} },
    ]);
    const triggers = async () =>
      (await allSeries(registry))
        .filter((s) => s.name === 'failwatch_experiment_trigger_timestamp_seconds')
        .map(
          (s) =>
            `${s.labels.namespace}/${s.labels.experiment} ${s.labels.target} ${s.labels.operation ?? ''} ${s.value}`,
        )
        .sort();
    assert.deepEqual(await triggers(), [
      `team-a/weekly lab-pg failover-db-cluster ${Date.parse('2025-03-01T10:00:01.250Z') / 1000}`,
      `team-b/daily payments-prod reboot-db-instance ${Date.parse('2025-03-01T11:00:00Z') / 1000}`,
    ]);
    // team-a/weekly was deleted: its series goes with it on the next refresh.
    metrics.setTriggerTimes([
      {
        metadata: { namespace: 'team-b', name: 'daily' },
        spec,
        status: { triggerTime: '2025-03-01T11:00:00Z' },
      },
    ]);
    assert.deepEqual(await triggers(), [
      `team-b/daily payments-prod reboot-db-instance ${Date.parse('2025-03-01T11:00:00Z') / 1000}`,
    ]);
    metrics.setTriggerTimes([]);
    assert.deepEqual(await triggers(), []);
    // The operator hands over its cache once; every scrape reads it then.
    let cache: TriggeredExperiment[] = [
      {
        metadata: { namespace: 'team-d', name: 'live' },
        spec,
        status: { triggerTime: '2025-03-02T00:00:00Z' },
      },
    ];
    metrics.triggerTimesFrom(() => cache);
    assert.deepEqual(await triggers(), [
      `team-d/live payments-prod reboot-db-instance ${Date.parse('2025-03-02T00:00:00Z') / 1000}`,
    ]);
    cache = [];
    assert.deepEqual(await triggers(), []);
  });

  it('starts both skipped-tick reasons of a schedule at 0 and forgets every series of a deleted one', async () => {
    const registry = createRegistry();
    const metrics = createScheduleMetrics(registry);
    const snapshot = {
      runsByVerdict: { Pass: 2, Fail: 1 },
      lastDowntime: [{ endpoint: 'cluster', kind: 'write' as const, seconds: 11.5 }],
      nextRunMs: Date.parse('2025-03-02T03:00:00Z'),
      regressionDetected: false,
    };
    metrics.recordSchedule('team-a', 'nightly', snapshot);
    const skipped = async () =>
      (await allSeries(registry))
        .filter((s) => s.name === 'failwatch_schedule_skipped_ticks_total')
        .map((s) => `${s.labels.reason}=${s.value}`)
        .sort();
    assert.deepEqual(await skipped(), ['active-run=0', 'missed=0']);
    metrics.countSkipped('team-a', 'nightly', 'missed', 3);
    metrics.recordSchedule('team-a', 'nightly', snapshot); // a later reconcile keeps the count
    assert.deepEqual(await skipped(), ['active-run=0', 'missed=3']);
    const text = await registry.metrics();
    assert.match(text, /failwatch_schedule_runs\{namespace="team-a",schedule="nightly",verdict="Pass"\} 2\n/);
    assert.match(
      text,
      /failwatch_schedule_last_downtime_seconds\{[^}]*endpoint="cluster",zone="",kind="write"\} 11.5\n/,
    );
    assert.match(text, /failwatch_schedule_next_run_timestamp_seconds\{[^}]*\} 1740884400\n/);
    metrics.forgetSchedule('team-a', 'nightly');
    assert.equal((await allSeries(registry)).length, 0);
  });
});
