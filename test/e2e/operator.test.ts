// The operator against a real kube-apiserver (with etcd, the garbage collector and a node
// agent running prober pods as processes) and the lab: CRD validation, a full run with the
// aws-rds trigger through the lab's RDS API, least-privilege RBAC, locks, deletion, and the
// at-most-once trigger across controller crashes.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';
import {
  experimentClient,
  LAB_PASSWORD,
  labExperiment,
  labIdle,
  prepareOperatorNamespace,
  scheduleClient,
  spawnOperator,
  stopProcess,
  WRONG_PASSWORD,
  waiter,
} from '../helpers/operator-env.ts';
import { assertEdge, assertEdgeBetween } from '../helpers/timing.ts';

const NS = 'team';
const tmp = mkdtempSync(join(tmpdir(), 'fw-op-'));
const LOG = join(tmp, 'operator.log');
/** Seconds added to the controller's schedule clock (FAILWATCH_CLOCK_OFFSET_FILE). */
const clockFile = join(tmp, 'clock-offset-seconds');
let cp: ControlPlane;
let lab: TestLab;
let operator: ChildProcess | undefined;
let saKubeconfig: string;
let core: CoreV1Api;
let leases: CoordinationV1Api;
let experiments: ReturnType<typeof experimentClient>;
let schedules: ReturnType<typeof scheduleClient>;
const METRICS = '127.0.78.5:18080';

const kubectl = (args: string[], input?: string) => cp.kubectl(args, input);

// One leader identity across restarts, as a container restarted in its pod keeps its name and
// takes its Lease back at once; `newPod` starts under another identity, which must wait for
// the old holder's Lease to expire (15 s), as a replacement pod does.
let pods = 0;
let identity = 'operator-e2e-pod-0';
const startOperator = (env: NodeJS.ProcessEnv = {}, newPod = false): ChildProcess => {
  if (newPod) identity = `operator-e2e-pod-${++pods}`;
  return spawnOperator({
    kubeconfig: saKubeconfig,
    listen: METRICS,
    logFile: LOG,
    env: { FAILWATCH_CLOCK_OFFSET_FILE: clockFile, ...env },
    args: ['--leader-identity', identity],
  });
};

/** The lab experiment as a Kubernetes manifest: credentials from the Secret lab-db. */
const experiment = (name: string, edit?: (doc: Record<string, any>) => void) =>
  labExperiment(lab, name, NS, { edit });

const create = (doc: Record<string, any>) => experiments.create(doc);
const get = (name: string) => experiments.get(name);
const phaseIs = (name: string, phases: string[]) => experiments.phaseIs(name, phases);
const waitFor = waiter({ timeoutMs: 90_000, intervalMs: 200, logs: { operator: LOG } });

const failoversInLab = () => lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length;

const waitLabIdle = () => waitFor('the lab to be idle', labIdle(lab));

async function proberPods(name: string) {
  return (await core.listNamespacedPod({ namespace: NS, labelSelector: `failwatch.io/experiment=${name}` }))
    .items;
}

describe('failwatch operator on a real control plane', { timeout: 1_800_000 }, () => {
  before(async () => {
    cp = await startControlPlane();
    lab = await startTestLab({ base: '127.0.78', dnsPort: 11153, apiPort: 11180 });
    const admin = cp.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    const custom = admin.makeApiClient(CustomObjectsApi);
    leases = admin.makeApiClient(CoordinationV1Api);
    experiments = experimentClient(custom, NS);
    schedules = scheduleClient(custom, NS);
    saKubeconfig = await prepareOperatorNamespace(cp, {
      dir: tmp,
      namespace: NS,
      secrets: { 'lab-db': LAB_PASSWORD, 'wrong-db': WRONG_PASSWORD },
    });
    operator = startOperator();
  });

  after(async () => {
    await stopProcess(operator);
    await cp?.stop();
    await lab?.down();
  });

  it('documents the fields for kubectl explain and accepts every example', async () => {
    // The apiserver publishes a new CRD's OpenAPI a moment after it is Established.
    let explain = kubectl(['explain', 'failoverexperiment.spec.endpoints.interval']);
    for (let i = 0; i < 100 && explain.code !== 0; i++) {
      await sleep(200);
      explain = kubectl(['explain', 'failoverexperiment.spec.endpoints.interval']);
    }
    assert.equal(explain.code, 0, explain.out);
    assert.match(explain.out, /fixed rate/i);
    for (const f of readdirSync('examples').filter((x) => x.endsWith('.yaml'))) {
      const doc = parse(readFileSync(join('examples', f), 'utf8')) as Record<string, any>;
      doc.metadata.namespace = NS;
      const r = kubectl(['apply', '--dry-run=server', '-f', '-'], stringify(doc));
      assert.equal(r.code, 0, `${f}: ${r.out}`);
    }
  });

  it('rejects bad manifests with messages a user understands', () => {
    const cases: [string, (d: Record<string, any>) => void, RegExp][] = [
      [
        'no endpoints',
        (d) => {
          d.spec.endpoints = [];
        },
        /endpoints.*(at least 1|should have at least 1)/i,
      ],
      [
        'missing endpoints',
        (d) => {
          delete d.spec.endpoints;
        },
        /endpoints: Required value/,
      ],
      [
        'bad duration',
        (d) => {
          d.spec.endpoints[0].interval = 'soon';
        },
        /interval/,
      ],
      [
        'interval too short',
        (d) => {
          d.spec.endpoints[0].interval = '1ms';
        },
        /interval.*10ms/,
      ],
      [
        'negative interval',
        (d) => {
          d.spec.endpoints[0].interval = '-100ms';
        },
        /interval/,
      ],
      [
        'unknown dialect',
        (d) => {
          d.spec.endpoints[0].dialect = 'oracle';
        },
        /dialect.*Unsupported value: "oracle"/,
      ],
      [
        'duplicate endpoint names',
        (d) => {
          d.spec.endpoints[1].name = d.spec.endpoints[0].name;
        },
        /unique|Duplicate value/i,
      ],
      [
        'aws-rds without target',
        (d) => {
          delete d.spec.target;
        },
        /target is required/,
      ],
      [
        'aurora target without cluster id',
        (d) => {
          delete d.spec.target.clusterIdentifier;
        },
        /clusterIdentifier is required/,
      ],
      [
        'writes on a reader endpoint',
        (d) => {
          d.spec.endpoints[2].probes = ['write'];
        },
        /reader endpoint cannot take writes/,
      ],
      [
        'unknown probe kind',
        (d) => {
          d.spec.endpoints[0].probes = ['ping'];
        },
        /probes.*Unsupported value/,
      ],
      [
        'port out of range',
        (d) => {
          d.spec.endpoints[0].port = 70000;
        },
        /port.*65535/,
      ],
      [
        'bad endpoint name',
        (d) => {
          d.spec.endpoints[0].name = 'Cluster_1';
        },
        /name.*should match/,
      ],
      [
        'unknown trigger type',
        (d) => {
          d.spec.trigger.type = 'chaos';
        },
        /type.*Unsupported value/,
      ],
      [
        'negative lost-write SLO',
        (d) => {
          d.spec.slo.maxLostWrites = -1;
        },
        /maxLostWrites.*greater than or equal to 0/,
      ],
      [
        'slow threshold above query timeout',
        (d) => {
          d.spec.endpoints[3].slowThreshold = '30s';
        },
        /slowThreshold must be shorter than queryTimeout/,
      ],
      [
        'recoveredFor above maxDuration',
        (d) => {
          d.spec.observe.recoveredFor = '10m';
        },
        /recoveredFor must be shorter than maxDuration/,
      ],
      [
        'both credentials forms',
        (d) => {
          d.spec.endpoints[0].credentials.username = 'x';
        },
        /exactly one/,
      ],
    ];
    for (const [what, edit, expected] of cases) {
      const doc = experiment('bad', edit);
      const r = kubectl(['apply', '--dry-run=server', '-f', '-'], stringify(doc));
      assert.notEqual(r.code, 0, `${what} was accepted`);
      assert.match(r.out, expected, `${what}: ${r.out}`);
    }
    console.log(`${cases.length} bad manifests rejected by the apiserver`);
  });

  it('runs an experiment end to end: prober pods, one failover, results in status, Events, metrics', async () => {
    const before = failoversInLab();
    await create(experiment('e2e'));
    const done = await waitFor('e2e Completed', phaseIs('e2e', ['Completed', 'Failed']));
    assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
    assert.equal(failoversInLab(), before + 1, 'exactly one failover');
    const truth = lab.state().groundTruth.filter((s) => s.failover === before + 1);
    const at = (step: string) => truth.find((s) => s.step === step)!.atMs;
    const t0 = Date.parse(done.status.triggerTime);
    const cluster = done.status.endpoints.find((e: { name: string }) => e.name === 'cluster');
    const w = cluster.windows.find((x: { kind: string }) => x.kind === 'write');
    const wStart = t0 + w.startSeconds * 1000;
    const wEnd = t0 + w.endSeconds * 1000;
    console.log(
      `k8s run: cluster write window ${w.startSeconds}..${w.endSeconds} s after T0; truth: writer stopped ${(at('old-writer-stopped') - t0) / 1000} s, DNS moved ${(at('cluster-endpoint-updated') - t0) / 1000} s`,
    );
    // Each edge belongs to its event (test/helpers/timing.ts: how late a loaded machine may be).
    assertEdgeBetween(
      wStart,
      at('proxy-paused'),
      at('old-writer-stopped'),
      300,
      'the window opens when the writer goes away',
    );
    assertEdge(wEnd, at('cluster-endpoint-updated'), 300, 'the window closes when DNS names the new writer');
    assert.equal(cluster.lostWrites, 0);
    const proxy = done.status.endpoints.find((e: { name: string }) => e.name === 'proxy');
    const p = proxy.windows.find((x: { kind: string }) => x.kind === 'write');
    assertEdge(t0 + p.endSeconds * 1000, at('proxy-resumed'), 300, 'the proxy stall ends at RESUME');
    const row = kubectl(['get', 'failoverexperiments', 'e2e', '-n', NS]).out;
    assert.match(row, /NAME\s+PHASE\s+REASON\s+TARGET\s+WORST DOWNTIME\s+VERDICT\s+AGE/);
    assert.match(row, /e2e\s+Completed\s+lab-pg\s+[\d.]+s\s+Pass/);
    const events = await core.listNamespacedEvent({
      namespace: NS,
      fieldSelector: 'involvedObject.name=e2e',
    });
    const reasons = events.items.map((e) => e.reason);
    for (const r of ['Preflight', 'Baseline', 'FailoverTriggered', 'Passed'])
      assert.ok(reasons.includes(r), `Event ${r} in ${reasons}`);
    // The by-phase gauge follows the informer's cache once a second: wait for it.
    const metrics = await waitFor(
      'metrics',
      async () => {
        const text = await (await fetch(`http://${METRICS}/metrics`)).text();
        return /failwatch_experiments\{phase="Completed"\} [1-9]/.test(text) ? text : undefined;
      },
      10_000,
    );
    assert.match(
      metrics,
      /failwatch_experiment_downtime_seconds\{[^}]*experiment="e2e"[^}]*endpoint="cluster"[^}]*\} [\d.]+/,
    );
    assert.doesNotMatch(metrics, /failwatch-lab/, 'no secret in metrics');
    assert.match(metrics, /failwatch_experiments\{phase="Completed"\} [1-9]/);
    assert.match(
      metrics,
      /failwatch_reconcile_total\{controller="failoverexperiment",result="success"\} [1-9]/,
    );
    assert.doesNotMatch(JSON.stringify(done.status), /failwatch-lab"/, 'no secret in status');
    await waitFor('prober pods gone', async () =>
      (await proberPods('e2e')).length === 0 ? true : undefined,
    );
    const leaseList = await leases.listNamespacedLease({ namespace: 'failwatch-system' });
    assert.deepEqual(
      leaseList.items.map((l) => l.metadata?.name).filter((n) => n?.startsWith('failwatch-target')),
      [],
    );
    const cm = await core.readNamespacedConfigMap({ name: 'e2e-results', namespace: NS });
    assert.equal(JSON.parse(cm.data!['results.json']!).apiVersion, 'failwatch.io/results/v1');
  });

  it('waits with a condition on a missing Secret, and fails on a wrong password, never failing over', async () => {
    const before = failoversInLab();
    await create(
      experiment('nosecret', (d) => {
        for (const e of d.spec.endpoints) e.credentials.secretRef.name = 'missing';
      }),
    );
    // (TargetLocked may come first: the Secret is found missing by the prober pods, after the lock.)
    const blocked = await waitFor('Blocked SecretNotFound', async () => {
      const o = await get('nosecret');
      return o.status?.conditions?.find(
        (c: { type: string; status: string; reason: string }) =>
          c.type === 'Blocked' && c.status === 'True' && c.reason === 'SecretNotFound',
      );
    });
    assert.match(blocked.message, /Secret missing not found in namespace team/);
    await create(
      experiment('badpw', (d) => {
        for (const e of d.spec.endpoints) e.credentials.secretRef.name = 'wrong-db';
      }),
    );
    const failed = await waitFor('badpw Failed', phaseIs('badpw', ['Failed', 'Completed']));
    const cond = failed.status.conditions.find((c: { type: string }) => c.type === 'Failed');
    assert.equal(cond.reason, 'AuthenticationFailed', cond.message);
    assert.doesNotMatch(cond.message, /not-the-password/);
    assert.equal(failoversInLab(), before, 'no failover');
    assert.equal((await get('nosecret')).status.phase, 'Pending');
    await experiments.delete('nosecret');
  });

  it('never runs two experiments on one target at once', async () => {
    const before = failoversInLab();
    await create(experiment('first'));
    await waitFor('first running', phaseIs('first', ['Preflight', 'Baseline', 'Triggering', 'Observing']));
    await create(experiment('second'));
    const blocked = await waitFor('second Blocked', async () => {
      const o = await get('second');
      return o.status?.conditions?.find(
        (c: { type: string; status: string }) => c.type === 'Blocked' && c.status === 'True',
      );
    });
    assert.equal(blocked.reason, 'TargetLocked');
    assert.match(blocked.message, /team\/first/);
    const a = await waitFor('first done', phaseIs('first', ['Completed', 'Failed']));
    await waitLabIdle();
    const b = await waitFor('second done', phaseIs('second', ['Completed', 'Failed']), 120_000);
    assert.equal(a.status.phase, 'Completed');
    assert.equal(b.status.phase, 'Completed');
    assert.ok(
      Date.parse(b.status.triggerTime) > Date.parse(a.status.completionTime),
      'the second triggered after the first ended',
    );
    assert.equal(failoversInLab(), before + 2);
  });

  it('cleans up pods and the lock when an experiment is deleted mid-run', async () => {
    await waitLabIdle();
    await create(experiment('deleted'));
    await waitFor('deleted observing', phaseIs('deleted', ['Observing']));
    await experiments.delete('deleted');
    await waitFor('object gone', async () =>
      get('deleted').then(
        () => undefined,
        () => true,
      ),
    );
    await waitFor('pods gone', async () => ((await proberPods('deleted')).length === 0 ? true : undefined));
    const leaseList = await leases.listNamespacedLease({ namespace: 'failwatch-system' });
    assert.deepEqual(
      leaseList.items.map((l) => l.metadata?.name).filter((n) => n?.startsWith('failwatch-target')),
      [],
    );
  });

  it('runs a normal, complete experiment from a FailoverSchedule on the lab', async () => {
    await waitLabIdle();
    const before = failoversInLab();
    const template = experiment('unused');
    await schedules.create({
      apiVersion: 'failwatch.io/v1alpha1',
      kind: 'FailoverSchedule',
      metadata: { name: 'gameday', namespace: NS },
      spec: {
        schedule: '* * * * *',
        timeZone: 'Asia/Tokyo',
        experimentTemplate: { metadata: { labels: { team: 'sre' } }, spec: template.spec },
      },
    });
    // The controller's clock is moved just past the next minute's tick (instead of waiting up
    // to a minute for it): that tick creates one run, which goes through the whole experiment.
    const next = await waitFor(
      'nextScheduleTime',
      async () => (await schedules.get('gameday')).status?.nextScheduleTime as string | undefined,
    );
    writeFileSync(clockFile, String((Date.parse(next) + 1000 - Date.now()) / 1000));
    const child = await waitFor(
      'a run of the schedule',
      async () => (await experiments.runsOf('gameday'))[0],
      75_000,
    );
    // Suspend it so that no second tick starts another failover during the assertions.
    await schedules.patch('gameday', [{ op: 'add', path: '/spec/suspend', value: true }]);
    const done = await waitFor(
      `${child.metadata.name} done`,
      phaseIs(child.metadata.name, ['Completed', 'Failed']),
      120_000,
    );
    assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
    assert.equal(done.metadata.labels.team, 'sre');
    assert.equal(failoversInLab(), before + 1, 'the scheduled run failed the lab over once');
    const cluster = done.status.endpoints.find((e: { name: string }) => e.name === 'cluster');
    assert.ok(cluster.writeDowntimeSeconds > 0.5 && cluster.lostWrites === 0, JSON.stringify(cluster));
    console.log(
      `scheduled run ${child.metadata.name}: cluster write downtime ${cluster.writeDowntimeSeconds} s`,
    );
    await schedules.delete('gameday');
  });

  it('completes with one failover when the controller is killed in every phase', async () => {
    const crashes: [string, NodeJS.ProcessEnv | undefined][] = [
      ['Preflight', undefined],
      ['Baseline', undefined],
      ['Triggering', { FAILWATCH_FAULT_INJECT: 'exit-after-trigger-intent' }],
      ['Triggering', { FAILWATCH_FAULT_INJECT: 'exit-after-trigger-call' }],
      ['Observing', undefined],
      ['Analyzing', { FAILWATCH_FAULT_INJECT: 'exit-before-results' }],
    ];
    for (const [i, [phase, env]] of crashes.entries()) {
      await waitLabIdle();
      const name = `crash-${i}`;
      const before = failoversInLab();
      if (env) {
        await stopProcess(operator);
        operator = startOperator(env);
      }
      // Killed between the intent and the call: the call was never made, and the restarted
      // controller cannot know that, so it never calls (at most once) and observes instead.
      const neverCalled = env?.FAILWATCH_FAULT_INJECT === 'exit-after-trigger-intent';
      await create(
        experiment(name, (d) => {
          if (neverCalled) d.spec.observe.maxDuration = '15s';
        }),
      );
      if (env) {
        await waitFor('operator exit', async () => (operator!.exitCode !== null ? true : undefined));
      } else {
        await waitFor(`${name} in ${phase}`, phaseIs(name, [phase]), 120_000);
        await stopProcess(operator);
      }
      // The first crash is a pod replaced (a new identity waits out the Lease), the others a
      // container restarted in its pod.
      operator = startOperator({}, i === 0);
      const done = await waitFor(`${name} done`, phaseIs(name, ['Completed', 'Failed']), 120_000);
      assert.equal(done.status.phase, 'Completed', `${phase}: ${JSON.stringify(done.status.conditions)}`);
      if (neverCalled) {
        assert.equal(failoversInLab(), before, 'killed before the call: no failover, and no second call');
        assert.equal(done.status.verdict, 'Inconclusive');
        assert.equal(done.status.trigger.outcome, 'Unknown');
        assert.match(JSON.stringify(done.status), /TriggerOutcomeUnknown/);
        console.log(
          'killed between the intent and the call: Inconclusive TriggerOutcomeUnknown, 0 failovers',
        );
        continue;
      }
      assert.equal(
        failoversInLab(),
        before + 1,
        `killed in ${phase}${env ? ` (${env.FAILWATCH_FAULT_INJECT})` : ''}: exactly one failover`,
      );
      assert.ok(
        done.status.endpoints.find((e: { name: string }) => e.name === 'cluster').writeDowntimeSeconds > 0.5,
      );
      console.log(
        `killed in ${phase}${env ? ` (${env.FAILWATCH_FAULT_INJECT})` : ''}: completed, 1 failover`,
      );
    }
  });
});
