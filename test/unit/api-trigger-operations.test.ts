// spec.trigger for the operations beyond failover: reboot-db-instance and
// modify-db-instance-class, with every bad combination reported at its field path, and the
// same rules written as CEL in the generated CRD.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { operationReasonName, triggerOperation, triggerVerb } from '../../src/api/spec-accessors.ts';
import { validateExperimentManifest } from '../../src/api/validate-experiment.ts';

type Doc = any;

function manifest(trigger: Record<string, unknown>, target?: Record<string, unknown>): Doc {
  return {
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverExperiment',
    metadata: { name: 'lab-reboot' },
    spec: {
      target: target ?? { kind: 'aurora-cluster', clusterIdentifier: 'lab-pg' },
      trigger: { type: 'aws-rds', ...trigger },
      endpoints: [
        {
          name: 'cluster',
          dialect: 'aurora-postgresql',
          host: 'cluster.lab.failwatch.local',
          database: 'app',
          role: 'cluster',
          credentials: { username: 'probe', passwordEnv: 'PGPASSWORD' },
        },
      ],
    },
  };
}

function errors(doc: Doc): string[] {
  const r = validateExperimentManifest(doc);
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

describe('spec.trigger: reboot-db-instance and modify-db-instance-class', () => {
  it('accepts a reboot of the writer (no instance named) and of a named member', () => {
    assert.deepEqual(errors(manifest({ action: 'reboot-db-instance' })), []);
    assert.deepEqual(errors(manifest({ action: 'reboot-db-instance', instanceIdentifier: 'lab-pg-2' })), []);
  });

  it('accepts both on an rds-instance target', () => {
    const target = { kind: 'rds-instance', instanceIdentifier: 'db-1' };
    assert.deepEqual(errors(manifest({ action: 'reboot-db-instance' }, target)), []);
    assert.deepEqual(
      errors(manifest({ action: 'modify-db-instance-class', instanceClass: 'db.m7g.2xlarge' }, target)),
      [],
    );
  });

  it('accepts a class change with a class such as db.r6g.xlarge or db.serverless', () => {
    for (const instanceClass of ['db.r6g.xlarge', 'db.t4g.medium', 'db.serverless', 'db.x2iedn.24xlarge'])
      assert.deepEqual(
        errors(manifest({ action: 'modify-db-instance-class', instanceClass })),
        [],
        instanceClass,
      );
  });

  it('modify-db-instance-class without instanceClass: required, at spec.trigger.instanceClass', () => {
    assert.deepEqual(errors(manifest({ action: 'modify-db-instance-class' })), [
      'spec.trigger.instanceClass: instanceClass is required when action is modify-db-instance-class, e.g. db.r6g.xlarge',
    ]);
  });

  it('a malformed class names the field and the expected shape', () => {
    assert.deepEqual(errors(manifest({ action: 'modify-db-instance-class', instanceClass: 'r6g.large' })), [
      'spec.trigger.instanceClass: must be an RDS DB instance class, e.g. db.r6g.large, db.t4g.medium or db.serverless (got `r6g.large`)',
    ]);
  });

  it('instanceClass with another action, instanceIdentifier with a failover: refused at their paths', () => {
    assert.deepEqual(errors(manifest({ action: 'reboot-db-instance', instanceClass: 'db.r6g.large' })), [
      'spec.trigger.instanceClass: instanceClass applies only to action modify-db-instance-class',
    ]);
    assert.deepEqual(errors(manifest({ action: 'failover-db-cluster', instanceIdentifier: 'lab-pg-1' })), [
      'spec.trigger.instanceIdentifier: instanceIdentifier applies only to actions reboot-db-instance and modify-db-instance-class',
    ]);
    assert.deepEqual(
      errors(manifest({ action: 'reboot-db-instance', targetInstanceIdentifier: 'lab-pg-2' })),
      [
        'spec.trigger.targetInstanceIdentifier: targetInstanceIdentifier applies only to action failover-db-cluster',
      ],
    );
  });

  it('trigger.instanceIdentifier on an rds-instance target: the instance is the target', () => {
    assert.deepEqual(
      errors(
        manifest(
          { action: 'reboot-db-instance', instanceIdentifier: 'db-2' },
          { kind: 'rds-instance', instanceIdentifier: 'db-1' },
        ),
      ),
      [
        'spec.trigger.instanceIdentifier: trigger.instanceIdentifier picks a member of an aurora-cluster target; an rds-instance target names its instance in target.instanceIdentifier',
      ],
    );
  });

  it('the failover actions still must match the target kind', () => {
    const target = { kind: 'rds-instance', instanceIdentifier: 'db-1' };
    const [e] = errors(manifest({ action: 'failover-db-cluster' }, target));
    assert.match(e ?? '', /^spec\.trigger\.action: trigger\.action must match target\.kind/);
  });

  it('a multi-az-db-cluster target: failover-db-cluster with a clusterIdentifier, nothing else', () => {
    const target = { kind: 'multi-az-db-cluster', clusterIdentifier: 'orders-maz' };
    assert.deepEqual(errors(manifest({ action: 'failover-db-cluster' }, target)), []);
    assert.deepEqual(errors(manifest({}, target)), [], 'the default action fails the cluster over');
    assert.deepEqual(errors(manifest({ action: 'failover-db-cluster' }, { kind: 'multi-az-db-cluster' })), [
      'spec.target.clusterIdentifier: clusterIdentifier is required when kind is aurora-cluster or multi-az-db-cluster',
    ]);
    for (const trigger of [
      { action: 'reboot-db-instance' },
      { action: 'modify-db-instance-class', instanceClass: 'db.m6gd.xlarge' },
    ])
      assert.deepEqual(errors(manifest(trigger, target)), [
        'spec.trigger.action: a multi-az-db-cluster target takes trigger.action failover-db-cluster: RDS reboots and resizes the members of a Multi-AZ DB cluster through the cluster (RebootDBCluster, ModifyDBCluster), which failwatch does not call, and failwatch switches over Blue/Green deployments of Aurora clusters and RDS instances only',
      ]);
    const [e] = errors(manifest({ action: 'reboot-db-instance-force-failover' }, target));
    assert.match(
      e ?? '',
      /^spec\.trigger\.action: trigger\.action must match target\.kind: failover-db-cluster for aurora-cluster and multi-az-db-cluster/,
    );
  });

  it('names the operation for the engine and progress messages', () => {
    const spec = (trigger: Record<string, unknown>) => {
      const r = validateExperimentManifest(manifest(trigger));
      assert.ok(r.ok);
      return r.value.spec;
    };
    assert.equal(triggerOperation(spec({ action: 'reboot-db-instance' })), 'instance-restart');
    assert.equal(
      triggerOperation(spec({ action: 'modify-db-instance-class', instanceClass: 'db.r6g.xlarge' })),
      'instance-restart',
    );
    assert.equal(triggerOperation(spec({ action: 'failover-db-cluster' })), 'failover');
    assert.equal(triggerVerb(spec({ action: 'reboot-db-instance' })), 'rebooting');
    assert.equal(
      triggerVerb(spec({ action: 'modify-db-instance-class', instanceClass: 'db.r6g.xlarge' })),
      'changing to db.r6g.xlarge the class of',
    );
  });

  it('the CRD carries the same rules as CEL, with the same field paths and messages', () => {
    const crd = readFileSync(
      new URL('../../crds/failwatch.io_failoverexperiments.yaml', import.meta.url),
      'utf8',
    );
    for (const action of ['reboot-db-instance', 'modify-db-instance-class'])
      assert.match(crd, new RegExp(`- ${action}\\n`), `enum has ${action}`);
    for (const text of [
      "self.action != 'modify-db-instance-class' || has(self.instanceClass)",
      'fieldPath: .instanceClass',
      'message: instanceClass is required when action is modify-db-instance-class, e.g. db.r6g.xlarge',
      'fieldPath: .instanceIdentifier',
      'fieldPath: .trigger.instanceIdentifier',
      "self.trigger.action in ['reboot-db-instance', 'modify-db-instance-class', 'switchover-blue-green-deployment']",
      "self.target.kind != 'multi-az-db-cluster' || !has(self.trigger.action) || self.trigger.action == 'failover-db-cluster'",
      '- multi-az-db-cluster\n',
    ])
      assert.ok(crd.includes(text), `CRD has ${text}`);
  });
});

describe('spec.trigger: switchover-blue-green-deployment', () => {
  const bg = {
    action: 'switchover-blue-green-deployment',
    blueGreenDeploymentIdentifier: 'bgd-wi89nwzglccsfake',
  };

  it('accepts a switchover of an Aurora cluster or an RDS instance, with or without a timeout', () => {
    assert.deepEqual(errors(manifest(bg)), []);
    assert.deepEqual(errors(manifest({ ...bg, switchoverTimeout: '2m' })), []);
    assert.deepEqual(errors(manifest(bg, { kind: 'rds-instance', instanceIdentifier: 'db-1' })), []);
  });

  it('refuses what does not belong, at the field path', () => {
    assert.deepEqual(errors(manifest({ action: 'switchover-blue-green-deployment' })), [
      'spec.trigger.blueGreenDeploymentIdentifier: blueGreenDeploymentIdentifier is required when action is switchover-blue-green-deployment, e.g. bgd-wi89nwzglccsfake',
    ]);
    assert.deepEqual(
      errors(manifest({ action: 'failover-db-cluster', blueGreenDeploymentIdentifier: 'bgd-x' })),
      [
        'spec.trigger.blueGreenDeploymentIdentifier: blueGreenDeploymentIdentifier applies only to action switchover-blue-green-deployment',
      ],
    );
    assert.deepEqual(errors(manifest({ action: 'failover-db-cluster', switchoverTimeout: '60s' })), [
      'spec.trigger.switchoverTimeout: switchoverTimeout applies only to action switchover-blue-green-deployment',
    ]);
    const [short] = errors(manifest({ ...bg, switchoverTimeout: '10s' }));
    assert.match(short ?? '', /^spec\.trigger\.switchoverTimeout: must be at least 30s/);
    const [badId] = errors(manifest({ ...bg, blueGreenDeploymentIdentifier: 'bgd x' }));
    assert.match(badId ?? '', /^spec\.trigger\.blueGreenDeploymentIdentifier: /);
    const [multiAz] = errors(manifest(bg, { kind: 'multi-az-db-cluster', clusterIdentifier: 'm' }));
    assert.match(multiAz ?? '', /Blue\/Green deployments of Aurora clusters and RDS instances only/);
  });

  it('names the operation: switchover, Switchover reasons, "switching over"', () => {
    const r = validateExperimentManifest(manifest(bg));
    assert.ok(r.ok);
    assert.equal(triggerOperation(r.value.spec), 'switchover');
    assert.equal(triggerVerb(r.value.spec), 'switching over');
    assert.equal(operationReasonName('switchover-blue-green-deployment'), 'Switchover');
  });

  it('the CRD carries the rules as CEL', () => {
    const crd = readFileSync(
      new URL('../../crds/failwatch.io_failoverexperiments.yaml', import.meta.url),
      'utf8',
    );
    assert.match(crd, /- switchover-blue-green-deployment\n/);
    for (const text of [
      "self.action != 'switchover-blue-green-deployment' || has(self.blueGreenDeploymentIdentifier)",
      'fieldPath: .blueGreenDeploymentIdentifier',
      'fieldPath: .switchoverTimeout',
    ])
      assert.ok(crd.includes(text), text);
  });
});

describe('spec.trigger: switchover-global-cluster and failover-global-cluster', () => {
  const west = 'arn:aws:rds:us-west-2:123456789012:cluster:orders-west';
  const g = { globalClusterIdentifier: 'orders-global', targetDbClusterIdentifier: west };

  it('accepts both on an Aurora cluster target; allowDataLoss with failover-global-cluster', () => {
    assert.deepEqual(errors(manifest({ action: 'switchover-global-cluster', ...g })), []);
    assert.deepEqual(errors(manifest({ action: 'failover-global-cluster', ...g, allowDataLoss: true })), []);
  });

  it('refuses what does not belong, at the field path', () => {
    assert.deepEqual(errors(manifest({ action: 'switchover-global-cluster' })), [
      'spec.trigger.globalClusterIdentifier: globalClusterIdentifier and targetDbClusterIdentifier (the ARN of the secondary cluster to promote) are required when action is switchover-global-cluster or failover-global-cluster',
    ]);
    assert.deepEqual(errors(manifest({ action: 'failover-db-cluster', ...g })), [
      'spec.trigger.globalClusterIdentifier: globalClusterIdentifier and targetDbClusterIdentifier apply only to actions switchover-global-cluster and failover-global-cluster',
    ]);
    assert.deepEqual(errors(manifest({ action: 'switchover-global-cluster', ...g, allowDataLoss: true })), [
      'spec.trigger.allowDataLoss: allowDataLoss applies only to action failover-global-cluster',
    ]);
    const [notArn] = errors(
      manifest({ action: 'switchover-global-cluster', ...g, targetDbClusterIdentifier: 'orders-west' }),
    );
    assert.match(notArn ?? '', /^spec\.trigger\.targetDbClusterIdentifier: /);
    const [instance] = errors(
      manifest(
        { action: 'switchover-global-cluster', ...g },
        { kind: 'rds-instance', instanceIdentifier: 'db-1' },
      ),
    );
    assert.match(instance ?? '', /the Global Database actions need aurora-cluster/);
  });

  it('names the operation: global, GlobalSwitchover / GlobalFailover', () => {
    const r = validateExperimentManifest(
      manifest({ action: 'failover-global-cluster', ...g, allowDataLoss: true }),
    );
    assert.ok(r.ok);
    assert.equal(triggerOperation(r.value.spec), 'global');
    assert.equal(triggerVerb(r.value.spec), 'failing over (data loss allowed)');
    assert.equal(operationReasonName('switchover-global-cluster'), 'GlobalSwitchover');
    assert.equal(operationReasonName('failover-global-cluster'), 'GlobalFailover');
  });

  it('the CRD carries the rules as CEL', () => {
    const crd = readFileSync(
      new URL('../../crds/failwatch.io_failoverexperiments.yaml', import.meta.url),
      'utf8',
    );
    for (const text of [
      '- switchover-global-cluster\n',
      '- failover-global-cluster\n',
      'fieldPath: .globalClusterIdentifier',
      'fieldPath: .allowDataLoss',
    ])
      assert.ok(crd.includes(text), text);
  });
});
