// spec.probers and endpoints[].probers: the lanes (one per endpoint, or per endpoint and zone),
// the prober pod's placement and resources, the pod's zone reaching `failwatch probe`, and the
// validation errors a user sees.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probeLanes } from '../../src/api/probe-lanes.ts';
import { validateExperimentSpec } from '../../src/api/validate-experiment.ts';
import { laneOfPod, lanePodName, proberPod, unscheduledHint } from '../../src/controller/prober-pods.ts';
import { parseProbePodEnv } from '../../src/server/probe-pod-env.ts';

const endpoint = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  role: 'cluster',
  dialect: 'aurora-postgresql',
  host: 'db.example',
  database: 'app',
  credentials: { secretRef: { name: 'pg-probe' } },
  ...extra,
});

function spec(probers: unknown, endpoints = [endpoint('cluster'), endpoint('proxy')]) {
  return validateExperimentSpec({ trigger: { type: 'none' }, probers, endpoints }, 'spec');
}

const exp = { namespace: 'payments', name: 'gameday', uid: 'u1', runId: 'r1' };
const TOKEN = { name: 'gameday-run-token', key: 'token' };

test('without zones there is one lane per endpoint, named as the endpoint', () => {
  const r = spec(undefined);
  assert.ok(r.ok);
  assert.deepEqual(
    probeLanes(r.value).map((l) => [l.name, l.zone]),
    [
      ['cluster', undefined],
      ['proxy', undefined],
    ],
  );
  const pod = proberPod(exp, probeLanes(r.value)[0]!, 'img', TOKEN);
  assert.equal(pod.metadata!.name, 'gameday-probe-cluster');
  assert.equal(pod.spec!.nodeSelector, undefined);
  assert.deepEqual(pod.spec!.containers[0]!.resources, {
    requests: { cpu: '100m', memory: '192Mi' },
    limits: { memory: '384Mi' },
  });
  assert.ok(!pod.spec!.containers[0]!.env!.some((e) => e.name === 'FAILWATCH_ZONE'));
  assert.equal(laneOfPod(pod), 'cluster');
});

test('zones: one lane per endpoint and zone; an endpoint override replaces fields one by one', () => {
  const r = spec(
    {
      zones: ['us-east-1a', 'us-east-1c'],
      nodeSelector: { pool: 'probers' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'probers', effect: 'NoSchedule' }],
      priorityClassName: 'failwatch-probers',
      resources: { requests: { cpu: '20m', memory: '48Mi' } },
    },
    [
      endpoint('cluster'),
      endpoint('proxy', { probers: { zones: ['us-east-1b'], nodeSelector: { pool: 'edge' } } }),
    ],
  );
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  const lanes = probeLanes(r.value);
  assert.deepEqual(
    lanes.map((l) => l.name),
    ['cluster@us-east-1a', 'cluster@us-east-1c', 'proxy@us-east-1b'],
  );
  const [a, , proxy] = lanes.map((l) => proberPod(exp, l, 'img', TOKEN));
  assert.equal(a!.metadata!.name, 'gameday-probe-cluster-us-east-1a');
  assert.deepEqual(a!.metadata!.labels!['failwatch.io/zone'], 'us-east-1a');
  assert.deepEqual(a!.spec!.nodeSelector, { pool: 'probers', 'topology.kubernetes.io/zone': 'us-east-1a' });
  assert.deepEqual(a!.spec!.tolerations, [
    { key: 'dedicated', operator: 'Equal', value: 'probers', effect: 'NoSchedule' },
  ]);
  assert.equal(a!.spec!.priorityClassName, 'failwatch-probers');
  // requests replaced as a whole; limits keep the default.
  assert.deepEqual(a!.spec!.containers[0]!.resources, {
    requests: { cpu: '20m', memory: '48Mi' },
    limits: { memory: '384Mi' },
  });
  assert.deepEqual(proxy!.spec!.nodeSelector, { pool: 'edge', 'topology.kubernetes.io/zone': 'us-east-1b' });
  assert.equal(proxy!.spec!.priorityClassName, 'failwatch-probers', 'not overridden: from spec.probers');
  assert.equal(laneOfPod(proxy!), 'proxy@us-east-1b');

  // What `failwatch probe` makes of the pod's environment: the endpoint as in the spec, the zone.
  const env = Object.fromEntries(
    a!.spec!.containers[0]!.env!.map((e) => [e.name, e.value ?? 'from-secret-0123456789abcdef']),
  );
  const config = parseProbePodEnv(env);
  assert.equal(config.endpoint.name, 'cluster');
  assert.equal(config.zone, 'us-east-1a');
  assert.equal(
    (config.endpoint as { probers?: unknown }).probers,
    undefined,
    'placement stays out of the pod',
  );
  assert.throws(
    () => parseProbePodEnv({ ...env, FAILWATCH_ZONE: 'us east' }),
    /FAILWATCH_ZONE must be a zone/,
  );
});

test('zone names that are not pod-name material get a lowercase name and a hash', () => {
  const lane = { endpoint: { name: 'cluster' } as never, zone: 'Zone_A.1' };
  const name = lanePodName('gameday', lane);
  assert.match(name, /^gameday-probe-cluster-zone-a-1-[0-9a-f]{4}$/);
  assert.notEqual(name, lanePodName('gameday', { ...lane, zone: 'zone-a-1' }));
  assert.equal(lanePodName('gameday', lane, '-r2'), `${name}-r2`);
});

test('bad placement is refused with a message per field', () => {
  const messages = (probers: unknown) => {
    const r = spec(probers);
    assert.ok(!r.ok, JSON.stringify(probers));
    return r.errors.map((e) => `${e.path}: ${e.message}`).join('\n');
  };
  assert.match(
    messages({ zones: ['us-east-1a'], nodeSelector: { 'topology.kubernetes.io/zone': 'us-east-1b' } }),
    /spec\.probers\.nodeSelector: zones sets nodeSelector topology\.kubernetes\.io\/zone per prober/,
  );
  assert.match(messages({ zones: ['us east'] }), /spec\.probers\.zones\[0\]: must be a label value/);
  assert.match(messages({ zones: [] }), /spec\.probers\.zones/);
  assert.match(messages({ zones: ['a', 'a'] }), /spec\.probers\.zones/);
  assert.match(
    messages({ resources: { requests: { cpu: 'lots' } } }),
    /spec\.probers\.resources\.requests\.cpu: must be a Kubernetes quantity/,
  );
  assert.match(
    messages({ tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] }),
    /tolerations\[0\]\.value: a toleration with operator Exists takes no value/,
  );
  assert.match(
    messages({ tolerations: [{ value: 'v' }] }),
    /tolerations\[0\]\.key: a toleration without key/,
  );
  assert.match(
    messages({ priorityClassName: 'Not_A_Name' }),
    /priorityClassName: must be a Kubernetes object name/,
  );
  assert.match(messages({ nodeselector: {} }), /nodeselector/);
});

test('the ProbersNotReady hint names pods without a node and the scheduler message', () => {
  const hint = unscheduledHint([
    { metadata: { name: 'a' }, spec: { nodeName: 'n1', containers: [] } },
    {
      metadata: { name: 'b' },
      spec: { containers: [] },
      status: {
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
          },
        ],
      },
    },
  ]);
  assert.equal(
    hint,
    "; not scheduled: b (0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.)",
  );
  assert.equal(unscheduledHint([]), '');
});
