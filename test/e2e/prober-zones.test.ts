// Probers per zone through the operator: examples/lab-kubernetes-zones.yaml (changed only by the
// lab's addresses and a longer connectTimeout for a loaded machine) on a control plane whose node agent registers a node without zone, three
// tainted prober nodes in us-east-1a/b/c and a decoy in us-east-1a without the prober label.
// The node agent binds like kube-scheduler's NodeAffinity and TaintToleration filters, so each
// prober pod must land on the tainted prober node of its own zone; then one lab failover is
// measured once per zone, and results.json, status and metrics carry the zone. The same with
// examples/lab-kubernetes-shared-probers.yaml: one pod per zone probes three endpoints.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi, SchedulingV1Api } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { Results } from '../../src/analysis/results.ts';
import { type AgentNode, type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { labManifest, startTestLab, type TestLab } from '../helpers/lab.ts';
import {
  experimentClient,
  LAB_PASSWORD,
  labIdle,
  logTails,
  prepareOperatorNamespace,
  spawnOperator,
  stopProcess,
  waiter,
} from '../helpers/operator-env.ts';
import {
  assertEdge,
  assertEdgeBetween,
  assertSameDuration,
  assertWarmUpBeforeBaseline,
} from '../helpers/timing.ts';

type Doc = Record<string, any>;

const NS = 'default';
const ZONE = 'topology.kubernetes.io/zone';
const tmp = mkdtempSync(join(tmpdir(), 'fw-zones-'));
const LOG = join(tmp, 'operator.log');
const METRICS = '127.0.86.5:18680';
const TAINT = { key: 'failwatch.io/probers', value: 'true', effect: 'NoSchedule' as const };
const proberNode = (zone: string): AgentNode => ({
  name: `prober-${zone}`,
  labels: { [ZONE]: zone, 'failwatch.io/probers': 'true' },
  taints: [TAINT],
});
const NODES: AgentNode[] = [
  { name: 'general-1' },
  // Fewer pods and the right zone, but not a prober node: nodeSelector keeps probers off it.
  { name: 'decoy-us-east-1a', labels: { [ZONE]: 'us-east-1a' } },
  proberNode('us-east-1a'),
  proberNode('us-east-1b'),
  proberNode('us-east-1c'),
];
let cp: ControlPlane;
let lab: TestLab;
let operator: ChildProcess | undefined;
let core: CoreV1Api;
let experiments: ReturnType<typeof experimentClient>;
const waitFor = waiter({ timeoutMs: 120_000, intervalMs: 250, logs: { operator: LOG } });

describe('probers per zone', { timeout: 900_000 }, () => {
  before(async () => {
    cp = await startControlPlane({ nodes: NODES, podCidr: '127.0.106.0/24' });
    lab = await startTestLab({ base: '127.0.86', dnsPort: 12653, apiPort: 12680 });
    const admin = cp.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    experiments = experimentClient(admin.makeApiClient(CustomObjectsApi), NS);
    const kubeconfig = await prepareOperatorNamespace(cp, {
      dir: tmp,
      namespace: 'failwatch-zones',
    });
    // What the example's header has users create.
    await admin.makeApiClient(SchedulingV1Api).createPriorityClass({
      body: { metadata: { name: 'failwatch-probers' }, value: 100000, description: 'failwatch prober pods' },
    });
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'lab-db' }, stringData: { username: 'failwatch', password: LAB_PASSWORD } },
    });
    const ca = cp.kubectl([
      'create',
      'secret',
      'generic',
      'lab-ca',
      '-n',
      NS,
      `--from-file=ca.crt=${lab.state().tls.caFile!}`,
    ]);
    assert.equal(ca.code, 0, ca.out);
    operator = spawnOperator({ kubeconfig, listen: METRICS, logFile: LOG });
  });

  after(async () => {
    await stopProcess(operator);
    await cp?.stop();
    await lab?.down();
  });

  it('places one prober per endpoint and zone, and measures one failover from each zone', async () => {
    const doc = parse(labManifest(lab, undefined, 'lab-kubernetes-zones.yaml')) as Doc;
    assert.deepEqual(doc.spec.probers.zones, ['us-east-1a', 'us-east-1c']);
    // Six e2e suites share two cores here: a TLS connect can take more than the default 1 s.
    for (const e of doc.spec.endpoints) e.connectTimeout = '5s';
    await experiments.create(doc);
    const failoversBefore = lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length;

    // Placement: while the run goes on, every prober pod is bound to the prober node of its zone.
    const pods = await waitFor('3 prober pods bound to nodes', async () => {
      const list = await core.listNamespacedPod({
        namespace: NS,
        labelSelector: 'failwatch.io/experiment=lab-zones',
      });
      return list.items.length === 3 && list.items.every((p) => p.spec?.nodeName) ? list.items : undefined;
    });
    const placed = Object.fromEntries(
      pods.map((p) => [
        `${p.metadata!.labels!['failwatch.io/endpoint']}@${p.metadata!.labels!['failwatch.io/zone']}`,
        p.spec!.nodeName,
      ]),
    );
    assert.deepEqual(placed, {
      'cluster@us-east-1a': 'prober-us-east-1a',
      'cluster@us-east-1c': 'prober-us-east-1c',
      'reader@us-east-1b': 'prober-us-east-1b',
    });
    for (const p of pods) {
      assert.equal(p.spec!.priorityClassName, 'failwatch-probers');
      assert.equal(p.spec!.priority, 100000, 'the Priority admission plugin resolved the class');
      assert.deepEqual(JSON.parse(JSON.stringify(p.spec!.containers[0]!.resources)), {
        requests: { cpu: '25m', memory: '48Mi' },
        limits: { memory: '384Mi' },
      });
    }

    const done = await waitFor(
      'lab-zones to finish',
      experiments.phaseIs('lab-zones', ['Completed', 'Failed']),
      300_000,
    );
    assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
    assert.equal(done.status.verdict, 'Pass', JSON.stringify(done.status.verdictReasons));
    assert.equal(
      lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length,
      failoversBefore + 1,
      'one failover for all zones',
    );
    const truth = lab.state().groundTruth.filter((s) => s.failover === failoversBefore + 1);
    const at = (step: string) => truth.find((s) => s.step === step)!.atMs;
    const t0 = Date.parse(done.status.triggerTime);

    // Status: one summary per endpoint and zone.
    const lanes = Object.fromEntries(done.status.endpoints.map((e: Doc) => [e.name, e]));
    assert.deepEqual(Object.keys(lanes).sort(), [
      'cluster@us-east-1a',
      'cluster@us-east-1c',
      'reader@us-east-1b',
    ]);
    for (const zone of ['us-east-1a', 'us-east-1c']) {
      const lane = lanes[`cluster@${zone}`];
      assert.equal(lane.endpoint, 'cluster');
      assert.equal(lane.zone, zone);
      const w = lane.windows.find((x: Doc) => x.kind === 'write');
      const wStart = t0 + w.startSeconds * 1000;
      const wEnd = t0 + w.endSeconds * 1000;
      console.log(
        `cluster from ${zone}: write downtime ${lane.writeDowntimeSeconds} s (window ${w.startSeconds}..${w.endSeconds} s after T0); truth: writer stopped ${(at('old-writer-stopped') - t0) / 1000} s, DNS moved ${(at('cluster-endpoint-updated') - t0) / 1000} s; lost writes ${lane.lostWrites}`,
      );
      // Each edge belongs to its event (test/helpers/timing.ts: how late a loaded machine may be).
      assertEdgeBetween(
        wStart,
        at('proxy-paused'),
        at('old-writer-stopped'),
        100,
        `${zone}: the window opens when the writer goes away`,
      );
      assertEdge(
        wEnd,
        at('cluster-endpoint-updated'),
        100,
        `${zone}: the window closes when DNS names the new writer`,
      );
      // Each zone's prober wrote its own rows (write keys carry the lane): none lost, none shared.
      assert.equal(lane.lostWrites, 0);
    }
    assertSameDuration(
      lanes['cluster@us-east-1a'].writeDowntimeSeconds,
      lanes['cluster@us-east-1c'].writeDowntimeSeconds,
      100,
      'the same failover, seen from two zones on one machine',
    );
    assert.equal(lanes['reader@us-east-1b'].zone, 'us-east-1b');

    // results.json: the lane, its endpoint and zone.
    const cm = await core.readNamespacedConfigMap({ name: 'lab-zones-results', namespace: NS });
    const results = JSON.parse(cm.data!['results.json']!) as Results;
    assert.deepEqual(
      results.endpoints.map((e) => [e.name, e.endpoint, e.zone]),
      [
        ['cluster@us-east-1a', 'cluster', 'us-east-1a'],
        ['cluster@us-east-1c', 'cluster', 'us-east-1c'],
        ['reader@us-east-1b', 'reader', 'us-east-1b'],
      ],
    );
    for (const e of results.endpoints.filter((x) => x.endpoint === 'cluster'))
      assert.ok((e.write?.downtimeSeconds ?? 0) > 0, `${e.name} saw the write outage`);

    // Metrics: the endpoint label stays the endpoint's name, the zone is a label of its own.
    const metrics = await waitFor('zone metrics', async () => {
      const text = await (await fetch(`http://${METRICS}/metrics`)).text();
      return /failwatch_experiment_downtime_seconds\{[^}]*zone="us-east-1c"/.test(text) ? text : undefined;
    });
    for (const zone of ['us-east-1a', 'us-east-1c']) {
      const series = new RegExp(
        `failwatch_experiment_downtime_seconds\\{namespace="${NS}",experiment="lab-zones",endpoint="cluster",zone="${zone}",kind="write"\\} ([0-9.e+-]+)\n`,
      ).exec(metrics);
      assert.ok(series, `the write downtime series of cluster in ${zone}`);
      assert.equal(Number(series[1]), lanes[`cluster@${zone}`].writeDowntimeSeconds);
    }
    await waitFor('the lab to be idle', labIdle(lab));
  });

  it('runs one prober pod per zone for every endpoint with sharing Zone, each endpoint its own lane', async () => {
    const name = 'lab-shared-probers';
    const doc = parse(labManifest(lab, undefined, 'lab-kubernetes-shared-probers.yaml')) as Doc;
    assert.equal(doc.spec.probers.sharing, 'Zone');
    for (const e of doc.spec.endpoints) e.connectTimeout = '5s';
    await experiments.create(doc);
    const failoversBefore = lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length;
    const zones = ['us-east-1a', 'us-east-1b'];
    const endpoints = ['cluster', 'reader', 'proxy'];

    // Two pods, not six: one per zone, on its zone's prober node, probing the three endpoints.
    const pods = await waitFor('2 shared prober pods running', async () => {
      const list = await core.listNamespacedPod({
        namespace: NS,
        labelSelector: `failwatch.io/experiment=${name}`,
      });
      return list.items.length === 2 &&
        list.items.every((p) => p.status?.phase === 'Running' && p.status.podIP)
        ? list.items
        : undefined;
    });
    assert.deepEqual(
      Object.fromEntries(pods.map((p) => [p.metadata!.name, p.spec!.nodeName])),
      Object.fromEntries(zones.map((z) => [`${name}-probe-shared-${z}`, `prober-${z}`])),
    );
    for (const p of pods) {
      assert.equal(p.metadata!.annotations!['failwatch.io/endpoints'], 'cluster,reader,proxy');
      // Default resources for a pod of three endpoints: 100m/192Mi/384Mi plus two more endpoints.
      assert.deepEqual(JSON.parse(JSON.stringify(p.spec!.containers[0]!.resources)), {
        requests: { cpu: '200m', memory: '256Mi' },
        limits: { memory: '512Mi' },
      });
    }
    // One process serves every endpoint's series on its metrics port, each with its endpoint
    // and zone labels, and its API refuses a caller without the run token per endpoint.
    for (const p of pods) {
      const zone = p.metadata!.labels!['failwatch.io/zone']!;
      await waitFor(`ok attempts of the three endpoints in ${zone}`, async () => {
        const text = await (await fetch(`http://${p.status!.podIP}:9091/metrics`)).text();
        const ok = endpoints.map((endpoint) => {
          const kind = endpoint === 'reader' ? 'read' : 'write';
          const m = new RegExp(
            `failwatch_probe_attempts_total\\{[^}]*endpoint="${endpoint}",zone="${zone}",kind="${kind}",class="ok"\\} (\\d+)`,
          ).exec(text);
          return Number(m?.[1] ?? 0);
        });
        return ok.every((n) => n > 0) ? ok : undefined;
      });
      const refused = await fetch(`http://${p.status!.podIP}:9090/endpoints/cluster/status`);
      assert.equal(refused.status, 401);
    }

    const done = await waitFor(
      `${name} to finish`,
      experiments.phaseIs(name, ['Completed', 'Failed']),
      300_000,
    );
    assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
    assert.equal(
      lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length,
      failoversBefore + 1,
      'one failover for all zones and endpoints',
    );
    const truth = lab.state().groundTruth.filter((s) => s.failover === failoversBefore + 1);
    const at = (step: string) => truth.find((s) => s.step === step)!.atMs;
    const t0 = Date.parse(done.status.triggerTime);
    const lanes = Object.fromEntries(done.status.endpoints.map((e: Doc) => [e.name, e]));
    assert.deepEqual(
      Object.keys(lanes).sort(),
      endpoints.flatMap((e) => zones.map((z) => `${e}@${z}`)).sort(),
    );
    const cm = await core.readNamespacedConfigMap({ name: `${name}-results`, namespace: NS });
    const results = JSON.parse(cm.data!['results.json']!) as Results;
    assertWarmUpBeforeBaseline(results);
    for (const zone of zones) {
      const cluster = lanes[`cluster@${zone}`];
      const w = cluster.windows.find((x: Doc) => x.kind === 'write');
      console.log(
        `shared pod in ${zone}: cluster write downtime ${cluster.writeDowntimeSeconds} s (window ${w.startSeconds}..${w.endSeconds} s), proxy ${lanes[`proxy@${zone}`].writeDowntimeSeconds} s, reader read ${lanes[`reader@${zone}`].readDowntimeSeconds} s; truth: writer stopped ${(at('old-writer-stopped') - t0) / 1000} s, DNS moved ${(at('cluster-endpoint-updated') - t0) / 1000} s`,
      );
      assertEdgeBetween(
        t0 + w.startSeconds * 1000,
        at('proxy-paused'),
        at('old-writer-stopped'),
        100,
        `${zone}: the window opens when the writer goes away`,
      );
      assertEdge(
        t0 + w.endSeconds * 1000,
        at('cluster-endpoint-updated'),
        100,
        `${zone}: DNS names the new writer`,
      );
      // Every lane's writes were read back through its own endpoint's API in the shared pod.
      for (const endpoint of ['cluster', 'proxy']) assert.equal(lanes[`${endpoint}@${zone}`].lostWrites, 0);
      for (const endpoint of endpoints) {
        const e = results.endpoints.find((x) => x.name === `${endpoint}@${zone}`)!;
        const kind = endpoint === 'reader' ? e.read : e.write;
        assert.ok(
          kind && kind.attempts > 20 && kind.okAttempts > 10,
          `${e.name}: ${JSON.stringify(kind?.attempts)}`,
        );
        assert.equal(e.zone, zone);
        const endCovered = e.coverage?.lanes.every((l) => l.endCovered) ?? false;
        // The operator log is read only when the check fails.
        assert.ok(
          endCovered,
          endCovered
            ? ''
            : `${e.name}: samples up to observation end (${JSON.stringify(e.coverage)})${logTails({ operator: LOG })}`,
        );
      }
    }
    await waitFor('the lab to be idle', labIdle(lab));
  });

  it('leaves a prober for a zone without nodes Pending, with the reason in the run', async () => {
    const doc = parse(labManifest(lab, undefined, 'lab-kubernetes-zones.yaml')) as Doc;
    doc.metadata.name = 'lab-zones-nowhere';
    doc.spec.trigger = { type: 'none' };
    doc.spec.endpoints = [doc.spec.endpoints[1]];
    doc.spec.endpoints[0].probers.zones = ['us-east-1z'];
    await experiments.create(doc);
    const pod = await waitFor('the prober to be marked unschedulable', async () => {
      const list = await core.listNamespacedPod({
        namespace: NS,
        labelSelector: 'failwatch.io/experiment=lab-zones-nowhere',
      });
      const p = list.items[0];
      return p?.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable')
        ? p
        : undefined;
    });
    assert.equal(pod.spec?.nodeName, undefined);
    const message = pod.status!.conditions!.find((c) => c.type === 'PodScheduled')!.message!;
    // general-1 lacks the label; decoy and the three prober nodes are in other zones (or lack it).
    assert.match(
      message,
      /^0\/5 nodes are available: 5 node\(s\) didn't match Pod's node affinity\/selector\.$/,
    );
    await experiments.delete('lab-zones-nowhere');
  });
});
