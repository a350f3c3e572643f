// The topology probe's names: instance host patterns derived from RDS endpoint names, instance
// addresses built from them, and the identifiers a database may hand it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateExperimentManifest } from '../../src/api/validate-experiment.ts';
import { derivedInstanceHostPattern, INSTANCE_ID, instanceAddress } from '../../src/probe/topology-probe.ts';

describe('topology probe names', () => {
  it('derives the instance pattern from cluster, reader, custom and proxy endpoint names', () => {
    for (const host of [
      'orders.cluster-c123abcd.ap-northeast-1.rds.amazonaws.com',
      'orders.cluster-ro-c123abcd.ap-northeast-1.rds.amazonaws.com',
      'hot.cluster-custom-c123abcd.ap-northeast-1.rds.amazonaws.com',
      'orders-proxy.proxy-c123abcd.ap-northeast-1.rds.amazonaws.com.',
    ])
      assert.equal(derivedInstanceHostPattern(host), '?.c123abcd.ap-northeast-1.rds.amazonaws.com', host);
    for (const host of ['db.example.com', 'orders.cluster-abc.', '10.0.0.1', 'localhost'])
      assert.equal(derivedInstanceHostPattern(host), undefined, host);
  });

  it('builds instance addresses, with the pattern port or the endpoint one', () => {
    assert.deepEqual(instanceAddress('?.abc.rds.amazonaws.com', 'db-1', 5432), {
      host: 'db-1.abc.rds.amazonaws.com',
      port: 5432,
    });
    assert.deepEqual(instanceAddress('?.lab.local:6543', 'lab-pg-2', 5432), {
      host: 'lab-pg-2.lab.local',
      port: 6543,
    });
    // Replacement patterns in an identifier are text, not patterns.
    assert.equal(instanceAddress('?.x.y', "$'", 1).host, "$'.x.y");
  });

  it('takes only RDS instance identifiers from the database', () => {
    for (const id of ['db-1', 'lab-pg-2', 'A', 'orders-prod-pg-instance-1'])
      assert.ok(INSTANCE_ID.test(id), id);
    for (const id of ['', '1db', 'evil.other-ns', '/tmp/sock', 'a:9999', 'a b', 'x'.repeat(64), "$'"])
      assert.ok(!INSTANCE_ID.test(id), id);
  });

  it('refuses a topology probe where it cannot work, at the field', () => {
    const manifest = (endpoint: Record<string, unknown>) => ({
      apiVersion: 'failwatch.io/v1alpha1',
      kind: 'FailoverExperiment',
      metadata: { name: 'x' },
      spec: {
        target: { kind: 'aurora-cluster', clusterIdentifier: 'c', region: 'us-east-1' },
        trigger: { type: 'aws-rds', action: 'failover-db-cluster' },
        endpoints: [
          {
            name: 'cluster',
            role: 'cluster',
            database: 'app',
            credentials: { username: 'u', passwordEnv: 'P' },
            probes: ['write', 'topology'],
            ...endpoint,
          },
        ],
      },
    });
    const errors = (endpoint: Record<string, unknown>) => {
      const r = validateExperimentManifest(manifest(endpoint));
      return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
    };
    const rds = 'orders.cluster-c123abcd.us-east-1.rds.amazonaws.com';
    assert.deepEqual(errors({ dialect: 'aurora-postgresql', host: rds }), []);
    assert.match(
      errors({ dialect: 'postgresql', host: rds }).join('\n'),
      /endpoints\[0\]\.probes: the topology probe reads an Aurora cluster/,
    );
    assert.match(
      errors({ dialect: 'aurora-mysql', host: 'db.example.com' }).join('\n'),
      /endpoints\[0\]\.topology\.instanceHostPattern: .*set topology\.instanceHostPattern/,
    );
    assert.deepEqual(
      errors({
        dialect: 'aurora-mysql',
        host: 'db.example.com',
        topology: { instanceHostPattern: '?.abc.example.com' },
      }),
      [],
    );
  });
});
