// FailoverSchedule against a real kube-apiserver (etcd, garbage collector) with the controller
// running as its least-privilege ServiceAccount and a controllable clock: the test moves the
// schedule controller's time forward through FAILWATCH_CLOCK_OFFSET_FILE, tick by tick. Only
// the schedule controller runs (`--controllers schedules`), so the runs stay where the test
// puts them: it writes their results into their status as the experiment controller would.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import {
  experimentClient,
  prepareOperatorNamespace,
  scheduleClient,
  spawnOperator,
  stopProcess,
  waiter,
} from '../helpers/operator-env.ts';

const NS = 'gamedays';
const tmp = mkdtempSync(join(tmpdir(), 'fw-sched-'));
const LOG = join(tmp, 'operator.log');
const clockFile = join(tmp, 'clock-offset-seconds');
const METRICS = '127.0.79.5:18081';
let cp: ControlPlane;
let operator: ChildProcess | undefined;
let saKubeconfig: string;
let core: CoreV1Api;
let experiments: ReturnType<typeof experimentClient>;
let schedules: ReturnType<typeof scheduleClient>;
let offsetSeconds = 0;

const kubectl = (args: string[], input?: string) => cp.kubectl(args, input);

const startOperator = (): ChildProcess =>
  spawnOperator({
    kubeconfig: saKubeconfig,
    listen: METRICS,
    logFile: LOG,
    env: { FAILWATCH_CLOCK_OFFSET_FILE: clockFile },
    args: ['--no-leader-elect', '--controllers', 'schedules'],
  });

/** The controller's clock now (real time plus the offset). */
const fakeNow = () => Date.now() + offsetSeconds * 1000;
/** Moves the controller's clock so that it reads `targetMs` now. */
function setClock(targetMs: number): void {
  offsetSeconds = (targetMs - Date.now()) / 1000;
  writeFileSync(clockFile, String(offsetSeconds));
}

function schedule(name: string, spec: Record<string, unknown>): Record<string, any> {
  return {
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverSchedule',
    metadata: { name, namespace: NS },
    spec: {
      schedule: '* * * * *',
      startingDeadlineSeconds: 30,
      successfulRunsHistoryLimit: 2,
      failedRunsHistoryLimit: 1,
      experimentTemplate: {
        metadata: { labels: { team: 'payments' } },
        spec: {
          target: { kind: 'aurora-cluster', clusterIdentifier: 'payments-prod' },
          trigger: { type: 'aws-rds' },
          slo: { maxWriteDowntime: '30s' },
          endpoints: [
            {
              name: 'cluster',
              role: 'cluster',
              dialect: 'aurora-postgresql',
              host: 'payments.cluster-x.rds.amazonaws.com',
              database: 'failwatch',
              credentials: { secretRef: { name: 'pg-probe' } },
            },
          ],
        },
      },
      ...spec,
    },
  };
}

const getSchedule = (name: string) => schedules.get(name);
const runsOf = (name: string) => experiments.runsOf(name);

async function eventsOf(name: string, reason: string): Promise<string[]> {
  const list = await core.listNamespacedEvent({
    namespace: NS,
    fieldSelector: `involvedObject.name=${name},reason=${reason}`,
  });
  return list.items.map((e) => e.message ?? '');
}

const waitFor = waiter({ timeoutMs: 30_000, intervalMs: 200, logs: { operator: LOG } });

/** Writes a finished run's results into its status, as the experiment controller would. */
async function finishRun(
  name: string,
  verdict: 'Pass' | 'Fail',
  worstDowntimeSeconds: number,
): Promise<void> {
  const obj = await experiments.get(name);
  obj.status = {
    phase: 'Completed',
    verdict,
    worstDowntimeSeconds,
    completionTime: new Date(fakeNow()).toISOString(),
    endpoints: [{ name: 'cluster', writeDowntimeSeconds: worstDowntimeSeconds, recovered: true }],
  };
  await experiments.replaceStatus(obj);
}

/** Moves the clock just past the schedule's next tick; returns that tick. */
/** The tick each schedule was last moved past, so the next call waits for a later one. */
const passed = new Map<string, number>();

/** The schedule's nextScheduleTime once it is later than the last tick passed. */
function nextTick(name: string): Promise<number> {
  return waitFor('a nextScheduleTime after the last tick passed', async () => {
    const next = (await getSchedule(name)).status?.nextScheduleTime;
    const ms = next === undefined ? Number.NaN : Date.parse(next);
    return ms > (passed.get(name) ?? Number.NEGATIVE_INFINITY) ? ms : undefined;
  });
}

/**
 * Moves the controller's clock past the schedule's next tick. The status may still name the
 * tick just passed (the run is created before the status is written), so it waits for a later one.
 */
async function passNextTick(name: string, extraSeconds = 2): Promise<number> {
  const tick = await nextTick(name);
  passed.set(name, tick);
  setClock(tick + extraSeconds * 1000);
  return tick;
}

const minutes = (ms: number) => Math.floor(ms / 60_000);

describe('FailoverSchedule on a real control plane', { timeout: 600_000 }, () => {
  before(async () => {
    writeFileSync(clockFile, '0');
    cp = await startControlPlane({ nodeAgent: false });
    const admin = cp.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    const custom = admin.makeApiClient(CustomObjectsApi);
    experiments = experimentClient(custom, NS);
    schedules = scheduleClient(custom, NS);
    saKubeconfig = await prepareOperatorNamespace(cp, { dir: tmp, namespace: NS, tokenDuration: '1h' });
    operator = startOperator();
  });

  after(async () => {
    await stopProcess(operator);
    await cp?.stop();
  });

  it('rejects bad input with readable messages (schema and CEL)', () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['invalid cron', { schedule: 'every monday' }, /spec.schedule.*should match/],
      ['six fields', { schedule: '0 2 * * 1-5 2026' }, /spec.schedule.*should match/],
      ['unknown shortcut', { schedule: '@fortnightly' }, /spec.schedule.*should match/],
      ['not a zone', { timeZone: 'Tokyo Time' }, /spec.timeZone.*should match/],
      [
        'empty window',
        { windows: [{ days: ['Mon'], start: '10:00', end: '10:00' }] },
        /spec.windows\[0\].end.*the window is empty: end must be after start/,
      ],
      ['overnight window', { windows: [{ days: ['Mon'], start: '22:00', end: '02:00' }] }, /window is empty/],
      [
        'window without days',
        { windows: [{ days: [], start: '01:00', end: '02:00' }] },
        /days.*(at least 1|should have at least 1)/,
      ],
      ['bad hour', { windows: [{ days: ['Mon'], start: '25:00', end: '26:00' }] }, /start.*should match/],
      [
        'negative deadline',
        { startingDeadlineSeconds: -5 },
        /startingDeadlineSeconds.*greater than or equal to 10/,
      ],
      [
        'bad template',
        { experimentTemplate: { spec: { trigger: { type: 'aws-rds' }, endpoints: [] } } },
        /endpoints/,
      ],
    ];
    for (const [what, spec, message] of cases) {
      const r = kubectl(['apply', '--dry-run=server', '-f', '-'], stringify(schedule('bad', spec)));
      assert.notEqual(r.code, 0, `${what} was accepted`);
      assert.match(r.out, message, what);
    }
    const long = schedule('a'.repeat(41), {});
    const r = kubectl(['apply', '--dry-run=server', '-f', '-'], stringify(long));
    assert.match(r.out, /name must be at most 40 characters/);
  });

  it('shows what the schema cannot check as a Ready=False condition: cron ranges, unknown zones', async () => {
    await schedules.create(schedule('bad-minute', { schedule: '61 * * * *' }));
    await schedules.create(schedule('bad-zone', { timeZone: 'Mars/Olympus_Mons' }));
    for (const [name, message] of [
      ['bad-minute', /minute: 61 is out of range 0-59/],
      ['bad-zone', /unknown time zone "Mars\/Olympus_Mons"/],
    ] as const) {
      const ready = await waitFor(`${name} condition`, async () =>
        (await getSchedule(name)).status?.conditions?.find((c: any) => c.type === 'Ready'),
      );
      assert.equal(ready.status, 'False');
      assert.equal(ready.reason, 'InvalidSchedule');
      assert.match(ready.message, message);
      assert.equal((await eventsOf(name, 'InvalidSchedule')).length, 1);
    }
    setClock(Date.now() + 180_000);
    await sleep(1500);
    assert.equal((await runsOf('bad-minute')).length, 0);
    assert.equal((await runsOf('bad-zone')).length, 0);
    setClock(Date.now()); // back to real time: the next schedule starts from its creation
  });

  it('creates exactly one run per tick, keeps the history limits and flags a regression', async () => {
    await schedules.create(schedule('pay', {}));
    const downtimes = [10, 12, 11, 16];
    const names: string[] = [];
    for (const [i, seconds] of downtimes.entries()) {
      const tick = await passNextTick('pay');
      const expected = `pay-${minutes(tick)}`;
      const runs = await waitFor(`run ${i + 1}`, async () => {
        const r = await runsOf('pay');
        return r.some((x) => x.metadata.name === expected) ? r : undefined;
      });
      await sleep(1000); // another reconcile or two: still exactly one run for this tick
      const now = await runsOf('pay');
      assert.equal(now.filter((x) => !x.status?.phase).length, 1, 'exactly one active run');
      assert.equal(now.length, Math.min(i, 2) + 1, `runs after tick ${i + 1}`);
      const child = runs.find((x) => x.metadata.name === expected)!;
      assert.equal(child.metadata.labels['failwatch.io/schedule'], 'pay');
      assert.equal(child.metadata.labels.team, 'payments');
      assert.equal(child.metadata.ownerReferences[0].kind, 'FailoverSchedule');
      assert.equal(child.metadata.annotations['failwatch.io/scheduled-time'], new Date(tick).toISOString());
      assert.equal(child.spec.endpoints[0].interval, '100ms', 'the template got the experiment defaults');
      names.push(expected);
      await finishRun(expected, 'Pass', seconds);
    }
    const s = await waitFor('history pruned and regression computed', async () => {
      const o = await getSchedule('pay');
      return o.status?.runs?.length === 2 && o.status?.regression?.latestSeconds === 16 ? o : undefined;
    });
    assert.deepEqual(
      (await runsOf('pay')).map((r) => r.metadata.name),
      names.slice(2),
    );
    assert.deepEqual(
      s.status.runs.map((r: any) => [r.name, r.verdict, r.worstDowntimeSeconds]),
      [
        [names[2], 'Pass', 11],
        [names[3], 'Pass', 16],
      ],
    );
    assert.equal(s.status.lastVerdict, 'Pass');
    // the median is over the earlier runs still in history: 11; 16 > 11 * 1.2
    assert.deepEqual(s.status.regression, {
      detected: true,
      latestSeconds: 16,
      medianSeconds: 11,
      marginPercent: 20,
      comparedRuns: 1,
    });
    assert.equal(s.status.conditions.find((c: any) => c.type === 'Regression').status, 'True');
    assert.equal((await eventsOf('pay', 'SuccessfulCreate')).length, 4);
    const table = kubectl(['get', 'failoverschedules', 'pay', '-n', NS]);
    assert.match(table.out, /SCHEDULE\s+SUSPEND\s+LAST RUN\s+LAST VERDICT\s+NEXT RUN/);
    // NEXT RUN is a time to go (a future `date` column would print <invalid>).
    assert.match(table.out, /pay\s+\* \* \* \* \*\s+false\s+\S+\s+Pass\s+in (<1m|1m)\s/);
    const metrics = await (await fetch(`http://${METRICS}/metrics`)).text();
    assert.match(metrics, /failwatch_schedule_runs\{namespace="gamedays",schedule="pay",verdict="Pass"\} 2/);
    assert.match(
      metrics,
      /failwatch_schedule_last_downtime_seconds\{namespace="gamedays",schedule="pay",endpoint="cluster",zone="",kind="write"\} 16/,
    );
    assert.match(metrics, /failwatch_schedule_regression\{namespace="gamedays",schedule="pay"\} 1/);
    assert.match(
      metrics,
      /failwatch_schedule_next_run_timestamp_seconds\{namespace="gamedays",schedule="pay"\} \d+/,
    );
  });

  it('skips a tick while a run is active, with a SkippedActiveRun Event', async () => {
    const tick = await passNextTick('pay');
    const active = `pay-${minutes(tick)}`;
    await waitFor('the run', async () =>
      (await runsOf('pay')).some((r) => r.metadata.name === active) ? true : undefined,
    );
    const skipped = await passNextTick('pay');
    const events = await waitFor('SkippedActiveRun', async () => {
      const e = await eventsOf('pay', 'SkippedActiveRun');
      return e.length > 0 ? e : undefined;
    });
    await sleep(1000);
    assert.equal(events.length, 1);
    assert.match(
      events[0]!,
      new RegExp(`tick ${new Date(skipped).toISOString()} skipped: run ${active} is still active`),
    );
    assert.equal((await runsOf('pay')).filter((r) => !r.status?.phase).length, 1);
    assert.ok(!(await runsOf('pay')).some((r) => r.metadata.name === `pay-${minutes(skipped)}`));
    await finishRun(active, 'Fail', 40);
  });

  it('controller down across three ticks: one late run within the deadline, none after it, no burst', async () => {
    const before = (await runsOf('pay')).length;
    const upcoming = await nextTick('pay');
    await stopProcess(operator);
    // three ticks pass while it is down; it comes back 10 s after the third (deadline 30 s)
    const third = upcoming + 2 * 60_000;
    passed.set('pay', third);
    setClock(third + 10_000);
    operator = startOperator();
    const late = `pay-${minutes(third)}`;
    await waitFor('the late run', async () =>
      (await runsOf('pay')).some((r) => r.metadata.name === late) ? true : undefined,
    );
    await sleep(1500);
    const runs = await runsOf('pay');
    assert.equal(runs.filter((r) => !r.status?.phase).length, 1, 'one late run, no burst');
    assert.equal(runs.length, before + 1);
    const missed = await eventsOf('pay', 'MissedSchedule');
    assert.equal(missed.length, 1);
    assert.match(missed[0]!, /2 earlier tick\(s\) were missed and are not backfilled/);
    await finishRun(late, 'Pass', 12);
    await sleep(500);

    // down again across three ticks, back 45 s after the third: too late, nothing runs
    await stopProcess(operator);
    const third2 = third + 3 * 60_000;
    passed.set('pay', third2);
    setClock(third2 + 45_000);
    operator = startOperator();
    const missed2 = await waitFor('MissedSchedule', async () => {
      const e = await eventsOf('pay', 'MissedSchedule');
      return e.length === 2 ? e : undefined;
    });
    assert.ok(
      missed2.some((m) =>
        /missed 3 tick\(s\), the latest at .*later than startingDeadlineSeconds \(30\); not run/.test(m),
      ),
      missed2.join('\n'),
    );
    await sleep(1500);
    assert.equal(
      (await runsOf('pay')).filter((r) => !r.status?.phase).length,
      0,
      'no run after the deadline',
    );
    // and the next tick runs on time again
    const next = await passNextTick('pay');
    assert.equal(next, third2 + 60_000);
    await waitFor('the next run', async () =>
      (await runsOf('pay')).some((r) => r.metadata.name === `pay-${minutes(next)}`) ? true : undefined,
    );
    await finishRun(`pay-${minutes(next)}`, 'Pass', 11);
  });

  it('suspend: true stops new runs', async () => {
    await schedules.patch('pay', [{ op: 'replace', path: '/spec/suspend', value: true }]);
    const s = await waitFor('Suspended', async () => {
      const o = await getSchedule('pay');
      return o.status?.conditions?.find((c: any) => c.type === 'Ready')?.reason === 'Suspended'
        ? o
        : undefined;
    });
    assert.equal(s.status.nextScheduleTime, undefined);
    assert.equal(s.status.nextRunIn, undefined);
    // Suspended on purpose is not a failure (GitOps tools read Ready=False as degraded).
    assert.equal(s.status.conditions.find((c: any) => c.type === 'Ready').status, 'True');
    const before = (await runsOf('pay')).map((r) => r.metadata.name);
    setClock(fakeNow() + 3 * 60_000);
    await sleep(2000);
    assert.deepEqual(
      (await runsOf('pay')).map((r) => r.metadata.name),
      before,
    );
    assert.match(kubectl(['get', 'fxs', 'pay', '-n', NS]).out, /pay\s+\* \* \* \* \*\s+true/);
  });

  it('deleting the schedule deletes its runs (garbage collector)', async () => {
    assert.ok((await runsOf('pay')).length >= 2);
    await schedules.delete('pay');
    await waitFor('runs gone', async () => ((await runsOf('pay')).length === 0 ? true : undefined), 60_000);
    const metrics = await (await fetch(`http://${METRICS}/metrics`)).text();
    assert.doesNotMatch(metrics, /schedule="pay"/);
  });
});
