// The CRD's rules as a real kube-apiserver applies them (CEL), reported at the field:
// credentials.iam (exactly one way to log in, IAM only with TLS) and client (the AWS Advanced
// NodeJS Wrapper stack: Aurora PostgreSQL, pooled, no IAM, 100 ms or slower, safe plugins only).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';

let cp: ControlPlane;

function experiment(endpoint: Record<string, unknown>) {
  return {
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverExperiment',
    metadata: { name: 'iam', namespace: 'default' },
    spec: {
      trigger: { type: 'none' },
      endpoints: [
        { name: 'cluster', dialect: 'aurora-mysql', host: 'db.example', database: 'app', ...endpoint },
      ],
    },
  };
}

const apply = (doc: unknown) => cp.kubectl(['apply', '--dry-run=server', '-f', '-'], stringify(doc));

before(async () => {
  cp = await startControlPlane({ nodeAgent: false });
  const r = cp.kubectl(['apply', '-f', 'crds/']);
  assert.equal(r.code, 0, r.out);
  cp.kubectl([
    'wait',
    '--for=condition=Established',
    'crd/failoverexperiments.failwatch.io',
    '--timeout=30s',
  ]);
  // The first requests after Established may still miss the new type.
  for (let i = 0; i < 50 && apply(experiment({ credentials: { username: 'u' } })).code !== 0; i++)
    await sleep(200);
});

after(async () => {
  await cp?.stop();
});

describe('credentials.iam in the CRD', () => {
  it('accepts iam alone, with the default TLS mode and with verify-full', () => {
    const iam = { iam: { username: 'probe', region: 'eu-west-1', serviceAccountName: 'prober' } };
    for (const tls of [undefined, { mode: 'verify-full', caFile: '/ca.pem' }]) {
      const r = apply(experiment({ credentials: iam, ...(tls ? { tls } : {}) }));
      assert.equal(r.code, 0, r.out);
    }
  });

  it('rejects iam next to secretRef or username', () => {
    for (const extra of [{ secretRef: { name: 's' } }, { username: 'u' }]) {
      const r = apply(experiment({ credentials: { iam: { username: 'probe' }, ...extra } }));
      assert.notEqual(r.code, 0);
      assert.match(r.out, /spec\.endpoints\[0\]\.credentials: Invalid value: .*set exactly one of secretRef/);
    }
  });

  it('rejects iam with tls.mode disable, at spec.endpoints[0].tls.mode', () => {
    const r = apply(experiment({ credentials: { iam: { username: 'probe' } }, tls: { mode: 'disable' } }));
    assert.notEqual(r.code, 0);
    assert.match(r.out, /spec\.endpoints\[0\]\.tls\.mode: Invalid value: .*it needs TLS/);
  });
});

describe('client in the CRD', () => {
  const wrapper = (extra: Record<string, unknown> = {}, client: Record<string, unknown> = {}) =>
    experiment({
      dialect: 'aurora-postgresql',
      connectionMode: 'pooled',
      credentials: { username: 'u' },
      ...extra,
      client: { stack: 'aws-advanced-nodejs-wrapper', ...client },
    });

  it('accepts the wrapper on an Aurora PostgreSQL pooled endpoint, with plugins and an instance pattern', () => {
    const r = apply(
      wrapper(
        {},
        {
          plugins: ['failover2', 'efm2'],
          clusterInstanceHostPattern: '?.abc.us-east-1.rds.amazonaws.com',
          failoverTimeout: '45s',
        },
      ),
    );
    assert.equal(r.code, 0, r.out);
  });

  it('refuses each misuse at its field', () => {
    const cases: [unknown, RegExp][] = [
      [
        wrapper({ connectionMode: 'fresh' }),
        /spec\.endpoints\[0\]\.connectionMode: Invalid value: .*set connectionMode: pooled/,
      ],
      [
        wrapper({ dialect: 'postgresql' }),
        /spec\.endpoints\[0\]\.client\.stack: Invalid value: .*aurora-postgresql or aurora-mysql/,
      ],
      [wrapper({ interval: '10ms' }), /spec\.endpoints\[0\]\.interval: Invalid value: .*100ms or slower/],
      [
        wrapper({ credentials: { iam: { username: 'probe' } } }),
        /spec\.endpoints\[0\]\.credentials\.iam: Invalid value: .*use a password Secret/,
      ],
      [
        experiment({ credentials: { username: 'u' }, client: { plugins: ['failover2'] } }),
        /spec\.endpoints\[0\]\.client: Invalid value: .*configure the wrapper/,
      ],
      [
        wrapper({}, { plugins: ['iam'] }),
        /spec\.endpoints\[0\]\.client\.plugins\[0\]: Unsupported value: "iam"/,
      ],
      [
        wrapper({}, { clusterInstanceHostPattern: 'evil.example' }),
        /spec\.endpoints\[0\]\.client\.clusterInstanceHostPattern: Invalid value/,
      ],
    ];
    for (const [doc, message] of cases) {
      const r = apply(doc);
      assert.notEqual(r.code, 0, JSON.stringify(doc));
      assert.match(r.out, message);
    }
  });
});
