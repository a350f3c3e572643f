// The lab's RDS Query API endpoint: just enough of AWS RDS (API version 2014-10-31) for the
// real `@aws-sdk/client-rds` to drive the lab exactly as it drives Aurora, typed errors
// included. State comes from LabControl; this file only parses requests and renders XML.
//
// Query protocol in brief: POST form-urlencoded (or GET query string) `Action=X&Version=...`,
// lists as `Name.<member-name>.N` (1-based; the SDK uses the model's member name, e.g.
// `EventCategories.EventCategory.1`, older clients use `.member.`), success as
// `<XResponse><XResult>...</XResult><ResponseMetadata/></XResponse>`, failure as
// `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.

import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import type {
  LabBlueGreen,
  LabCluster,
  LabControl,
  LabEvent,
  LabGlobalCluster,
  LabInstance,
} from './model.ts';
import { RdsFault } from './model.ts';

const XMLNS = 'http://rds.amazonaws.com/doc/2014-10-31/';
/** What RDS accepts as a DBInstanceClass, in shape (the lab knows no list of real classes). */
const INSTANCE_CLASS = /^db\.[a-z0-9]+(\.[a-z0-9]+)?$/;

// ---------------------------------------------------------------------------------------
// XML: a value tree rendered to elements. A string/number/boolean/Date is a text element,
// an array repeats the element (how the Query protocol spells list members), an object
// nests, undefined is left out.

type XmlValue = string | number | boolean | Date | undefined | XmlObject | XmlValue[];
interface XmlObject {
  [name: string]: XmlValue;
}

const ENTITIES: Record<string, string> = {
  '<': '&lt;',
  '>': '&gt;',
  '&': '&amp;',
  '"': '&quot;',
  "'": '&apos;',
};

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ENTITIES[c] ?? c);
}

function xml(name: string, value: XmlValue): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map((v) => xml(name, v)).join('');
  if (value instanceof Date) return `<${name}>${value.toISOString()}</${name}>`;
  if (typeof value === 'object') {
    const inner = Object.entries(value)
      .map(([k, v]) => xml(k, v))
      .join('');
    return `<${name}>${inner}</${name}>`;
  }
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

// ---------------------------------------------------------------------------------------
// Request parameters.

/** Wire codes of faults whose code differs from the SDK's class name (awsQueryError). */
const WIRE_CODES: Record<string, string> = {
  DBInstanceNotFoundFault: 'DBInstanceNotFound',
  InvalidDBInstanceStateFault: 'InvalidDBInstanceState',
  DBInstanceNotReadyFault: 'DBInstanceNotReady',
};

class Params {
  readonly raw: URLSearchParams;
  constructor(raw: URLSearchParams) {
    this.raw = raw;
  }

  get(name: string): string | undefined {
    const v = this.raw.get(name);
    return v === null || v === '' ? undefined : v;
  }

  required(name: string): string {
    const v = this.get(name);
    if (v === undefined) {
      throw new RdsFault('MissingParameter', `The request must contain the parameter ${name}`);
    }
    return v;
  }

  bool(name: string): boolean | undefined {
    const v = this.get(name)?.toLowerCase();
    if (v === undefined) return undefined;
    if (v === 'true' || v === 'false') return v === 'true';
    throw invalid(`Invalid boolean value for ${name}: ${this.get(name)}`);
  }

  int(name: string, min: number, max: number): number | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw invalid(`${name} must be an integer between ${min} and ${max}, got ${v}`);
    }
    return n;
  }

  time(name: string): number | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    const ms = Date.parse(v);
    if (Number.isNaN(ms)) throw invalid(`Invalid timestamp for ${name}: ${v}`);
    return ms;
  }

  /** `Name.<any>.N` in index order (the member segment's name does not matter). */
  list(name: string): string[] {
    return this.indexed(name, '').map(([, v]) => v);
  }

  /** `Filters.<any>.N.Name` with `Filters.<any>.N.Values.<any>.M`. */
  filters(): Array<{ name: string; values: string[] }> {
    return this.indexed('Filters', '.Name').map(([prefix, name]) => ({
      name,
      values: this.list(`${prefix}.Values`),
    }));
  }

  /** Entries `${name}.<seg>.N${suffix}` as [`${name}.<seg>.N`, value], sorted by N. */
  private indexed(name: string, suffix: string): Array<[string, string]> {
    const out: Array<[number, string, string]> = [];
    for (const [key, value] of this.raw) {
      if (!key.startsWith(`${name}.`) || !key.endsWith(suffix)) continue;
      const middle = key.slice(name.length + 1, key.length - suffix.length);
      const m = /^([^.]+)\.(\d+)$/.exec(middle);
      if (m) out.push([Number(m[2]), `${name}.${m[1]}.${m[2]}`, value]);
    }
    return out.sort((a, b) => a[0] - b[0]).map(([, k, v]) => [k, v]);
  }
}

function invalid(message: string): RdsFault {
  return new RdsFault('InvalidParameterValue', message);
}

/** RDS accepts an identifier or its ARN wherever an identifier is asked for. */
function idOf(value: string): string {
  return value.startsWith('arn:') ? value.slice(value.lastIndexOf(':') + 1) : value;
}

/** MaxRecords/Marker paging; the marker is the offset of the next record. */
function page<T>(items: T[], p: Params): { items: T[]; marker: string | undefined } {
  const max = p.int('MaxRecords', 20, 100) ?? 100;
  const markerText = p.get('Marker');
  const start = markerText === undefined ? 0 : Number(markerText);
  if (!Number.isInteger(start) || start < 0) throw invalid(`Invalid Marker: ${markerText}`);
  const end = start + max;
  return { items: items.slice(start, end), marker: end < items.length ? String(end) : undefined };
}

// ---------------------------------------------------------------------------------------
// Rendering of lab state as RDS shapes.

interface Ctx {
  control: LabControl;
  p: Params;
}

function arn(
  ctx: Ctx,
  kind: 'cluster' | 'db' | 'db-proxy' | 'target' | 'deployment',
  id: string,
  region = ctx.control.region,
): string {
  return `arn:aws:rds:${region}:${ctx.control.accountId}:${kind}:${id}`;
}

/** A cluster's ARN, in its own region (a Global Database's secondary is in another). */
function clusterArn(ctx: Ctx, c: LabCluster): string {
  return arn(ctx, 'cluster', c.id, c.region);
}

/**
 * The Engine RDS reports: Aurora's (`aurora-postgresql`, `aurora-mysql`), or for a Multi-AZ DB
 * cluster, its instances and a Multi-AZ DB instance the plain engine (`postgres`, `mysql`).
 */
function engineName(c: LabCluster): string {
  if (c.kind === 'aurora') return c.engine;
  return c.engine === 'aurora-postgresql' ? 'postgres' : 'mysql';
}

function renderCluster(ctx: Ctx, c: LabCluster): XmlObject {
  const zones = [...new Set(c.instances.map((i) => i.availabilityZone))];
  const multiAz = c.kind === 'multi-az-db-cluster';
  return {
    DBClusterIdentifier: c.id,
    DBClusterArn: clusterArn(ctx, c),
    Status: c.status,
    Engine: engineName(c),
    EngineVersion: c.engineVersion,
    EngineMode: 'provisioned',
    // A Multi-AZ DB cluster has one instance class for all members; Aurora reports none.
    DBClusterInstanceClass: multiAz ? c.instances[0]?.instanceClass : undefined,
    Endpoint: c.endpoint,
    ReaderEndpoint: c.readerEndpoint,
    Port: c.port,
    MasterUsername: c.masterUsername,
    DatabaseName: c.databaseName,
    ClusterCreateTime: new Date(c.clusterCreateTime),
    // Aurora reports MultiAZ when its instances span more than one zone; a Multi-AZ DB cluster always.
    MultiAZ: multiAz || zones.length > 1,
    AvailabilityZones: { AvailabilityZone: zones },
    DBClusterMembers: {
      DBClusterMember: c.instances.map((i) => ({
        DBInstanceIdentifier: i.id,
        // A Global Database's secondary cluster has no writer until it is promoted.
        IsClusterWriter: i.id === c.writerId && c.globalRole !== 'secondary',
        DBClusterParameterGroupStatus: 'in-sync',
        PromotionTier: 1,
      })),
    },
  };
}

/**
 * A Multi-AZ DB instance as RDS shows it: one DB instance named like the lab cluster, at the
 * endpoint that follows the primary, in the primary's zone, `rebooting` while it fails over.
 */
function singleInstance(c: LabCluster): { instance: LabInstance; secondaryZone?: string } {
  const primary = c.instances.find((i) => i.id === c.writerId) ?? c.instances[0]!;
  const standby = c.instances.find((i) => i.id !== primary.id);
  const status = c.status === 'failing-over' ? 'rebooting' : primary.status;
  return {
    instance: { ...primary, id: c.id, dnsName: c.endpoint, status },
    ...(standby ? { secondaryZone: standby.availabilityZone } : {}),
  };
}

/** Every DB instance the API shows: a cluster's members, or a Multi-AZ DB instance itself. */
function apiInstances(ctx: Ctx): { i: LabInstance; c: LabCluster; secondaryZone?: string }[] {
  return ctx.control.clusters().flatMap((c) => {
    if (c.kind !== 'multi-az-instance') return c.instances.map((i) => ({ i, c }));
    const { instance, secondaryZone } = singleInstance(c);
    return [{ i: instance, c, ...(secondaryZone ? { secondaryZone } : {}) }];
  });
}

/**
 * The DB instance of that name as the API shows it (apiInstances); a name it does not show,
 * such as a Multi-AZ DB instance's hidden standby, is DBInstanceNotFound.
 */
function shownInstance(ctx: Ctx, id: string): { i: LabInstance; c: LabCluster; secondaryZone?: string } {
  const shown = apiInstances(ctx).find((x) => x.i.id === id);
  if (!shown) throw new RdsFault('DBInstanceNotFound', `DBInstance ${id} not found.`, 404);
  return shown;
}

function renderInstance(
  ctx: Ctx,
  i: LabInstance,
  c: LabCluster | undefined,
  secondaryZone?: string,
): XmlObject {
  if (c?.kind === 'multi-az-instance')
    return {
      ...renderInstance(ctx, i, undefined),
      Engine: engineName(c),
      EngineVersion: c.engineVersion,
      MasterUsername: c.masterUsername,
      DBName: c.databaseName,
      InstanceCreateTime: new Date(c.clusterCreateTime),
      MultiAZ: true,
      SecondaryAvailabilityZone: secondaryZone,
    };
  return {
    DBInstanceIdentifier: i.id,
    DBInstanceArn: arn(ctx, 'db', i.id),
    DBInstanceClass: i.instanceClass,
    Engine: c ? engineName(c) : undefined,
    EngineVersion: c?.engineVersion,
    DBInstanceStatus: i.status,
    MasterUsername: c?.masterUsername,
    DBName: c?.databaseName,
    Endpoint: { Address: i.dnsName, Port: i.port },
    AvailabilityZone: i.availabilityZone,
    DBClusterIdentifier: c?.id,
    InstanceCreateTime: c ? new Date(c.clusterCreateTime) : undefined,
    MultiAZ: false,
    PubliclyAccessible: false,
    PromotionTier: 1,
    PendingModifiedValues: i.pendingInstanceClass ? { DBInstanceClass: i.pendingInstanceClass } : undefined,
  };
}

/**
 * A Blue/Green deployment: Source and Target are the clusters' ARNs under their current names,
 * SwitchoverDetails pairs the clusters and their instances (by position) with the status.
 */
function renderBlueGreen(ctx: Ctx, bg: LabBlueGreen): XmlObject {
  const clusters = ctx.control.clusters();
  const source = clusters.find((c) => c.id === bg.sourceClusterId);
  const target = clusters.find((c) => c.id === bg.targetClusterId);
  const memberStatus = bg.status === 'SWITCHOVER_FAILED' ? 'SWITCHOVER_FAILED' : bg.status;
  const pairs: XmlObject[] = [
    {
      SourceMember: arn(ctx, 'cluster', bg.sourceClusterId),
      TargetMember: arn(ctx, 'cluster', bg.targetClusterId),
      Status: memberStatus,
    },
    ...(source?.instances ?? []).map((i, k) => ({
      SourceMember: arn(ctx, 'db', i.id),
      TargetMember: target?.instances[k] ? arn(ctx, 'db', target.instances[k].id) : undefined,
      Status: memberStatus,
    })),
  ];
  const done = bg.status === 'SWITCHOVER_COMPLETED';
  return {
    BlueGreenDeploymentIdentifier: bg.id,
    BlueGreenDeploymentName: bg.name,
    Source: arn(ctx, 'cluster', bg.sourceClusterId),
    Target: arn(ctx, 'cluster', bg.targetClusterId),
    SwitchoverDetails: { member: pairs },
    Tasks: {
      member: [
        { Name: 'CREATING_READ_REPLICA_OF_SOURCE', Status: 'COMPLETED' },
        { Name: 'CONFIGURE_BACKUPS', Status: 'COMPLETED' },
      ],
    },
    Status: bg.status,
    StatusDetails: bg.statusDetails ?? (done ? 'Switchover completed' : undefined),
    CreateTime: new Date(bg.createTime),
  };
}

/** A Global Database: its members (ARNs in their regions), the writer, the failover in progress. */
function renderGlobalCluster(ctx: Ctx, g: LabGlobalCluster): XmlObject {
  const clusters = ctx.control.clusters();
  const byId = (id: string) => clusters.find((c) => c.id === id);
  const arnOf = (id: string) => {
    const c = byId(id);
    return c ? clusterArn(ctx, c) : arn(ctx, 'cluster', id);
  };
  const members = [g.primaryClusterId, ...g.secondaryClusterIds];
  return {
    GlobalClusterIdentifier: g.id,
    GlobalClusterResourceId: `cluster-${g.id.replace(/[^a-z0-9]/g, '')}`,
    GlobalClusterArn: `arn:aws:rds::${ctx.control.accountId}:global-cluster:${g.id}`,
    Status: g.status,
    Engine: g.engine,
    EngineVersion: g.engineVersion,
    DatabaseName: byId(g.primaryClusterId)?.databaseName,
    StorageEncrypted: false,
    DeletionProtection: false,
    Endpoint: g.endpoint,
    GlobalClusterMembers: {
      GlobalClusterMember: members.map((id) => ({
        DBClusterArn: arnOf(id),
        Readers: id === g.primaryClusterId ? { member: g.secondaryClusterIds.map(arnOf) } : undefined,
        IsWriter: id === g.primaryClusterId,
        SynchronizationStatus: id === g.primaryClusterId ? undefined : 'connected',
      })),
    },
    FailoverState: g.failoverState
      ? {
          Status: g.failoverState.status,
          FromDbClusterArn: arnOf(g.failoverState.fromClusterId),
          ToDbClusterArn: arnOf(g.failoverState.toClusterId),
          IsDataLossAllowed: g.failoverState.dataLossAllowed,
        }
      : undefined,
  };
}

function findGlobalCluster(ctx: Ctx, id: string): LabGlobalCluster {
  const g = ctx.control.globalClusters().find((x) => x.id === id);
  if (!g) throw new RdsFault('GlobalClusterNotFoundFault', `Global cluster ${id} not found.`, 404);
  return g;
}

function renderEvent(e: LabEvent): XmlObject {
  return {
    SourceIdentifier: e.sourceIdentifier,
    SourceType: e.sourceType,
    Message: e.message,
    EventCategories: { EventCategory: e.eventCategories },
    Date: new Date(e.date),
    SourceArn: e.sourceArn,
  };
}

function findCluster(ctx: Ctx, id: string): LabCluster {
  const c = ctx.control.clusters().find((x) => x.id === id && x.kind !== 'multi-az-instance');
  if (!c) throw new RdsFault('DBClusterNotFoundFault', `DBCluster ${id} not found.`, 404);
  return c;
}

function clusterOfInstance(ctx: Ctx, instanceId: string): LabCluster | undefined {
  return ctx.control.clusters().find((c) => c.instances.some((i) => i.id === instanceId));
}

/** Keeps items whose value for each known filter is one of the filter's values. */
function applyFilters<T>(
  items: T[],
  filters: Array<{ name: string; values: string[] }>,
  known: Record<string, (item: T) => string>,
): T[] {
  return filters.reduce((acc, f) => {
    const key = known[f.name];
    if (!key) throw invalid(`Unrecognized filter name: ${f.name}`);
    const values = new Set(f.values.map(idOf));
    return acc.filter((item) => values.has(key(item)));
  }, items);
}

// ---------------------------------------------------------------------------------------
// Actions: each returns the content of its <XResult> element.

type Handler = (ctx: Ctx) => XmlObject;

const SOURCE_TYPES = new Set([
  'db-instance',
  'db-parameter-group',
  'db-security-group',
  'db-snapshot',
  'db-cluster',
  'db-cluster-snapshot',
  'custom-engine-version',
  'db-proxy',
  'blue-green-deployment',
]);

const actions: Record<string, Handler> = {
  DescribeDBClusters(ctx) {
    const id = ctx.p.get('DBClusterIdentifier');
    let clusters =
      id === undefined
        ? ctx.control.clusters().filter((c) => c.kind !== 'multi-az-instance')
        : [findCluster(ctx, idOf(id))];
    clusters = applyFilters(clusters, ctx.p.filters(), { 'db-cluster-id': (c) => c.id });
    const { items, marker } = page(clusters, ctx.p);
    return { DBClusters: { DBCluster: items.map((c) => renderCluster(ctx, c)) }, Marker: marker };
  },

  DescribeDBInstances(ctx) {
    const all = apiInstances(ctx);
    const id = ctx.p.get('DBInstanceIdentifier');
    let found = id === undefined ? all : all.filter((x) => x.i.id === idOf(id));
    if (id !== undefined && found.length === 0) {
      throw new RdsFault('DBInstanceNotFound', `DBInstance ${id} not found.`, 404);
    }
    found = applyFilters(found, ctx.p.filters(), {
      'db-cluster-id': (x) => (x.c.kind === 'multi-az-instance' ? '' : x.c.id),
      'db-instance-id': (x) => x.i.id,
      engine: (x) => engineName(x.c),
    });
    const { items, marker } = page(found, ctx.p);
    return {
      DBInstances: { DBInstance: items.map((x) => renderInstance(ctx, x.i, x.c, x.secondaryZone)) },
      Marker: marker,
    };
  },

  FailoverDBCluster(ctx) {
    const id = idOf(ctx.p.required('DBClusterIdentifier'));
    const target = ctx.p.get('TargetDBInstanceIdentifier');
    const cluster = ctx.control.failoverCluster(id, target === undefined ? undefined : idOf(target));
    return { DBCluster: renderCluster(ctx, cluster) };
  },

  RebootDBInstance(ctx) {
    const id = idOf(ctx.p.required('DBInstanceIdentifier'));
    const { c } = shownInstance(ctx, id);
    if (c.kind === 'multi-az-instance') {
      // ForceFailover: the standby takes over; without it the primary restarts in place.
      ctx.control.rebootInstance(c.writerId, ctx.p.bool('ForceFailover') ?? false);
      const { instance, secondaryZone } = singleInstance(c);
      return { DBInstance: renderInstance(ctx, instance, c, secondaryZone) };
    }
    const instance = ctx.control.rebootInstance(id, ctx.p.bool('ForceFailover') ?? false);
    return { DBInstance: renderInstance(ctx, instance, clusterOfInstance(ctx, instance.id)) };
  },

  ModifyDBInstance(ctx) {
    const id = idOf(ctx.p.required('DBInstanceIdentifier'));
    if (shownInstance(ctx, id).c.kind === 'multi-az-instance')
      throw new RdsFault(
        'InvalidParameterCombination',
        `The lab does not model modifications of a Multi-AZ DB instance (RDS modifies the standby, fails over, then modifies the old primary): DBInstance ${id}.`,
      );
    const instanceClass = ctx.p.get('DBInstanceClass');
    const applyImmediately = ctx.p.bool('ApplyImmediately') ?? false;
    if (instanceClass === undefined) {
      // The lab models class changes only; anything else is refused rather than ignored.
      const asked = [...ctx.p.raw.keys()].filter(
        (k) => !['Action', 'Version', 'DBInstanceIdentifier', 'ApplyImmediately'].includes(k),
      );
      if (asked.length > 0)
        throw invalid(`The lab's ModifyDBInstance changes DBInstanceClass only (got ${asked.join(', ')})`);
    } else if (!INSTANCE_CLASS.test(instanceClass))
      throw new RdsFault(
        'InvalidParameterCombination',
        `RDS does not support creating a DB instance with the following combination: DBInstanceClass=${instanceClass}.`,
      );
    const cluster = clusterOfInstance(ctx, id);
    const instance =
      instanceClass === undefined
        ? cluster?.instances.find((i) => i.id === id)
        : ctx.control.modifyInstanceClass(id, instanceClass, applyImmediately);
    if (!instance) throw new RdsFault('DBInstanceNotFound', `DBInstance ${id} not found.`, 404);
    return { DBInstance: renderInstance(ctx, instance, cluster) };
  },

  DescribeEvents(ctx) {
    const { p } = ctx;
    const sourceId = p.get('SourceIdentifier');
    const sourceType = p.get('SourceType');
    if (sourceType !== undefined && !SOURCE_TYPES.has(sourceType)) {
      throw invalid(`Invalid SourceType: ${sourceType}`);
    }
    // As in RDS: a source identifier alone is ambiguous (a cluster and an instance may share it).
    if (sourceId !== undefined && sourceType === undefined) {
      throw new RdsFault(
        'InvalidParameterCombination',
        'Cannot specify source identifier without source type',
      );
    }
    // The window: StartTime..EndTime; a missing end is now (or StartTime + Duration), a
    // missing start is the end minus Duration minutes (default 60).
    const duration = p.int('Duration', 0, 20160);
    const startTime = p.time('StartTime');
    let end = p.time('EndTime');
    if (end === undefined) {
      end = startTime !== undefined && duration !== undefined ? startTime + duration * 60_000 : Date.now();
    }
    const start = startTime ?? end - (duration ?? 60) * 60_000;
    const categories = new Set(p.list('EventCategories'));
    const events = ctx.control
      .events()
      .map((e) => ({ e, at: Date.parse(e.date) }))
      .filter(
        ({ e, at }) =>
          at >= start &&
          at <= end &&
          (sourceType === undefined || e.sourceType === sourceType) &&
          (sourceId === undefined || e.sourceIdentifier === idOf(sourceId)) &&
          (categories.size === 0 || e.eventCategories.some((c) => categories.has(c))),
      )
      .sort((a, b) => a.at - b.at)
      .map(({ e }) => e);
    const { items, marker } = page(events, p);
    return { Events: { Event: items.map(renderEvent) }, Marker: marker };
  },

  DescribeBlueGreenDeployments(ctx) {
    const id = ctx.p.get('BlueGreenDeploymentIdentifier');
    let found = ctx.control.blueGreenDeployments();
    if (id !== undefined) {
      found = found.filter((b) => b.id === idOf(id));
      if (found.length === 0)
        throw new RdsFault(
          'BlueGreenDeploymentNotFoundFault',
          `BlueGreenDeploymentIdentifier ${id} doesn't refer to an existing blue/green deployment.`,
          404,
        );
    }
    found = applyFilters(found, ctx.p.filters(), {
      'blue-green-deployment-identifier': (b) => b.id,
      'blue-green-deployment-name': (b) => b.name,
      source: (b) => arn(ctx, 'cluster', b.sourceClusterId),
      target: (b) => arn(ctx, 'cluster', b.targetClusterId),
    });
    const { items, marker } = page(found, ctx.p);
    return { BlueGreenDeployments: { member: items.map((b) => renderBlueGreen(ctx, b)) }, Marker: marker };
  },

  SwitchoverBlueGreenDeployment(ctx) {
    const id = idOf(ctx.p.required('BlueGreenDeploymentIdentifier'));
    const timeout = ctx.p.int('SwitchoverTimeout', 30, 3600) ?? 300;
    return { BlueGreenDeployment: renderBlueGreen(ctx, ctx.control.switchoverBlueGreen(id, timeout)) };
  },

  DescribeGlobalClusters(ctx) {
    const id = ctx.p.get('GlobalClusterIdentifier');
    let found = id === undefined ? ctx.control.globalClusters() : [findGlobalCluster(ctx, id)];
    found = applyFilters(found, ctx.p.filters(), { 'global-cluster-id': (g) => g.id });
    const { items, marker } = page(found, ctx.p);
    return {
      GlobalClusters: { GlobalClusterMember: items.map((g) => renderGlobalCluster(ctx, g)) },
      Marker: marker,
    };
  },

  SwitchoverGlobalCluster(ctx) {
    const g = findGlobalCluster(ctx, ctx.p.required('GlobalClusterIdentifier'));
    const target = idOf(ctx.p.required('TargetDbClusterIdentifier'));
    return { GlobalCluster: renderGlobalCluster(ctx, ctx.control.globalSwitchover(g.id, target, false)) };
  },

  FailoverGlobalCluster(ctx) {
    const g = findGlobalCluster(ctx, ctx.p.required('GlobalClusterIdentifier'));
    const target = idOf(ctx.p.required('TargetDbClusterIdentifier'));
    const allowDataLoss = ctx.p.bool('AllowDataLoss');
    const switchover = ctx.p.bool('Switchover');
    if (allowDataLoss !== undefined && switchover !== undefined)
      throw new RdsFault(
        'InvalidParameterCombination',
        'Specify either AllowDataLoss or Switchover, not both.',
      );
    // Without AllowDataLoss the operation is a switchover (RDS's default).
    return {
      GlobalCluster: renderGlobalCluster(
        ctx,
        ctx.control.globalSwitchover(g.id, target, allowDataLoss === true),
      ),
    };
  },

  DescribeDBProxyTargets(ctx) {
    const name = idOf(ctx.p.required('DBProxyName'));
    const cluster = ctx.control.clusters().find((c) => c.proxy?.name === name);
    const proxy = cluster?.proxy;
    if (!cluster || !proxy) throw new RdsFault('DBProxyNotFoundFault', `DBProxy ${name} not found.`, 404);
    const group = ctx.p.get('TargetGroupName');
    if (group !== undefined && group !== 'default') {
      throw new RdsFault('DBProxyTargetGroupNotFoundFault', `DBProxy target group ${group} not found.`, 404);
    }
    const target = cluster.instances.find((i) => i.id === proxy.targetInstanceId);
    const unavailable = proxy.targetState === 'UNAVAILABLE';
    const { items, marker } = page([proxy], ctx.p);
    return {
      Targets: {
        member: items.map((x) => ({
          TargetArn: arn(ctx, 'target', `${x.name}-${x.targetInstanceId}`),
          Endpoint: target?.dnsName,
          TrackedClusterId: cluster.id,
          RdsResourceId: x.targetInstanceId,
          Port: target?.port ?? cluster.port,
          Type: 'RDS_INSTANCE',
          Role: 'READ_WRITE',
          TargetHealth: {
            State: x.targetState,
            Reason: unavailable ? 'CONNECTION_FAILED' : undefined,
            Description: unavailable
              ? 'Database connection failed; the proxy is holding requests.'
              : undefined,
          },
        })),
      },
      Marker: marker,
    };
  },
};

// ---------------------------------------------------------------------------------------
// HTTP.

interface Reply {
  status: number;
  body: string;
  requestId: string;
}

function handle(control: LabControl, raw: URLSearchParams): Reply {
  const requestId = randomUUID();
  const action = raw.get('Action');
  try {
    if (!action) throw new RdsFault('MissingAction', 'The request must contain the parameter Action');
    const fault = control.apiFault?.(action);
    if (fault) throw fault;
    const handler = Object.hasOwn(actions, action) ? actions[action] : undefined;
    if (!handler)
      throw new RdsFault('InvalidAction', `The action ${action} is not valid for this web service.`);
    const result = handler({ control, p: new Params(raw) });
    const body =
      `<${action}Response xmlns="${XMLNS}">${xml(`${action}Result`, result)}` +
      `${xml('ResponseMetadata', { RequestId: requestId })}</${action}Response>`;
    return { status: 200, body, requestId };
  } catch (err) {
    const fault =
      err instanceof RdsFault
        ? err
        : new RdsFault('InternalFailure', `Internal error: ${(err as Error)?.message ?? String(err)}`, 500);
    const error = {
      Type: fault.httpStatus >= 500 ? 'Receiver' : 'Sender',
      Code: WIRE_CODES[fault.code] ?? fault.code,
      Message: fault.message,
    };
    const body = `<ErrorResponse xmlns="${XMLNS}">${xml('Error', error)}${xml('RequestId', requestId)}</ErrorResponse>`;
    return { status: fault.httpStatus, body, requestId };
  }
}

export async function startRdsApi(
  control: LabControl,
  opts: { host: string; port: number },
): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  // Keep bodies as text: the Query protocol's form encoding is parsed below, and any other
  // content type is read the same way rather than refused.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok'));
  app.route({
    method: ['GET', 'POST'],
    url: '/',
    handler: async (req, reply) => {
      // Parameters may come in the query string and (for POST) the form body; the body wins.
      const params = new URLSearchParams(req.url.split('?')[1] ?? '');
      if (typeof req.body === 'string') {
        for (const [k, v] of new URLSearchParams(req.body)) params.set(k, v);
      }
      const r = handle(control, params);
      return reply
        .code(r.status)
        .header('x-amzn-RequestId', r.requestId)
        .type('text/xml')
        .send(`<?xml version="1.0" encoding="UTF-8"?>\n${r.body}`);
    },
  });

  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return { url: `http://${host}:${port}`, close: () => app.close() };
}
