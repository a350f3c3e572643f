// The lab's RDS Query API driven by the real @aws-sdk/client-rds, against an in-memory lab.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  BlueGreenDeploymentNotFoundFault,
  DBClusterNotFoundFault,
  DBInstanceNotFoundFault,
  DBProxyNotFoundFault,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBProxyTargetsCommand,
  DescribeDBSnapshotsCommand,
  DescribeEventsCommand,
  type DescribeEventsCommandInput,
  DescribeGlobalClustersCommand,
  FailoverDBClusterCommand,
  FailoverGlobalClusterCommand,
  GlobalClusterNotFoundFault,
  InvalidDBClusterStateFault,
  ModifyDBInstanceCommand,
  RDSClient,
  RDSServiceException,
  RebootDBInstanceCommand,
  SwitchoverBlueGreenDeploymentCommand,
} from '@aws-sdk/client-rds';
import { callOnce } from '../../src/engine/trigger-protocol.ts';
import type {
  LabBlueGreen,
  LabCluster,
  LabControl,
  LabEvent,
  LabGlobalCluster,
  LabInstance,
} from '../../src/lab/model.ts';
import { RdsFault } from '../../src/lab/model.ts';
import { startRdsApi } from '../../src/lab/rds-api.ts';
import { AwsRdsTrigger, type AwsRdsTriggerConfig, classifyRdsError } from '../../src/trigger/aws-rds.ts';
import { TriggerError } from '../../src/trigger/types.ts';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const MIN = 60_000;
const CREATED = '2024-05-01T12:00:00.123Z';
const ESCAPED = 'odd message <tag attr="v"> & \'quotes\'';

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A two-instance cluster with a proxy and a few events, failing over the way the lab does. */
class MemoryLab implements LabControl {
  region = REGION;
  accountId = ACCOUNT;
  cluster!: LabCluster;
  eventList: LabEvent[] = [];
  now = Date.now();
  /** Answer every request with this fault (the lab's throttling window). */
  fault: RdsFault | undefined;

  apiFault(): RdsFault | undefined {
    return this.fault;
  }

  constructor() {
    this.reset();
  }

  reset(): void {
    this.reboots = [];
    this.modifications = [];
    this.switchovers = [];
    this.globalCalls = [];
    this.global = {
      id: 'lab-pg-global',
      primaryClusterId: 'lab-pg',
      secondaryClusterIds: ['lab-pg-west'],
      status: 'available',
      endpoint: 'lab-pg-global.global-abc123.lab.failwatch.local',
      engine: 'aurora-postgresql',
      engineVersion: '15.4',
    };
    this.blueGreen = {
      id: 'bgd-labpg00000000000',
      name: 'lab-pg-upgrade',
      sourceClusterId: 'lab-pg',
      targetClusterId: 'lab-pg-green-abc123',
      status: 'AVAILABLE',
      createTime: CREATED,
    };
    const instance = (n: number, az: string): LabInstance => ({
      id: `lab-pg-${n}`,
      host: `127.0.10.1${n}`,
      port: 5432,
      dnsName: `lab-pg-${n}.abc123.lab.failwatch.local`,
      availabilityZone: az,
      status: 'available',
      instanceClass: 'db.r6g.large',
    });
    this.cluster = {
      id: 'lab-pg',
      engine: 'aurora-postgresql',
      kind: 'aurora',
      engineVersion: '15.4',
      status: 'available',
      endpoint: 'lab-pg.cluster-abc123.lab.failwatch.local',
      readerEndpoint: 'lab-pg.cluster-ro-abc123.lab.failwatch.local',
      port: 5432,
      instances: [instance(1, 'us-east-1a'), instance(2, 'us-east-1b')],
      writerId: 'lab-pg-1',
      proxy: {
        name: 'lab-pg-proxy',
        endpoint: 'lab-pg-proxy.proxy-abc123.lab.failwatch.local',
        host: '127.0.10.20',
        port: 6432,
        targetInstanceId: 'lab-pg-1',
        targetState: 'AVAILABLE',
      },
      masterUsername: 'postgres',
      databaseName: 'failwatch',
      clusterCreateTime: CREATED,
    };
    const at = (minutesAgo: number) => iso(this.now - minutesAgo * MIN);
    // Ages off the whole minute, so a window computed from a later `now` never cuts an event.
    this.eventList = [
      this.event(
        'db-cluster',
        'lab-pg',
        'Started cross AZ failover to DB instance: lab-pg-2',
        ['failover'],
        at(10.5),
      ),
      this.event(
        'db-instance',
        'lab-pg-1',
        'A new writer was promoted. Restarting database as a reader.',
        ['availability'],
        at(9.5),
      ),
      this.event(
        'db-cluster',
        'lab-pg',
        'Completed failover to DB instance: lab-pg-2',
        ['failover'],
        at(8.5),
      ),
      this.event('db-instance', 'lab-pg-2', ESCAPED, ['notification', 'configuration change'], at(7.5)),
      // Outside the default 60-minute window: an old failover and 25 maintenance events.
      this.event(
        'db-cluster',
        'lab-pg',
        'Completed failover to DB instance: lab-pg-1',
        ['failover'],
        at(120),
      ),
      ...Array.from({ length: 25 }, (_, k) =>
        this.event('db-instance', 'lab-pg-2', `maintenance ${k}`, ['maintenance'], at(200 - k)),
      ),
    ];
  }

  event(
    sourceType: LabEvent['sourceType'],
    sourceIdentifier: string,
    message: string,
    eventCategories: string[],
    date: string,
  ): LabEvent {
    const kind = sourceType === 'db-cluster' ? 'cluster' : 'db';
    const sourceArn = `arn:aws:rds:${REGION}:${ACCOUNT}:${kind}:${sourceIdentifier}`;
    return { sourceIdentifier, sourceType, message, eventCategories, date, sourceArn };
  }

  clusters(): LabCluster[] {
    return [this.cluster];
  }

  events(): LabEvent[] {
    return this.eventList;
  }

  failoverCluster(clusterId: string, targetInstanceId?: string): LabCluster {
    const c = this.cluster;
    if (clusterId !== c.id)
      throw new RdsFault('DBClusterNotFoundFault', `DBCluster ${clusterId} not found.`, 404);
    if (c.status !== 'available') {
      throw new RdsFault(
        'InvalidDBClusterStateFault',
        `DBCluster ${clusterId} is in ${c.status} state.`,
        400,
      );
    }
    if (targetInstanceId !== undefined && !c.instances.some((i) => i.id === targetInstanceId)) {
      throw new RdsFault('InvalidParameterValue', `${targetInstanceId} is not a member of ${clusterId}.`);
    }
    const target = targetInstanceId ?? c.instances.find((i) => i.id !== c.writerId)!.id;
    c.status = 'failing-over';
    c.writerId = target;
    if (c.proxy) c.proxy.targetState = 'UNAVAILABLE';
    return c;
  }

  /** Calls of rebootInstance, as the API passed them. */
  reboots: { instanceId: string; forceFailover: boolean }[] = [];

  rebootInstance(instanceId: string, forceFailover: boolean): LabInstance {
    this.reboots.push({ instanceId, forceFailover });
    const instance = this.cluster.instances.find((i) => i.id === instanceId);
    if (!instance) throw new RdsFault('DBInstanceNotFoundFault', `DBInstance ${instanceId} not found.`, 404);
    if (forceFailover && instanceId === this.cluster.writerId) this.failoverCluster(this.cluster.id);
    instance.status = 'rebooting';
    return instance;
  }

  global!: LabGlobalCluster;
  /** Calls of globalSwitchover, as the API passed them. */
  globalCalls: { id: string; target: string; allowDataLoss: boolean }[] = [];

  globalClusters(): LabGlobalCluster[] {
    return [this.global];
  }

  globalSwitchover(id: string, target: string, allowDataLoss: boolean): LabGlobalCluster {
    if (id !== this.global.id)
      throw new RdsFault('GlobalClusterNotFoundFault', `Global cluster ${id} not found.`, 404);
    if (!this.global.secondaryClusterIds.includes(target))
      throw new RdsFault('InvalidParameterValue', `${target} is not a secondary of ${id}.`);
    this.globalCalls.push({ id, target, allowDataLoss });
    this.global.status = allowDataLoss ? 'failing-over' : 'switching-over';
    this.global.failoverState = {
      status: this.global.status,
      fromClusterId: this.global.primaryClusterId,
      toClusterId: target,
      dataLossAllowed: allowDataLoss,
    };
    return this.global;
  }

  blueGreen!: LabBlueGreen;
  /** Calls of switchoverBlueGreen, as the API passed them. */
  switchovers: { id: string; timeoutSeconds: number }[] = [];

  blueGreenDeployments(): LabBlueGreen[] {
    return [this.blueGreen];
  }

  switchoverBlueGreen(id: string, timeoutSeconds: number): LabBlueGreen {
    if (id !== this.blueGreen.id)
      throw new RdsFault(
        'BlueGreenDeploymentNotFoundFault',
        `BlueGreenDeploymentIdentifier ${id} not found.`,
        404,
      );
    if (this.blueGreen.status !== 'AVAILABLE')
      throw new RdsFault('InvalidBlueGreenDeploymentStateFault', `${id} is ${this.blueGreen.status}.`);
    this.switchovers.push({ id, timeoutSeconds });
    this.blueGreen.status = 'SWITCHOVER_IN_PROGRESS';
    return this.blueGreen;
  }

  /** Calls of modifyInstanceClass, as the API passed them. */
  modifications: { instanceId: string; instanceClass: string; applyImmediately: boolean }[] = [];

  modifyInstanceClass(instanceId: string, instanceClass: string, applyImmediately: boolean): LabInstance {
    const instance = this.cluster.instances.find((i) => i.id === instanceId);
    if (!instance) throw new RdsFault('DBInstanceNotFoundFault', `DBInstance ${instanceId} not found.`, 404);
    if (instance.status !== 'available')
      throw new RdsFault('InvalidDBInstanceStateFault', `DBInstance ${instanceId} is ${instance.status}.`);
    this.modifications.push({ instanceId, instanceClass, applyImmediately });
    instance.pendingInstanceClass = instanceClass;
    if (applyImmediately) instance.status = 'modifying';
    return instance;
  }
}

const lab = new MemoryLab();
let server: { url: string; close(): Promise<void> };
let rds: RDSClient;

before(async () => {
  server = await startRdsApi(lab, { host: '127.0.0.1', port: 0 });
  rds = new RDSClient({
    endpoint: server.url,
    region: REGION,
    credentials: { accessKeyId: 'AKIDLAB', secretAccessKey: 'lab-secret' },
    maxAttempts: 1,
  });
});

after(async () => {
  rds.destroy();
  await server.close();
});

beforeEach(() => lab.reset());

/** Runs `call`, expects it to fail with an error of class `type`, and returns that error. */
async function rejects<T>(call: Promise<unknown>, type: abstract new (...args: never[]) => T): Promise<T> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${type.name}, but the call succeeded`);
}

/** The aws-rds trigger against the lab's RDS API, with the test's credentials. */
const trigger = (config: Omit<AwsRdsTriggerConfig, 'endpoint' | 'credentials' | 'region'>) =>
  new AwsRdsTrigger({
    ...config,
    endpoint: server.url,
    region: REGION,
    credentials: { accessKeyId: 'AKIDLAB', secretAccessKey: 'lab-secret' },
  });

/** The TriggerError preflight refuses with (the trigger is closed after). */
async function refusal(t: AwsRdsTrigger): Promise<TriggerError> {
  try {
    await t.preflight();
  } catch (err) {
    assert.ok(err instanceof TriggerError, String(err));
    return err;
  } finally {
    t.close();
  }
  assert.fail('preflight passed');
}

describe('DescribeDBClusters', () => {
  test('renders the cluster with its members', async () => {
    const out = await rds.send(new DescribeDBClustersCommand({}));
    assert.equal(out.DBClusters?.length, 1);
    const c = out.DBClusters![0]!;
    assert.equal(c.DBClusterIdentifier, 'lab-pg');
    assert.equal(c.DBClusterArn, `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:lab-pg`);
    assert.equal(c.Status, 'available');
    assert.equal(c.Engine, 'aurora-postgresql');
    assert.equal(c.EngineVersion, '15.4');
    assert.equal(c.Endpoint, 'lab-pg.cluster-abc123.lab.failwatch.local');
    assert.equal(c.ReaderEndpoint, 'lab-pg.cluster-ro-abc123.lab.failwatch.local');
    assert.equal(c.Port, 5432);
    assert.equal(c.MasterUsername, 'postgres');
    assert.equal(c.DatabaseName, 'failwatch');
    assert.ok(c.ClusterCreateTime instanceof Date);
    assert.equal(c.ClusterCreateTime.toISOString(), CREATED);
    assert.equal(c.MultiAZ, true);
    assert.deepEqual(c.AvailabilityZones, ['us-east-1a', 'us-east-1b']);
    assert.deepEqual(c.DBClusterMembers, [
      {
        DBInstanceIdentifier: 'lab-pg-1',
        IsClusterWriter: true,
        DBClusterParameterGroupStatus: 'in-sync',
        PromotionTier: 1,
      },
      {
        DBInstanceIdentifier: 'lab-pg-2',
        IsClusterWriter: false,
        DBClusterParameterGroupStatus: 'in-sync',
        PromotionTier: 1,
      },
    ]);
    assert.match(out.$metadata.requestId ?? '', /^[0-9a-f-]{36}$/);
  });

  test('by identifier or ARN; unknown is DBClusterNotFoundFault (404)', async () => {
    const byId = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'lab-pg' }));
    assert.equal(byId.DBClusters?.[0]?.DBClusterIdentifier, 'lab-pg');
    const arn = `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:lab-pg`;
    const byArn = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: arn }));
    assert.equal(byArn.DBClusters?.length, 1);
    const err = await rejects(
      rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'nope' })),
      DBClusterNotFoundFault,
    );
    assert.equal(err.name, 'DBClusterNotFoundFault');
    assert.equal(err.message, 'DBCluster nope not found.');
    assert.equal(err.$metadata.httpStatusCode, 404);
    assert.equal(err.$fault, 'client');
  });
});

describe('DescribeDBInstances', () => {
  test('renders every instance', async () => {
    const out = await rds.send(new DescribeDBInstancesCommand({}));
    assert.equal(out.DBInstances?.length, 2);
    const i = out.DBInstances![1]!;
    assert.equal(i.DBInstanceIdentifier, 'lab-pg-2');
    assert.equal(i.DBInstanceArn, `arn:aws:rds:${REGION}:${ACCOUNT}:db:lab-pg-2`);
    assert.equal(i.DBInstanceClass, 'db.r6g.large');
    assert.equal(i.Engine, 'aurora-postgresql');
    assert.equal(i.DBInstanceStatus, 'available');
    assert.deepEqual(i.Endpoint, { Address: 'lab-pg-2.abc123.lab.failwatch.local', Port: 5432 });
    assert.equal(i.AvailabilityZone, 'us-east-1b');
    assert.equal(i.DBClusterIdentifier, 'lab-pg');
    assert.equal(i.PubliclyAccessible, false);
  });

  test('by identifier and by db-cluster-id filter; unknown is DBInstanceNotFoundFault', async () => {
    const one = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'lab-pg-1' }));
    assert.deepEqual(
      one.DBInstances?.map((i) => i.DBInstanceIdentifier),
      ['lab-pg-1'],
    );
    const filtered = await rds.send(
      new DescribeDBInstancesCommand({ Filters: [{ Name: 'db-cluster-id', Values: ['other', 'lab-pg'] }] }),
    );
    assert.equal(filtered.DBInstances?.length, 2);
    const none = await rds.send(
      new DescribeDBInstancesCommand({ Filters: [{ Name: 'db-cluster-id', Values: ['other'] }] }),
    );
    assert.deepEqual(none.DBInstances, []);
    const err = await rejects(
      rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'nope' })),
      DBInstanceNotFoundFault,
    );
    assert.equal(err.name, 'DBInstanceNotFoundFault');
    assert.equal(err.$metadata.httpStatusCode, 404);
    const bad = await rejects(
      rds.send(new DescribeDBInstancesCommand({ Filters: [{ Name: 'colour', Values: ['red'] }] })),
      RDSServiceException,
    );
    assert.equal(bad.name, 'InvalidParameterValue');
  });
});

describe('FailoverDBCluster', () => {
  test('starts a failover and returns the cluster', async () => {
    const out = await rds.send(
      new FailoverDBClusterCommand({ DBClusterIdentifier: 'lab-pg', TargetDBInstanceIdentifier: 'lab-pg-2' }),
    );
    assert.equal(out.DBCluster?.Status, 'failing-over');
    const writer = out.DBCluster?.DBClusterMembers?.find((m) => m.IsClusterWriter);
    assert.equal(writer?.DBInstanceIdentifier, 'lab-pg-2');
    const again = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'lab-pg' }));
    assert.equal(again.DBClusters?.[0]?.Status, 'failing-over');
  });

  test('typed errors: wrong state, unknown cluster, foreign target, missing identifier', async () => {
    await rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: 'lab-pg' }));
    const busy = await rejects(
      rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: 'lab-pg' })),
      InvalidDBClusterStateFault,
    );
    assert.equal(busy.name, 'InvalidDBClusterStateFault');
    assert.equal(busy.message, 'DBCluster lab-pg is in failing-over state.');
    assert.equal(busy.$metadata.httpStatusCode, 400);

    lab.reset();
    const unknown = await rejects(
      rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: 'nope' })),
      DBClusterNotFoundFault,
    );
    assert.equal(unknown.$metadata.httpStatusCode, 404);

    const foreign = await rejects(
      rds.send(
        new FailoverDBClusterCommand({ DBClusterIdentifier: 'lab-pg', TargetDBInstanceIdentifier: 'x' }),
      ),
      RDSServiceException,
    );
    assert.equal(foreign.name, 'InvalidParameterValue');
    assert.equal(foreign.message, 'x is not a member of lab-pg.');
    assert.equal(lab.cluster.status, 'available');

    const missing = await rejects(
      rds.send(new FailoverDBClusterCommand({} as { DBClusterIdentifier: string })),
      RDSServiceException,
    );
    assert.equal(missing.name, 'MissingParameter');
    assert.equal(missing.$metadata.httpStatusCode, 400);
  });
});

describe('RebootDBInstance', () => {
  test('ForceFailover on the writer fails over; unknown instance is DBInstanceNotFoundFault', async () => {
    const out = await rds.send(
      new RebootDBInstanceCommand({ DBInstanceIdentifier: 'lab-pg-1', ForceFailover: true }),
    );
    assert.equal(out.DBInstance?.DBInstanceIdentifier, 'lab-pg-1');
    assert.equal(out.DBInstance?.DBInstanceStatus, 'rebooting');
    assert.equal(out.DBInstance?.DBClusterIdentifier, 'lab-pg');
    assert.equal(lab.cluster.writerId, 'lab-pg-2');
    // The lab threw RdsFault('DBInstanceNotFoundFault'); on the wire it is RDS's `DBInstanceNotFound`.
    const err = await rejects(
      rds.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: 'nope' })),
      DBInstanceNotFoundFault,
    );
    assert.equal(err.$metadata.httpStatusCode, 404);
  });
});

describe('DescribeEvents', () => {
  const count = async (input: DescribeEventsCommandInput) =>
    (await rds.send(new DescribeEventsCommand(input))).Events?.length;

  test('renders events, oldest first, within the default hour', async () => {
    const out = await rds.send(new DescribeEventsCommand({}));
    assert.equal(out.Events?.length, 4);
    assert.equal(out.Marker, undefined);
    const [first, , , last] = out.Events!;
    assert.deepEqual(first, {
      SourceIdentifier: 'lab-pg',
      SourceType: 'db-cluster',
      Message: 'Started cross AZ failover to DB instance: lab-pg-2',
      EventCategories: ['failover'],
      Date: new Date(lab.eventList[0]!.date),
      SourceArn: `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:lab-pg`,
    });
    // XML escaping survives the round trip.
    assert.equal(last?.Message, ESCAPED);
    assert.deepEqual(last?.EventCategories, ['notification', 'configuration change']);
  });

  test('filters by source, categories and time window', async () => {
    assert.equal(await count({ SourceType: 'db-cluster' }), 2);
    assert.equal(await count({ SourceType: 'db-instance' }), 2);
    assert.equal(await count({ SourceType: 'db-instance', SourceIdentifier: 'lab-pg-2' }), 1);
    assert.equal(await count({ SourceType: 'db-proxy' }), 0);
    assert.equal(await count({ EventCategories: ['failover'] }), 2);
    assert.equal(await count({ EventCategories: ['failover', 'availability'] }), 3);
    assert.equal(await count({ Duration: 9 }), 2);
    assert.equal(await count({ Duration: 300 }), 30);
    const t = (minutesAgo: number) => new Date(lab.now - minutesAgo * MIN);
    assert.equal(await count({ StartTime: t(10), EndTime: t(8) }), 2);
    assert.equal(await count({ StartTime: t(10) }), 3);
    assert.equal(await count({ StartTime: t(130), Duration: 15 }), 1);
    assert.equal(await count({ StartTime: t(300), EndTime: t(100), EventCategories: ['failover'] }), 1);
  });

  test('pages with MaxRecords and Marker', async () => {
    const StartTime = new Date(lab.now - 300 * MIN);
    const p1 = await rds.send(new DescribeEventsCommand({ StartTime, MaxRecords: 20 }));
    assert.equal(p1.Events?.length, 20);
    assert.ok(p1.Marker);
    const p2 = await rds.send(new DescribeEventsCommand({ StartTime, MaxRecords: 20, Marker: p1.Marker }));
    assert.equal(p2.Events?.length, 10);
    assert.equal(p2.Marker, undefined);
    assert.equal(p2.Events?.at(-1)?.Message, ESCAPED);
  });

  test('rejects what RDS rejects', async () => {
    const combo = await rejects(
      rds.send(new DescribeEventsCommand({ SourceIdentifier: 'lab-pg' })),
      RDSServiceException,
    );
    assert.equal(combo.name, 'InvalidParameterCombination');
    assert.equal(combo.$metadata.httpStatusCode, 400);
    for (const input of [
      { SourceType: 'db-table' },
      { MaxRecords: 5 },
      { Marker: 'garbage' },
    ] as DescribeEventsCommandInput[]) {
      const err = await rejects(rds.send(new DescribeEventsCommand(input)), RDSServiceException);
      assert.equal(err.name, 'InvalidParameterValue', JSON.stringify(input));
    }
  });
});

describe('DescribeDBProxyTargets', () => {
  test('renders the proxy target and its health', async () => {
    const out = await rds.send(new DescribeDBProxyTargetsCommand({ DBProxyName: 'lab-pg-proxy' }));
    assert.equal(out.Targets?.length, 1);
    const t = out.Targets![0]!;
    assert.equal(t.Endpoint, 'lab-pg-1.abc123.lab.failwatch.local');
    assert.equal(t.Port, 5432);
    assert.equal(t.Type, 'RDS_INSTANCE');
    assert.equal(t.RdsResourceId, 'lab-pg-1');
    assert.equal(t.Role, 'READ_WRITE');
    assert.equal(t.TrackedClusterId, 'lab-pg');
    assert.equal(t.TargetArn, `arn:aws:rds:${REGION}:${ACCOUNT}:target:lab-pg-proxy-lab-pg-1`);
    assert.deepEqual(t.TargetHealth, { State: 'AVAILABLE' });

    await rds.send(new FailoverDBClusterCommand({ DBClusterIdentifier: 'lab-pg' }));
    const during = await rds.send(new DescribeDBProxyTargetsCommand({ DBProxyName: 'lab-pg-proxy' }));
    assert.equal(during.Targets?.[0]?.TargetHealth?.State, 'UNAVAILABLE');
    assert.equal(during.Targets?.[0]?.TargetHealth?.Reason, 'CONNECTION_FAILED');
  });

  test('unknown proxy is DBProxyNotFoundFault (404)', async () => {
    const err = await rejects(
      rds.send(new DescribeDBProxyTargetsCommand({ DBProxyName: 'nope' })),
      DBProxyNotFoundFault,
    );
    assert.equal(err.name, 'DBProxyNotFoundFault');
    assert.equal(err.$metadata.httpStatusCode, 404);
  });
});

test('an action the lab does not implement is InvalidAction', async () => {
  const err = await rejects(rds.send(new DescribeDBSnapshotsCommand({})), RDSServiceException);
  assert.equal(err.name, 'InvalidAction');
  assert.equal(err.$metadata.httpStatusCode, 400);
});

test('GET with a query string and /healthz', async () => {
  const res = await fetch(
    `${server.url}/?Action=DescribeDBClusters&Version=2014-10-31&DBClusterIdentifier=lab-pg`,
  );
  assert.equal(res.status, 200);
  const body = await res.text();
  assert.match(body, /<DescribeDBClustersResponse xmlns="http:\/\/rds\.amazonaws\.com\/doc\/2014-10-31\/">/);
  assert.match(body, /<DBClusterIdentifier>lab-pg<\/DBClusterIdentifier>/);
  const health = await fetch(`${server.url}/healthz`);
  assert.equal(await health.text(), 'ok');
});

test('a throttling window answers 400 Throttling in the RDS error shape, which the SDK and failwatch read as throttling', async () => {
  lab.fault = new RdsFault('Throttling', 'Rate exceeded', 400);
  try {
    const err = await rejects(
      rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'lab-pg' })),
      RDSServiceException,
    );
    assert.equal(err.name, 'Throttling');
    assert.equal(err.$metadata.httpStatusCode, 400);
    const classified = classifyRdsError(err, 'DescribeDBClusters lab-pg');
    assert.deepEqual(
      [classified.reason, classified.transient, classified.mayHaveHappened],
      ['Throttled', true, 'no'],
    );
    const res = await fetch(`${server.url}/?Action=DescribeDBClusters&Version=2014-10-31`);
    assert.equal(res.status, 400);
    assert.match(
      await res.text(),
      /<ErrorResponse xmlns="http:\/\/rds\.amazonaws\.com\/doc\/2014-10-31\/"><Error><Type>Sender<\/Type><Code>Throttling<\/Code><Message>Rate exceeded<\/Message><\/Error><RequestId>[0-9a-f-]+<\/RequestId><\/ErrorResponse>/,
    );
  } finally {
    lab.fault = undefined;
  }
  const ok = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'lab-pg' }));
  assert.equal(ok.DBClusters?.[0]?.Status, 'available');
});

describe('RebootDBInstance without failover and ModifyDBInstance (reboot-db-instance, modify-db-instance-class)', () => {
  test('RebootDBInstance without ForceFailover reboots that instance only: rebooting, same writer', async () => {
    const out = await rds.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: 'lab-pg-1' }));
    assert.equal(out.DBInstance?.DBInstanceIdentifier, 'lab-pg-1');
    assert.equal(out.DBInstance?.DBInstanceStatus, 'rebooting');
    assert.deepEqual(lab.reboots, [{ instanceId: 'lab-pg-1', forceFailover: false }]);
    assert.equal(lab.cluster.writerId, 'lab-pg-1');
    assert.equal(lab.cluster.status, 'available');
  });

  test('ModifyDBInstance with DBInstanceClass and ApplyImmediately: modifying, the new class pending', async () => {
    const out = await rds.send(
      new ModifyDBInstanceCommand({
        DBInstanceIdentifier: 'lab-pg-2',
        DBInstanceClass: 'db.r6g.xlarge',
        ApplyImmediately: true,
      }),
    );
    assert.deepEqual(lab.modifications, [
      { instanceId: 'lab-pg-2', instanceClass: 'db.r6g.xlarge', applyImmediately: true },
    ]);
    assert.equal(out.DBInstance?.DBInstanceStatus, 'modifying');
    assert.equal(out.DBInstance?.DBInstanceClass, 'db.r6g.large', 'the class changes once applied');
    assert.equal(out.DBInstance?.PendingModifiedValues?.DBInstanceClass, 'db.r6g.xlarge');
    // Applied: DescribeDBInstances shows the new class and nothing pending.
    const inst = lab.cluster.instances[1]!;
    inst.instanceClass = 'db.r6g.xlarge';
    inst.pendingInstanceClass = undefined;
    inst.status = 'available';
    const after = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'lab-pg-2' }));
    assert.equal(after.DBInstances?.[0]?.DBInstanceClass, 'db.r6g.xlarge');
    assert.equal(after.DBInstances?.[0]?.PendingModifiedValues, undefined);
  });

  test('ModifyDBInstance refuses what RDS refuses, and what the lab cannot change', async () => {
    const bad = await rejects(
      rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: 'lab-pg-1', DBInstanceClass: 'large' })),
      RDSServiceException,
    );
    assert.equal(bad.name, 'InvalidParameterCombination');
    assert.match(bad.message, /DBInstanceClass=large/);
    await rejects(
      rds.send(
        new ModifyDBInstanceCommand({ DBInstanceIdentifier: 'lab-pg-9', DBInstanceClass: 'db.r6g.xlarge' }),
      ),
      DBInstanceNotFoundFault,
    );
    const other = await rejects(
      rds.send(new ModifyDBInstanceCommand({ DBInstanceIdentifier: 'lab-pg-1', AllocatedStorage: 100 })),
      RDSServiceException,
    );
    assert.equal(other.name, 'InvalidParameterValue');
    assert.match(other.message, /DBInstanceClass only \(got AllocatedStorage\)/);
    assert.deepEqual(lab.modifications, [], 'nothing reached the lab');
  });

  test('trigger reboot-db-instance: preflight finds the writer, fire calls RebootDBInstance once without failover', async () => {
    const t = trigger({ action: 'reboot-db-instance', clusterIdentifier: 'lab-pg' });
    try {
      const s = await t.preflight();
      assert.deepEqual(s.instance, {
        id: 'lab-pg-1',
        status: 'available',
        instanceClass: 'db.r6g.large',
        multiAz: false,
      });
      const fired = await t.fire('lab-pg-1');
      assert.equal(fired.action, 'RebootDBInstance lab-pg-1 (no failover)');
      assert.equal(fired.writerBefore, 'lab-pg-1');
      assert.deepEqual(lab.reboots, [{ instanceId: 'lab-pg-1', forceFailover: false }]);
      const after = await t.state();
      assert.equal(after.writerId, 'lab-pg-1', 'no new writer');
      assert.equal(after.instance?.status, 'rebooting');
    } finally {
      t.close();
    }
  });

  test('trigger modify-db-instance-class: names the old and new class, ModifyDBInstance once with ApplyImmediately', async () => {
    const t = trigger({
      action: 'modify-db-instance-class',
      clusterIdentifier: 'lab-pg',
      operationInstanceIdentifier: 'lab-pg-2',
      instanceClass: 'db.r6g.xlarge',
    });
    try {
      await t.preflight();
      const fired = await t.fire('lab-pg-1');
      assert.equal(
        fired.action,
        'ModifyDBInstance lab-pg-2 (DBInstanceClass db.r6g.large -> db.r6g.xlarge, ApplyImmediately)',
      );
      assert.deepEqual(lab.modifications, [
        { instanceId: 'lab-pg-2', instanceClass: 'db.r6g.xlarge', applyImmediately: true },
      ]);
      assert.equal((await t.state()).instance?.status, 'modifying');
    } finally {
      t.close();
    }
  });

  test('trigger preflight refusals: same class, instance not available, not a member; nothing called', async () => {
    const same = await refusal(
      trigger({
        action: 'modify-db-instance-class',
        clusterIdentifier: 'lab-pg',
        instanceClass: 'db.r6g.large',
      }),
    );
    assert.equal(same.reason, 'InstanceClassUnchanged');
    assert.match(same.message, /lab-pg-1 already is db\.r6g\.large/);

    lab.cluster.instances[0]!.status = 'rebooting';
    const busy = await refusal(trigger({ action: 'reboot-db-instance', clusterIdentifier: 'lab-pg' }));
    assert.equal(busy.reason, 'TargetNotAvailable');
    assert.match(busy.message, /DB instance lab-pg-1 is rebooting, not available/);
    lab.cluster.instances[0]!.status = 'available';

    const stranger = await refusal(
      trigger({
        action: 'reboot-db-instance',
        clusterIdentifier: 'lab-pg',
        operationInstanceIdentifier: 'lab-pg-9',
      }),
    );
    assert.equal(stranger.reason, 'TargetInstanceNotMember');
    assert.match(
      stranger.message,
      /lab-pg-9 is not a member of DB cluster lab-pg \(members: lab-pg-1, lab-pg-2\)/,
    );

    lab.cluster.status = 'failing-over';
    const cluster = await refusal(trigger({ action: 'reboot-db-instance', clusterIdentifier: 'lab-pg' }));
    assert.equal(cluster.reason, 'TargetNotAvailable');
    assert.match(cluster.message, /DB cluster lab-pg is failing-over/);

    assert.deepEqual(lab.reboots, []);
    assert.deepEqual(lab.modifications, []);
  });

  test('trigger: RDS failing on the Describe before the call is a refusal, never an unknown outcome', async () => {
    const t = trigger({ action: 'reboot-db-instance', clusterIdentifier: 'lab-pg' });
    try {
      lab.fault = new RdsFault('InternalFailure', 'the lab is down for a moment', 500);
      const r = await callOnce(t, 'lab-pg-1');
      assert.equal(r.kind, 'refused');
      assert.equal(r.kind === 'refused' && r.reason, 'RdsServerError');
      assert.match(r.kind === 'refused' ? r.message : '', /before the call; nothing was called/);
      assert.deepEqual(lab.reboots, []);
    } finally {
      lab.fault = undefined;
      t.close();
    }
  });

  test('trigger on an rds-instance target: the target instance itself', async () => {
    const t = trigger({
      action: 'reboot-db-instance',
      targetKind: 'rds-instance',
      instanceIdentifier: 'lab-pg-2',
    });
    try {
      const s = await t.preflight();
      assert.equal(s.instance?.id, 'lab-pg-2');
      assert.equal((await t.fire()).action, 'RebootDBInstance lab-pg-2 (no failover)');
      assert.deepEqual(lab.reboots, [{ instanceId: 'lab-pg-2', forceFailover: false }]);
    } finally {
      t.close();
    }
  });

  test('a Multi-AZ DB cluster: Engine postgres and DBClusterInstanceClass; target.kind must say which cluster it is, nothing called otherwise', async () => {
    lab.cluster.kind = 'multi-az-db-cluster';
    lab.cluster.instances.push({
      ...lab.cluster.instances[1]!,
      id: 'lab-pg-3',
      availabilityZone: 'us-east-1c',
    });
    try {
      const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'lab-pg' }));
      const c = out.DBClusters![0]!;
      assert.equal(c.Engine, 'postgres');
      assert.equal(c.DBClusterInstanceClass, 'db.r6g.large');
      assert.equal(c.MultiAZ, true);
      const inst = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'lab-pg-3' }));
      assert.equal(inst.DBInstances?.[0]?.Engine, 'postgres');

      const wrong = await refusal(trigger({ action: 'failover-db-cluster', clusterIdentifier: 'lab-pg' }));
      assert.equal(wrong.reason, 'TargetKindMismatch');
      assert.equal(lab.cluster.status, 'available', 'nothing was called');
      const reboot = await refusal(trigger({ action: 'reboot-db-instance', clusterIdentifier: 'lab-pg' }));
      assert.equal(reboot.reason, 'TargetKindMismatch');
      assert.match(
        reboot.message,
        /through the cluster \(RebootDBCluster, ModifyDBCluster\), which failwatch does not call/,
      );
      assert.deepEqual(lab.reboots, []);
      assert.match(
        wrong.message,
        /lab-pg is a Multi-AZ DB cluster \(Engine postgres\), not an Aurora cluster: set target\.kind: multi-az-db-cluster/,
      );

      const t = trigger({
        action: 'failover-db-cluster',
        targetKind: 'multi-az-db-cluster',
        clusterIdentifier: 'lab-pg',
        targetInstanceIdentifier: 'lab-pg-3',
      });
      try {
        const s = await t.preflight();
        assert.equal(s.engine, 'postgres');
        assert.deepEqual(
          s.members.map((m) => `${m.id}${m.isWriter ? ' writer' : ''}`),
          ['lab-pg-1 writer', 'lab-pg-2', 'lab-pg-3'],
        );
        assert.equal((await t.fire('lab-pg-1')).action, 'FailoverDBCluster lab-pg (target lab-pg-3)');
        assert.equal((await t.state()).writerId, 'lab-pg-3');
      } finally {
        t.close();
      }
    } finally {
      lab.reset();
    }
    const aurora = await refusal(
      trigger({
        action: 'failover-db-cluster',
        targetKind: 'multi-az-db-cluster',
        clusterIdentifier: 'lab-pg',
      }),
    );
    assert.equal(aurora.reason, 'TargetKindMismatch');
    assert.match(
      aurora.message,
      /lab-pg is an Aurora cluster \(Engine aurora-postgresql\), not a Multi-AZ DB cluster: set target\.kind: aurora-cluster/,
    );
  });

  test('a Multi-AZ DB instance: one DB instance, no cluster, the standby hidden; ForceFailover fails it over, a class change is refused', async () => {
    lab.cluster.kind = 'multi-az-instance';
    lab.cluster.endpoint = 'lab-pg.abc123.lab.failwatch.local';
    try {
      const out = await rds.send(new DescribeDBInstancesCommand({}));
      assert.deepEqual(
        out.DBInstances?.map((i) => [
          i.DBInstanceIdentifier,
          i.MultiAZ,
          i.Endpoint?.Address,
          i.AvailabilityZone,
          i.SecondaryAvailabilityZone,
          i.Engine,
        ]),
        [['lab-pg', true, 'lab-pg.abc123.lab.failwatch.local', 'us-east-1a', 'us-east-1b', 'postgres']],
      );
      await rejects(
        rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: 'lab-pg' })),
        DBClusterNotFoundFault,
      );
      assert.deepEqual((await rds.send(new DescribeDBClustersCommand({}))).DBClusters, []);
      await rejects(
        rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: 'lab-pg-2' })),
        DBInstanceNotFoundFault,
      );
      await rejects(
        rds.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: 'lab-pg-1' })),
        DBInstanceNotFoundFault,
      );
      const modify = await rejects(
        rds.send(
          new ModifyDBInstanceCommand({
            DBInstanceIdentifier: 'lab-pg',
            DBInstanceClass: 'db.r6g.xlarge',
            ApplyImmediately: true,
          }),
        ),
        RDSServiceException,
      );
      assert.equal(modify.name, 'InvalidParameterCombination');
      assert.deepEqual(lab.modifications, []);

      const t = trigger({
        action: 'reboot-db-instance-force-failover',
        targetKind: 'rds-instance',
        instanceIdentifier: 'lab-pg',
      });
      try {
        const s = await t.preflight();
        assert.equal(s.writerId, 'lab-pg');
        assert.equal(s.instance?.multiAz, true);
        assert.equal((await t.fire('lab-pg')).action, 'RebootDBInstance lab-pg (ForceFailover)');
        // The call reached the primary behind the instance, with ForceFailover.
        assert.deepEqual(lab.reboots, [{ instanceId: 'lab-pg-1', forceFailover: true }]);
        assert.equal(lab.cluster.writerId, 'lab-pg-2');
        assert.equal(
          (await t.state()).status,
          'rebooting',
          'RDS shows the instance rebooting while it fails over',
        );
      } finally {
        t.close();
      }
    } finally {
      lab.reset();
    }
  });

  test('a forced failover of an instance that is not Multi-AZ is refused in preflight (NoReader), nothing called', async () => {
    const t = trigger({
      action: 'reboot-db-instance-force-failover',
      targetKind: 'rds-instance',
      instanceIdentifier: 'lab-pg-2',
    });
    const e = await refusal(t);
    assert.equal(e.reason, 'NoReader');
    assert.match(e.message, /DB instance lab-pg-2 is not a Multi-AZ deployment/);
    assert.deepEqual(lab.reboots, []);
  });
});

describe('Blue/Green deployments (switchover-blue-green-deployment)', () => {
  const switchover = (more: Partial<AwsRdsTriggerConfig> = {}) =>
    trigger({
      action: 'switchover-blue-green-deployment',
      clusterIdentifier: 'lab-pg',
      blueGreenDeploymentIdentifier: 'bgd-labpg00000000000',
      ...more,
    });

  test('DescribeBlueGreenDeployments renders the deployment: Source, Target, status, member pairs', async () => {
    const out = await rds.send(
      new DescribeBlueGreenDeploymentsCommand({ BlueGreenDeploymentIdentifier: 'bgd-labpg00000000000' }),
    );
    assert.equal(out.BlueGreenDeployments?.length, 1);
    const bg = out.BlueGreenDeployments![0]!;
    assert.equal(bg.BlueGreenDeploymentName, 'lab-pg-upgrade');
    assert.equal(bg.Source, `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:lab-pg`);
    assert.equal(bg.Target, `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:lab-pg-green-abc123`);
    assert.equal(bg.Status, 'AVAILABLE');
    assert.equal(bg.CreateTime?.toISOString(), CREATED);
    assert.deepEqual(
      bg.SwitchoverDetails?.map((d) => d.SourceMember?.split(':').slice(-2).join(':')),
      ['cluster:lab-pg', 'db:lab-pg-1', 'db:lab-pg-2'],
    );
    assert.equal(bg.Tasks?.length, 2);
    const byName = await rds.send(
      new DescribeBlueGreenDeploymentsCommand({
        Filters: [{ Name: 'blue-green-deployment-name', Values: ['lab-pg-upgrade', 'other'] }],
      }),
    );
    assert.equal(byName.BlueGreenDeployments?.length, 1);
    const none = await rds.send(
      new DescribeBlueGreenDeploymentsCommand({ Filters: [{ Name: 'source', Values: ['arn:aws:rds:x'] }] }),
    );
    assert.equal(none.BlueGreenDeployments?.length, 0);
    await rejects(
      rds.send(new DescribeBlueGreenDeploymentsCommand({ BlueGreenDeploymentIdentifier: 'bgd-nope' })),
      BlueGreenDeploymentNotFoundFault,
    );
  });

  test('SwitchoverBlueGreenDeployment passes the timeout (default 300 s, at least 30 s)', async () => {
    await rejects(
      rds.send(
        new SwitchoverBlueGreenDeploymentCommand({
          BlueGreenDeploymentIdentifier: 'bgd-labpg00000000000',
          SwitchoverTimeout: 29,
        }),
      ),
      RDSServiceException,
    );
    assert.deepEqual(lab.switchovers, []);
    const out = await rds.send(
      new SwitchoverBlueGreenDeploymentCommand({ BlueGreenDeploymentIdentifier: 'bgd-labpg00000000000' }),
    );
    assert.equal(out.BlueGreenDeployment?.Status, 'SWITCHOVER_IN_PROGRESS');
    assert.deepEqual(lab.switchovers, [{ id: 'bgd-labpg00000000000', timeoutSeconds: 300 }]);
  });

  test('trigger: preflight checks the deployment, fire calls SwitchoverBlueGreenDeployment once with the timeout', async () => {
    const t = switchover({ switchoverTimeoutSeconds: 120 });
    try {
      assert.equal(t.description, 'Blue/Green deployment bgd-labpg00000000000 (blue: DB cluster lab-pg)');
      const s = await t.preflight();
      assert.equal(s.blueGreen?.status, 'AVAILABLE');
      const fired = await t.fire(s.writerId);
      assert.equal(
        fired.action,
        'SwitchoverBlueGreenDeployment bgd-labpg00000000000 (SwitchoverTimeout 120 s)',
      );
      assert.deepEqual(lab.switchovers, [{ id: 'bgd-labpg00000000000', timeoutSeconds: 120 }]);
      assert.equal((await t.state()).blueGreen?.status, 'SWITCHOVER_IN_PROGRESS');
    } finally {
      t.close();
    }
  });

  test("trigger preflight refusals: not AVAILABLE, another cluster's deployment, unknown deployment; nothing called", async () => {
    lab.blueGreen.status = 'SWITCHOVER_COMPLETED';
    const done = await refusal(switchover());
    assert.equal(done.reason, 'TargetNotAvailable');
    assert.match(done.message, /is SWITCHOVER_COMPLETED, not AVAILABLE/);
    lab.blueGreen.status = 'AVAILABLE';
    lab.blueGreen.sourceClusterId = 'lab-other';
    const foreign = await refusal(switchover());
    assert.equal(foreign.reason, 'BlueGreenSourceMismatch');
    assert.match(
      foreign.message,
      /switches over arn:aws:rds:us-east-1:123456789012:cluster:lab-other, not the target DB cluster lab-pg/,
    );
    const unknown = await refusal(switchover({ blueGreenDeploymentIdentifier: 'bgd-nope' }));
    assert.equal(unknown.reason, 'TargetNotFound');
    assert.deepEqual(lab.switchovers, []);
  });
});

describe('Global Databases (switchover-global-cluster, failover-global-cluster)', () => {
  const WEST = 'arn:aws:rds:us-east-1:123456789012:cluster:lab-pg-west';
  const globalTrigger = (config: Partial<AwsRdsTriggerConfig>) =>
    trigger({
      action: 'switchover-global-cluster',
      clusterIdentifier: 'lab-pg',
      globalClusterIdentifier: 'lab-pg-global',
      targetDbClusterIdentifier: WEST,
      ...config,
    });

  test('DescribeGlobalClusters renders the members, the writer, the global endpoint and FailoverState', async () => {
    const out = await rds.send(
      new DescribeGlobalClustersCommand({ GlobalClusterIdentifier: 'lab-pg-global' }),
    );
    const g = out.GlobalClusters?.[0];
    assert.equal(g?.GlobalClusterArn, 'arn:aws:rds::123456789012:global-cluster:lab-pg-global');
    assert.equal(g?.Status, 'available');
    assert.equal(g?.Endpoint, 'lab-pg-global.global-abc123.lab.failwatch.local');
    assert.deepEqual(
      g?.GlobalClusterMembers?.map((m) => [
        m.DBClusterArn?.split(':').at(-1),
        m.IsWriter,
        m.Readers?.length ?? 0,
      ]),
      [
        ['lab-pg', true, 1],
        ['lab-pg-west', false, 0],
      ],
    );
    assert.equal(g?.FailoverState, undefined);
    await rejects(
      rds.send(new DescribeGlobalClustersCommand({ GlobalClusterIdentifier: 'nope' })),
      GlobalClusterNotFoundFault,
    );
    await rds.send(
      new FailoverGlobalClusterCommand({
        GlobalClusterIdentifier: 'lab-pg-global',
        TargetDbClusterIdentifier: WEST,
        AllowDataLoss: true,
      }),
    );
    const during = (await rds.send(new DescribeGlobalClustersCommand({}))).GlobalClusters?.[0];
    assert.deepEqual(
      [
        during?.Status,
        during?.FailoverState?.IsDataLossAllowed,
        during?.FailoverState?.ToDbClusterArn?.split(':').at(-1),
      ],
      ['failing-over', true, 'lab-pg-west'],
    );
    assert.deepEqual(lab.globalCalls, [{ id: 'lab-pg-global', target: 'lab-pg-west', allowDataLoss: true }]);
  });

  test('FailoverGlobalCluster refuses AllowDataLoss with Switchover; without AllowDataLoss it switches over', async () => {
    await rejects(
      rds.send(
        new FailoverGlobalClusterCommand({
          GlobalClusterIdentifier: 'lab-pg-global',
          TargetDbClusterIdentifier: WEST,
          AllowDataLoss: true,
          Switchover: true,
        }),
      ),
      RDSServiceException,
    );
    await rds.send(
      new FailoverGlobalClusterCommand({
        GlobalClusterIdentifier: 'lab-pg-global',
        TargetDbClusterIdentifier: WEST,
      }),
    );
    assert.deepEqual(lab.globalCalls, [{ id: 'lab-pg-global', target: 'lab-pg-west', allowDataLoss: false }]);
  });

  test('trigger: preflight, one SwitchoverGlobalCluster / FailoverGlobalCluster call, the action named', async () => {
    const sw = globalTrigger({});
    try {
      assert.equal(
        sw.description,
        'Global Database lab-pg-global (primary: DB cluster lab-pg, promoting lab-pg-west)',
      );
      const s = await sw.preflight();
      assert.equal(s.globalCluster?.writerArn, 'arn:aws:rds:us-east-1:123456789012:cluster:lab-pg');
      const fired = await sw.fire(s.writerId);
      assert.equal(fired.action, `SwitchoverGlobalCluster lab-pg-global (to ${WEST})`);
      assert.deepEqual(lab.globalCalls, [
        { id: 'lab-pg-global', target: 'lab-pg-west', allowDataLoss: false },
      ]);
    } finally {
      sw.close();
    }
    lab.reset();
    const fo = globalTrigger({ action: 'failover-global-cluster', allowDataLoss: true });
    try {
      const fired = await fo.fire();
      assert.equal(fired.action, `FailoverGlobalCluster lab-pg-global (to ${WEST}, AllowDataLoss)`);
      assert.deepEqual(lab.globalCalls, [
        { id: 'lab-pg-global', target: 'lab-pg-west', allowDataLoss: true },
      ]);
    } finally {
      fo.close();
    }
  });

  test('trigger preflight refusals: the target is not the primary, the ARN not a secondary, not available', async () => {
    lab.global.primaryClusterId = 'lab-other';
    lab.global.secondaryClusterIds = ['lab-pg', 'lab-pg-west'];
    const notPrimary = await refusal(globalTrigger({}));
    assert.equal(notPrimary.reason, 'GlobalClusterMismatch');
    assert.match(
      notPrimary.message,
      /the primary of global cluster lab-pg-global is arn:aws:rds:us-east-1:123456789012:cluster:lab-other, not the target DB cluster lab-pg/,
    );
    lab.reset();
    const foreign = await refusal(
      globalTrigger({ targetDbClusterIdentifier: 'arn:aws:rds:us-west-2:123456789012:cluster:elsewhere' }),
    );
    assert.equal(foreign.reason, 'GlobalClusterMismatch');
    assert.match(
      foreign.message,
      /is not a secondary cluster of global cluster lab-pg-global \(secondaries: arn:aws:rds:us-east-1:123456789012:cluster:lab-pg-west\)/,
    );
    lab.global.status = 'switching-over';
    const busy = await refusal(globalTrigger({}));
    assert.equal(busy.reason, 'TargetNotAvailable');
    assert.deepEqual(lab.globalCalls, []);
  });
});
