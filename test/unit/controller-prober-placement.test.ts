// spec.probers and endpoints[].probers: the lanes (one per endpoint, or per endpoint and zone),
// the prober pod's placement and resources, the pod's zone reaching `failwatch probe`, and the
// validation errors a user sees.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probeLanes, proberGroups } from '../../src/api/probe-lanes.ts';
import { validateExperimentSpec } from '../../src/api/validate-experiment.ts';
import {
  groupPodName,
  lanePodName,
  lanesOfPod,
  proberPod,
  unscheduledHint,
} from '../../src/controller/prober-pods.ts';
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
  assert.deepEqual(lanesOfPod(pod), ['cluster']);
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
  assert.deepEqual(lanesOfPod(proxy!), ['proxy@us-east-1b']);

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

test('sharing Zone: one pod per zone and placement probes its endpoints, each with its own Secret and CA', () => {
  const r = spec({ zones: ['us-east-1a', 'us-east-1b'], sharing: 'Zone' }, [
    endpoint('cluster'),
    endpoint('reader', {
      role: 'reader',
      probes: ['read'],
      credentials: { secretRef: { name: 'reader-probe' } },
      tls: { mode: 'verify-full', caSecretRef: { name: 'rds-ca' } },
    }),
    endpoint('proxy', { probers: { nodeSelector: { pool: 'edge' } } }),
  ]);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  const groups = proberGroups(r.value);
  assert.deepEqual(
    groups.map((g) => [g.podKey, g.zone, g.lanes.map((l) => l.name)]),
    [
      ['shared', 'us-east-1a', ['cluster@us-east-1a', 'reader@us-east-1a']],
      ['shared', 'us-east-1b', ['cluster@us-east-1b', 'reader@us-east-1b']],
      ['shared1', 'us-east-1a', ['proxy@us-east-1a']],
      ['shared1', 'us-east-1b', ['proxy@us-east-1b']],
    ],
  );
  const pod = proberPod(exp, groups[0]!, 'img', TOKEN);
  assert.equal(pod.metadata!.name, 'gameday-probe-shared-us-east-1a');
  assert.equal(groupPodName('gameday', groups[2]!, '-r1'), 'gameday-probe-shared1-us-east-1a-r1');
  assert.deepEqual(lanesOfPod(pod), ['cluster@us-east-1a', 'reader@us-east-1a']);
  assert.equal(pod.metadata!.labels!['failwatch.io/endpoint'], undefined, 'no single endpoint label');
  // Defaults grow with the endpoints of the pod: one more endpoint, +32Mi/+50m requested, +64Mi limit.
  assert.deepEqual(pod.spec!.containers[0]!.resources, {
    requests: { cpu: '150m', memory: '224Mi' },
    limits: { memory: '448Mi' },
  });
  const env = pod.spec!.containers[0]!.env!;
  assert.equal(
    env.find((e) => e.name === 'NODE_OPTIONS')?.value,
    '--max-old-space-size=112 --max-semi-space-size=4',
  );
  assert.deepEqual(
    env
      .filter((e) => e.name.startsWith('FAILWATCH_DB_'))
      .map((e) => [e.name, e.valueFrom?.secretKeyRef?.name]),
    [
      ['FAILWATCH_DB_USERNAME', 'pg-probe'],
      ['FAILWATCH_DB_PASSWORD', 'pg-probe'],
      ['FAILWATCH_DB_USERNAME_1', 'reader-probe'],
      ['FAILWATCH_DB_PASSWORD_1', 'reader-probe'],
    ],
  );
  assert.deepEqual(
    pod.spec!.volumes!.map((v) => [v.name, v.secret?.secretName]),
    [['ca-bundle-1', 'rds-ca']],
  );
  assert.deepEqual(pod.spec!.containers[0]!.volumeMounts, [
    { name: 'ca-bundle-1', mountPath: '/etc/failwatch/ca/1', readOnly: true },
  ]);

  // What `failwatch probe` makes of it: two lanes, each with its own credentials and CA file.
  const secrets: Record<string, string> = {
    FAILWATCH_DB_USERNAME: 'probe',
    FAILWATCH_DB_PASSWORD: 'pw-cluster-0123',
    FAILWATCH_DB_USERNAME_1: 'reader',
    FAILWATCH_DB_PASSWORD_1: 'pw-reader-4567',
    FAILWATCH_API_TOKEN: 'from-secret-0123456789abcdef',
  };
  const config = parseProbePodEnv(
    Object.fromEntries(env.map((e) => [e.name, e.value ?? secrets[e.name] ?? '10.0.0.7'])),
  );
  assert.deepEqual(
    config.lanes.map((l) => [l.endpoint.name, l.credentials().user, l.credentials().password, l.caFile]),
    [
      ['cluster', 'probe', 'pw-cluster-0123', undefined],
      ['reader', 'reader', 'pw-reader-4567', '/etc/failwatch/ca/1/ca.crt'],
    ],
  );
  assert.equal(config.zone, 'us-east-1a');
  const envOf = Object.fromEntries(env.map((e) => [e.name, e.value ?? secrets[e.name] ?? '10.0.0.7']));
  assert.throws(
    () => parseProbePodEnv({ ...envOf, FAILWATCH_LANES: '3' }),
    /FAILWATCH_ENDPOINT_2 is required/,
  );
  assert.throws(
    () => parseProbePodEnv({ ...envOf, FAILWATCH_ENDPOINT_1: envOf.FAILWATCH_ENDPOINT! }),
    /endpoint cluster is given twice/,
  );
  assert.throws(
    () => parseProbePodEnv({ ...envOf, FAILWATCH_LANES: '0' }),
    /FAILWATCH_LANES must be an integer/,
  );

  // Without sharing (the default) every lane keeps its own pod, as before.
  const apart = spec({ zones: ['us-east-1a'] });
  assert.ok(apart.ok);
  assert.deepEqual(
    proberGroups(apart.value).map((g) => [g.podKey, g.lanes.length]),
    [
      ['cluster', 1],
      ['proxy', 1],
    ],
  );
  // sharing is spec.probers' alone: an endpoint cannot set it.
  const own = spec(undefined, [endpoint('cluster', { probers: { sharing: 'Zone' } })]);
  assert.ok(!own.ok);
  assert.match(own.errors.map((e) => `${e.path}: ${e.message}`).join('\n'), /probers.*sharing/);
  // A shared pod runs as one ServiceAccount: IAM endpoints must agree on it.
  const iam = (sa: string) => ({
    credentials: { iam: { username: 'probe', serviceAccountName: sa } },
    tls: { mode: 'require' },
  });
  const twoAccounts = spec({ sharing: 'Zone' }, [endpoint('cluster', iam('a')), endpoint('proxy', iam('b'))]);
  assert.ok(!twoAccounts.ok);
  assert.match(
    twoAccounts.errors.map((e) => `${e.path}: ${e.message}`).join('\n'),
    /spec\.probers\.sharing: .*same serviceAccountName/,
  );
  const oneAccount = spec({ sharing: 'Zone' }, [endpoint('cluster', iam('a')), endpoint('proxy')]);
  assert.ok(oneAccount.ok, JSON.stringify(!oneAccount.ok && oneAccount.errors));
  const shared = proberPod(exp, proberGroups(oneAccount.value)[0]!, 'img', TOKEN);
  assert.equal(shared.spec!.serviceAccountName, 'a');
  // An IAM endpoint without serviceAccountName signs as `default`: not the same account as 'a'.
  const implicit = spec({ sharing: 'Zone' }, [
    endpoint('cluster', iam('a')),
    endpoint('proxy', { credentials: { iam: { username: 'probe' } }, tls: { mode: 'require' } }),
  ]);
  assert.ok(!implicit.ok, 'the default ServiceAccount is another account');
  // The wrapper keeps topology per process: endpoints in one pod would share it.
  const wrapper = spec({ sharing: 'Zone' }, [
    endpoint('cluster', {
      connectionMode: 'pooled',
      client: { stack: 'aws-advanced-nodejs-wrapper' },
    }),
  ]);
  assert.ok(!wrapper.ok);
  assert.match(
    wrapper.errors.map((e) => `${e.path}: ${e.message}`).join('\n'),
    /spec\.probers\.sharing: .*Wrapper/,
  );
  // User limits: grown default requests never exceed them, nor does V8's old space a quarter of memory.
  const limited = spec({ sharing: 'Zone', resources: { limits: { memory: '512Mi', cpu: '500m' } } }, [
    ...Array.from({ length: 16 }, (_, i) => endpoint(`e${i}`)),
  ]);
  assert.ok(limited.ok, JSON.stringify(!limited.ok && limited.errors));
  const big = proberPod(exp, proberGroups(limited.value)[0]!, 'img', TOKEN);
  assert.deepEqual(big.spec!.containers[0]!.resources, {
    requests: { cpu: '500m', memory: '512Mi' },
    limits: { memory: '512Mi', cpu: '500m' },
  });
  const bigEnv = Object.fromEntries(big.spec!.containers[0]!.env!.map((e) => [e.name, e.value]));
  assert.equal(bigEnv.NODE_OPTIONS, '--max-old-space-size=128 --max-semi-space-size=4');
  assert.equal(bigEnv.UV_THREADPOOL_SIZE, '64', '4 libuv threads per endpoint for host lookups');
  // maxEndpointsPerPod: a zone with more endpoints gets several pods, in spec order.
  const capped = spec({ sharing: 'Zone', maxEndpointsPerPod: 2, zones: ['us-east-1a'] }, [
    endpoint('a'),
    endpoint('b'),
    endpoint('c'),
    endpoint('d'),
    endpoint('e'),
  ]);
  assert.ok(capped.ok, JSON.stringify(!capped.ok && capped.errors));
  assert.deepEqual(
    proberGroups(capped.value).map((g) => [groupPodName('gameday', g), g.lanes.map((l) => l.endpoint.name)]),
    [
      ['gameday-probe-shared-us-east-1a', ['a', 'b']],
      ['gameday-probe-shared-2-us-east-1a', ['c', 'd']],
      ['gameday-probe-shared-3-us-east-1a', ['e']],
    ],
  );
  const capWithoutSharing = spec({ maxEndpointsPerPod: 2 });
  assert.ok(!capWithoutSharing.ok);
  assert.match(
    capWithoutSharing.errors.map((e) => `${e.path}: ${e.message}`).join('\n'),
    /spec\.probers\.maxEndpointsPerPod: .*sharing Zone/,
  );
  const bad = spec({ sharing: 'Node' });
  assert.ok(!bad.ok);
  assert.match(bad.errors.map((e) => `${e.path}: ${e.message}`).join('\n'), /spec\.probers\.sharing/);
});
