// The local Aurora-like lab: real PostgreSQL / MariaDB clusters on loopback addresses,
// endpoint names in a real DNS server, PgBouncer as the proxy, and the Aurora failover
// sequence performed step by step with its ground-truth timeline recorded.
import { appendFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  announceLabMysqlWriter,
  emulateAuroraPgTopology,
  emulateLabMysqlTopology,
} from './aurora-topology.ts';
import { DELAY_PROFILES, type DelayProfile, type FailoverDelays, type FailoverProfile } from './delays.ts';
import {
  type DnsRecord,
  type DnsServer,
  LAB_ZONE,
  startDns,
  stopDns,
  updateCname,
  updateRecords,
} from './dns.ts';
import {
  type EngineOps,
  fenceAndDrainMariadb,
  mariadbOps,
  postgresOps,
  type ServerHandle,
} from './engines.ts';
import { LabError, tcpReachable } from './exec.ts';
import {
  enableLabIamOnWriter,
  type IamService,
  installLabIam,
  labIamInfo,
  removeIamServices,
} from './iam.ts';
import {
  type GroundTruthStep,
  type LabBlueGreen,
  type LabCluster,
  type LabControl,
  type LabEngine,
  type LabEvent,
  type LabGlobalCluster,
  type LabInstance,
  RdsFault,
} from './model.ts';
import { type Bouncer, pause, retargetAndResume, startBouncer, stopBouncer } from './pgbouncer.ts';
import { LAB_DB_NAME, LAB_DB_USER, PG_USER, userIds } from './postgres.ts';
import { type CertificateAuthority, issueServerCertificate, makeCa, type ServerTls } from './tls.ts';

export type LabEngineName = 'postgresql' | 'mysql';
export const LAB_CLUSTER_KINDS = ['aurora', 'multi-az-db-cluster', 'multi-az-instance'] as const;
export type LabClusterKind = (typeof LAB_CLUSTER_KINDS)[number];
/** A Multi-AZ DB cluster has a writer and exactly two readable standbys. */
export const MULTI_AZ_READERS = 2;
/** A Multi-AZ DB instance has one primary and one standby (not readable, hidden from the API). */
export const MULTI_AZ_INSTANCE_STANDBYS = 1;

export interface LabOptions {
  dir: string;
  engines: LabEngineName[];
  /** Readers per cluster (the writer comes on top). */
  readers: number;
  /**
   * What the clusters are: Aurora clusters (default), Multi-AZ DB clusters (RDS for
   * PostgreSQL / MySQL: Engine `postgres` / `mysql`, a writer and two readable standbys), or
   * Multi-AZ DB instances (one DB instance named like the cluster, whose endpoint names the
   * primary; the standby is hidden and takes over on RebootDBInstance with ForceFailover).
   */
  clusterKind?: LabClusterKind;
  /**
   * Each Aurora cluster gets a Blue/Green deployment: a green cluster (`<id>-green-lab000`,
   * same engine and instances, on addresses 50 above blue's) replicating from blue, ready for
   * SwitchoverBlueGreenDeployment.
   */
  blueGreen?: boolean;
  /**
   * Each Aurora cluster is the primary of a Global Database (`<id>-global`): a secondary
   * cluster `<id>-west` "in us-west-2" (ARNs say so; addresses 100 above the primary's)
   * replicating from it, and a global writer endpoint, for SwitchoverGlobalCluster and
   * FailoverGlobalCluster.
   */
  global?: boolean;
  /** First three octets of the lab's loopback addresses, e.g. `127.0.10`. */
  addressBase: string;
  /** Port of the DNS server on 127.0.0.1 (BIND listens only on interface addresses). */
  dnsPort: number;
  /** Port of the RDS API on `<addressBase>.1`. */
  apiPort: number;
  profile: DelayProfile;
  delays?: Partial<FailoverDelays>;
  /** What an accepted failover call does (default `aurora`; `noop`: nothing). */
  failoverProfile?: FailoverProfile;
  /** TLS on every server and the proxy, with certificates from a lab CA (like RDS). */
  tls: boolean;
  /** PostgreSQL and the proxy accept TLS clients only (rds.force_ssl=1, RDS PG 15+'s default). */
  forceSsl: boolean;
  /** MariaDB accepts TLS clients only (require_secure_transport; off by default, as on Aurora MySQL). */
  requireSecureTransport: boolean;
}

/** Faults the lab's RDS API injects, for tests of what a client does with them. */
export interface RdsApiFaults {
  /** Every request until then (epoch ms) gets 400 Throttling "Rate exceeded". */
  throttleUntilMs?: number;
  /** Requests answered with Throttling so far. */
  throttled: number;
}

export interface LabTlsState {
  enabled: boolean;
  /** PEM CA bundle: use it as tls.caFile, or put it in a Secret for tls.caSecretRef. */
  caFile?: string;
  forceSsl?: boolean;
  requireSecureTransport?: boolean;
}

export const DEFAULT_LAB_OPTIONS: Omit<LabOptions, 'dir'> = {
  engines: ['postgresql', 'mysql'],
  readers: 1,
  addressBase: '127.0.10',
  dnsPort: 10053,
  apiPort: 10080,
  profile: 'default',
  tls: true,
  forceSsl: true,
  requireSecureTransport: false,
};

/** The DBInstanceClass every lab instance starts with. */
export const LAB_INSTANCE_CLASS = 'db.r6g.large';

/** Aurora-style random-looking part of endpoint names, fixed for the lab. */
export const LAB_DOMAIN_ID = 'cfwlab0';
const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
/** How RDS names a green environment's resources: `<blue name>-green-<6 characters>`. */
export const GREEN_SUFFIX = 'green-lab000';
/** ... and blue's after a switchover. */
export const OLD_BLUE_SUFFIX = 'old1';
/** Green instances listen 50 addresses above their blue instance. */
const GREEN_OCTET_OFFSET = 50;

const clusterEndpointName = (id: string) => `${id}.cluster-${LAB_DOMAIN_ID}.${LAB_ZONE}`;
const readerEndpointName = (id: string) => `${id}.cluster-ro-${LAB_DOMAIN_ID}.${LAB_ZONE}`;
const instanceDnsName = (id: string) => `${id}.${LAB_DOMAIN_ID}.${LAB_ZONE}`;

/** The Blue/Green deployment identifier of a blue cluster (RDS: `bgd-` and 16 characters). */
export function blueGreenIdOf(blueClusterId: string): string {
  return `bgd-${blueClusterId.replace(/[^a-z0-9]/g, '')}`.padEnd(20, '0');
}

/** The green environment of a planned blue cluster: same engine and members, its own names. */
function planGreen(blue: LabCluster, addr: (octet: number) => string): LabCluster {
  const green = (id: string) => `${id}-${GREEN_SUFFIX}`;
  const instances = blue.instances.map((i) => ({
    ...i,
    id: green(i.id),
    host: addr(Number(i.host.split('.').at(-1)) + GREEN_OCTET_OFFSET),
    dnsName: instanceDnsName(green(i.id)),
  }));
  const id = green(blue.id);
  return {
    id,
    engine: blue.engine,
    kind: blue.kind,
    engineVersion: blue.engineVersion,
    status: 'creating',
    endpoint: clusterEndpointName(id),
    readerEndpoint: readerEndpointName(id),
    port: blue.port,
    instances,
    writerId: instances[0]!.id,
    masterUsername: blue.masterUsername,
    databaseName: blue.databaseName,
    clusterCreateTime: new Date().toISOString(),
  };
}

/** The Global Database secondary's region, its name suffix, and its addresses' offset. */
export const SECONDARY_REGION = 'us-west-2';
const SECONDARY_SUFFIX = 'west';
const SECONDARY_OCTET_OFFSET = 100;
const globalEndpointName = (id: string) => `${id}.global-${LAB_DOMAIN_ID}.${LAB_ZONE}`;

/** A Global Database's secondary cluster of a planned primary: same engine and members. */
function planSecondary(primary: LabCluster, addr: (octet: number) => string): LabCluster {
  const id = `${primary.id}-${SECONDARY_SUFFIX}`;
  const instances = primary.instances.map((i, k) => ({
    ...i,
    id: `${id}-${k + 1}`,
    host: addr(Number(i.host.split('.').at(-1)) + SECONDARY_OCTET_OFFSET),
    dnsName: instanceDnsName(`${id}-${k + 1}`),
    availabilityZone: `${SECONDARY_REGION}${'abc'[k % 3]}`,
  }));
  return {
    id,
    engine: primary.engine,
    kind: primary.kind,
    engineVersion: primary.engineVersion,
    status: 'creating',
    endpoint: clusterEndpointName(id),
    readerEndpoint: readerEndpointName(id),
    port: primary.port,
    instances,
    writerId: instances[0]!.id,
    masterUsername: primary.masterUsername,
    databaseName: primary.databaseName,
    clusterCreateTime: new Date().toISOString(),
    region: SECONDARY_REGION,
    globalRole: 'secondary',
  };
}

/** Every name a client may dial on a cluster (its certificate's names). */
function clusterNames(c: LabCluster): string[] {
  return [
    c.endpoint,
    c.readerEndpoint,
    ...(c.proxy ? [c.proxy.endpoint] : []),
    ...c.instances.map((i) => i.dnsName),
    ...c.instances.map((i) => i.host),
    ...(c.proxy ? [c.proxy.host] : []),
  ];
}

/** Blue's names after a switchover: `<id>-old1` for the cluster and each instance. */
function oldBlueNames(blue: LabCluster): string[] {
  const old = (id: string) => `${id}-${OLD_BLUE_SUFFIX}`;
  return [
    clusterEndpointName(old(blue.id)),
    readerEndpointName(old(blue.id)),
    ...blue.instances.map((i) => instanceDnsName(old(i.id))),
  ];
}

interface ClusterRuntime {
  model: LabCluster;
  ops: EngineOps;
  /** By instance id (re-keyed when a Blue/Green switchover renames the instances). */
  servers: Map<string, ServerHandle>;
  /** Held while a failover or reboot runs, so no two overlap. */
  busy: boolean;
}

export interface FailoverRequest {
  clusterId: string;
  targetInstanceId?: string;
  /** `crash`: the writer is killed (SIGKILL-like) and nothing waits for the reader. */
  mode?: 'clean' | 'crash';
}

export class Lab implements LabControl {
  readonly region = REGION;
  readonly accountId = ACCOUNT;
  readonly options: LabOptions;
  readonly delays: FailoverDelays;
  readonly dns: DnsServer;
  private readonly runtimes = new Map<string, ClusterRuntime>();
  private readonly blueGreenList: LabBlueGreen[] = [];
  private readonly globalList: LabGlobalCluster[] = [];
  private readonly eventLog: LabEvent[] = [];
  readonly groundTruth: GroundTruthStep[] = [];
  private failoverCount = 0;
  /** Per cluster id: the certificate its servers and proxy present (when TLS is on). */
  private readonly certificates = new Map<string, ServerTls>();
  private running: Promise<void>[] = [];
  failoverProfile: FailoverProfile;
  readonly apiFaults: RdsApiFaults = { throttled: 0 };
  pids: { dns?: number } = {};
  /** PAM services checking IAM tokens (src/lab/iam.ts); empty when not root. */
  iamServices: IamService[] = [];
  onChange: () => void = () => {};

  constructor(options: LabOptions) {
    this.options = options;
    this.delays = { ...DELAY_PROFILES[options.profile], ...options.delays };
    this.failoverProfile = options.failoverProfile ?? 'aurora';
    this.dns = { dir: join(options.dir, 'dns'), host: '127.0.0.1', port: options.dnsPort };
  }

  addr(octet: number): string {
    return `${this.options.addressBase}.${octet}`;
  }

  get apiHost(): string {
    return this.addr(1);
  }

  /** Every address:port the lab will listen on, for the "already taken" preflight. */
  plannedListeners(): { host: string; port: number; what: string }[] {
    const out = [
      { host: this.dns.host, port: this.dns.port, what: 'DNS server' },
      { host: this.apiHost, port: this.options.apiPort, what: 'RDS API' },
    ];
    for (const c of this.plannedClusters())
      for (const i of c.instances) out.push({ host: i.host, port: i.port, what: `instance ${i.id}` });
    for (const c of this.plannedClusters())
      if (c.proxy) out.push({ host: c.proxy.host, port: c.proxy.port, what: `proxy ${c.proxy.name}` });
    return out;
  }

  /** Blue clusters, each followed by its green cluster when the lab has Blue/Green deployments. */
  private plannedClusters(): LabCluster[] {
    return this.options.engines.flatMap((engine) => {
      const blue = this.planCluster(engine);
      if (this.options.global) {
        blue.globalRole = 'primary';
        return [blue, planSecondary(blue, (o) => this.addr(o))];
      }
      return this.options.blueGreen ? [blue, planGreen(blue, (o) => this.addr(o))] : [blue];
    });
  }

  private planCluster(name: LabEngineName): LabCluster {
    const engine: LabEngine = name === 'postgresql' ? 'aurora-postgresql' : 'aurora-mysql';
    const id = name === 'postgresql' ? 'lab-pg' : 'lab-my';
    const firstOctet = name === 'postgresql' ? 11 : 31;
    const port = name === 'postgresql' ? 5432 : 3306;
    const instances: LabInstance[] = [];
    for (let i = 0; i <= this.options.readers; i++) {
      const instId = `${id}-${i + 1}`;
      instances.push({
        id: instId,
        host: this.addr(firstOctet + i),
        port,
        dnsName: `${instId}.${LAB_DOMAIN_ID}.${LAB_ZONE}`,
        availabilityZone: `${REGION}${'abc'[i % 3]}`,
        status: 'creating',
        instanceClass: LAB_INSTANCE_CLASS,
      });
    }
    const cluster: LabCluster = {
      id,
      engine,
      kind: this.options.clusterKind ?? 'aurora',
      engineVersion: name === 'postgresql' ? '15.lab' : '10.11.lab',
      status: 'creating',
      // A Multi-AZ DB instance's endpoint is the instance's own name; it follows the primary.
      endpoint:
        this.options.clusterKind === 'multi-az-instance'
          ? `${id}.${LAB_DOMAIN_ID}.${LAB_ZONE}`
          : `${id}.cluster-${LAB_DOMAIN_ID}.${LAB_ZONE}`,
      readerEndpoint: `${id}.cluster-ro-${LAB_DOMAIN_ID}.${LAB_ZONE}`,
      aliasEndpoint: `${id}.alias.${LAB_ZONE}`,
      port,
      instances,
      writerId: instances[0]!.id,
      masterUsername: LAB_DB_USER,
      databaseName: LAB_DB_NAME,
      clusterCreateTime: new Date().toISOString(),
    };
    if (name === 'postgresql')
      cluster.proxy = {
        name: `${id}-proxy`,
        endpoint: `${id}-proxy.proxy-${LAB_DOMAIN_ID}.${LAB_ZONE}`,
        host: this.addr(20),
        port: 6432,
        targetInstanceId: instances[0]!.id,
        targetState: 'AVAILABLE',
      };
    return cluster;
  }

  private serverFor(model: LabCluster, inst: LabInstance, index: number): ServerHandle {
    const runDir = join(this.options.dir, inst.id);
    const tls = this.certificates.get(model.id);
    return {
      dataDir: join(runDir, 'data'),
      runDir,
      host: inst.host,
      port: inst.port,
      serverId: index + 1,
      ...(tls ? { tls } : {}),
    };
  }

  /** Where the lab's CA certificate is (the "RDS CA bundle" clients verify against). */
  get caFile(): string {
    return join(this.options.dir, 'tls', 'ca.crt');
  }

  /**
   * The lab CA and one server certificate per cluster, for every name a client may dial: the
   * cluster, reader and proxy endpoints, the instance names, and the instance and proxy
   * addresses (PgBouncer verifies the servers by address). The alias name stays out, as a
   * CNAME of one's own stays out of an RDS certificate.
   */
  private makeCertificates(clusters: LabCluster[]): void {
    const dir = join(this.options.dir, 'tls');
    const ca: CertificateAuthority = makeCa(dir, 'failwatch lab CA');
    for (const c of clusters) {
      // A Blue/Green pair serves each other's names after a switchover: one set for both.
      const blue = clusters.find((b) => c.id === `${b.id}-${GREEN_SUFFIX}`) ?? c;
      const green = clusters.find((g) => g.id === `${blue.id}-${GREEN_SUFFIX}`);
      // A Global Database's clusters both answer to the global writer endpoint.
      const primary = clusters.find((p) => c.id === `${p.id}-${SECONDARY_SUFFIX}`) ?? c;
      const secondary = clusters.find((x) => x.id === `${primary.id}-${SECONDARY_SUFFIX}`);
      const names = green
        ? [...new Set([...clusterNames(blue), ...clusterNames(green), ...oldBlueNames(blue)])]
        : secondary
          ? [
              ...new Set([
                ...clusterNames(primary),
                ...clusterNames(secondary),
                globalEndpointName(`${primary.id}-global`),
              ]),
            ]
          : clusterNames(c);
      const owner = userIds(c.engine === 'aurora-postgresql' ? PG_USER : 'mysql');
      const cert = issueServerCertificate(ca, dir, c.id, names, owner);
      const enforce =
        c.engine === 'aurora-postgresql' ? this.options.forceSsl : this.options.requireSecureTransport;
      this.certificates.set(c.id, { ...cert, enforce });
    }
  }

  /** Fails with one clear line if something the lab needs is already listening. */
  async checkListenersFree(): Promise<void> {
    for (const l of this.plannedListeners())
      if (await tcpReachable(l.host, l.port))
        throw new LabError(
          `${l.host}:${l.port} (${l.what}) is already in use: stop what listens there, or choose other addresses with --address-base / --dns-port / --api-port`,
        );
  }

  /** Starts every cluster, its proxy and the DNS server. Steps are persisted as they happen. */
  async up(): Promise<void> {
    mkdirSync(this.options.dir, { recursive: true, mode: 0o755 });
    const clusters = this.plannedClusters();
    if (this.options.blueGreen && (this.options.clusterKind ?? 'aurora') !== 'aurora')
      throw new LabError(
        'Blue/Green deployments in the lab are made of Aurora clusters: drop --cluster-kind',
      );
    if (this.options.tls) this.makeCertificates(clusters);
    const greens = new Set(
      clusters
        .filter((c) => c.id.endsWith(`-${GREEN_SUFFIX}`) || c.globalRole === 'secondary')
        .map((c) => c.id),
    );
    // One IAM service per engine: the blue clusters' names (green ones take them at switchover).
    this.iamServices = installLabIam(
      this.options.dir,
      clusters.filter((c) => !greens.has(c.id)),
    );
    for (const model of clusters) {
      const ops = model.engine === 'aurora-postgresql' ? postgresOps : mariadbOps;
      this.runtimes.set(model.id, { model, ops, servers: new Map(), busy: false });
    }
    this.onChange();
    // Clusters are independent: bring them up in parallel (the 2-core budget is the limit); a
    // green cluster replicates from its blue one, so it follows it.
    await Promise.all(
      [...this.runtimes.values()]
        .filter((rt) => !greens.has(rt.model.id))
        .map(async (rt) => {
          await this.upCluster(rt);
          const secondary = this.runtimes.get(`${rt.model.id}-${SECONDARY_SUFFIX}`);
          if (secondary) {
            await this.upGreen(secondary, rt);
            this.globalList.push({
              id: `${rt.model.id}-global`,
              primaryClusterId: rt.model.id,
              secondaryClusterIds: [secondary.model.id],
              status: 'available',
              endpoint: globalEndpointName(`${rt.model.id}-global`),
              engine: rt.model.engine,
              engineVersion: rt.model.engineVersion,
            });
            return;
          }
          const green = this.runtimes.get(`${rt.model.id}-${GREEN_SUFFIX}`);
          if (!green) return;
          await this.upGreen(green, rt);
          this.blueGreenList.push({
            id: blueGreenIdOf(rt.model.id),
            name: `${rt.model.id}-upgrade`,
            sourceClusterId: rt.model.id,
            targetClusterId: green.model.id,
            status: 'AVAILABLE',
            createTime: new Date().toISOString(),
          });
        }),
    );
    this.pids.dns = await startDns(this.dns, this.dnsRecords());
    for (const rt of this.runtimes.values()) rt.model.status = 'available';
    this.onChange();
  }

  private async upCluster(rt: ClusterRuntime): Promise<void> {
    const { model, ops } = rt;
    const [writer, ...readers] = model.instances;
    const ws = this.serverFor(model, writer!, 0);
    rt.servers.set(writer!.id, ws);
    await ops.initWriter(ws);
    if (model.kind === 'aurora' && model.engine === 'aurora-postgresql')
      await emulateAuroraPgTopology(ws, model.instances);
    if (model.kind === 'aurora' && model.engine === 'aurora-mysql')
      await emulateLabMysqlTopology(ws, model.instances, writer!.id);
    await enableLabIamOnWriter(model, ws, this.iamServices);
    writer!.status = 'available';
    this.onChange();
    await Promise.all(
      readers.map(async (r, i) => {
        const rs = this.serverFor(model, r, i + 1);
        rt.servers.set(r.id, rs);
        await ops.initReader(rs, ws);
        r.status = 'available';
        this.onChange();
      }),
    );
    if (model.proxy) await startBouncer(this.bouncer(model), writer!);
  }

  /**
   * The green cluster of a Blue/Green deployment (or a Global Database's secondary): its writer
   * replicates from blue's writer and its readers from its writer (cascading), all read-only
   * until a switchover promotes it.
   */
  private async upGreen(green: ClusterRuntime, blue: ClusterRuntime): Promise<void> {
    const blueWriter = blue.servers.get(blue.model.writerId)!;
    const [writer, ...readers] = green.model.instances;
    // Server ids from 101: MariaDB replication needs them distinct from blue's.
    const ws = this.serverFor(green.model, writer!, 100);
    green.servers.set(writer!.id, ws);
    await green.ops.initReader(ws, blueWriter);
    writer!.status = 'available';
    this.onChange();
    await Promise.all(
      readers.map(async (r, i) => {
        const rs = this.serverFor(green.model, r, 101 + i);
        green.servers.set(r.id, rs);
        await green.ops.initReader(rs, ws);
        r.status = 'available';
        this.onChange();
      }),
    );
  }

  bouncer(model: LabCluster): Bouncer {
    const tls = this.certificates.get(model.id);
    return {
      dir: join(this.options.dir, model.proxy!.name),
      host: model.proxy!.host,
      port: model.proxy!.port,
      ...(tls ? { tls } : {}),
    };
  }

  private dnsRecords(): DnsRecord[] {
    const out: DnsRecord[] = [];
    for (const { model } of this.runtimes.values()) {
      for (const i of model.instances) out.push({ name: i.dnsName, type: 'A', value: i.host });
      out.push({ name: model.endpoint, type: 'CNAME', value: this.instance(model, model.writerId).dnsName });
      out.push({ name: model.readerEndpoint, type: 'CNAME', value: this.readerTarget(model).dnsName });
      if (model.proxy) out.push({ name: model.proxy.endpoint, type: 'A', value: model.proxy.host });
      if (model.aliasEndpoint) out.push({ name: model.aliasEndpoint, type: 'CNAME', value: model.endpoint });
    }
    for (const g of this.globalList)
      out.push({ name: g.endpoint, type: 'CNAME', value: this.runtime(g.primaryClusterId).model.endpoint });
    return out;
  }

  /** The instance the reader endpoint names: the first reader (Aurora rotates among them). */
  private readerTarget(model: LabCluster): LabInstance {
    return model.instances.find((i) => i.id !== model.writerId) ?? this.instance(model, model.writerId);
  }

  private instance(model: LabCluster, id: string): LabInstance {
    const inst = model.instances.find((i) => i.id === id);
    if (!inst) throw new RdsFault('DBInstanceNotFound', `DBInstance ${id} not found.`, 404);
    return inst;
  }

  clusters(): LabCluster[] {
    return [...this.runtimes.values()].map((rt) => rt.model);
  }

  events(): LabEvent[] {
    return this.eventLog;
  }

  private runtime(clusterId: string): ClusterRuntime {
    const rt = this.runtimes.get(clusterId);
    if (!rt) throw new RdsFault('DBClusterNotFoundFault', `DBCluster ${clusterId} not found.`, 404);
    return rt;
  }

  private emit(source: LabEvent['sourceType'], id: string, message: string, category: string) {
    // A Multi-AZ DB instance is one DB instance to RDS: its events are that instance's, in its words.
    const single = [...this.runtimes.values()].find(
      (rt) =>
        rt.model.kind === 'multi-az-instance' &&
        (rt.model.id === id || rt.model.instances.some((i) => i.id === id)),
    );
    if (single) {
      if (/A new writer was promoted/.test(message)) return;
      source = 'db-instance';
      id = single.model.id;
      if (/^Started cross AZ failover/.test(message)) message = 'Multi-AZ instance failover started.';
      else if (/^Completed failover/.test(message)) message = 'Multi-AZ instance failover completed.';
    }
    const kind = source === 'db-cluster' ? 'cluster' : source === 'db-instance' ? 'db' : 'deployment';
    this.eventLog.push({
      sourceIdentifier: id,
      sourceType: source,
      message,
      eventCategories: [category],
      date: new Date().toISOString(),
      sourceArn: `arn:aws:rds:${this.runtimes.get(id)?.model.region ?? REGION}:${ACCOUNT}:${kind}:${id}`,
    });
    this.onChange();
  }

  private record(cluster: string, failover: number, step: GroundTruthStep['step'], detail?: string): void {
    const atMs = Date.now();
    const entry: GroundTruthStep = {
      cluster,
      failover,
      step,
      at: new Date(atMs).toISOString(),
      atMs,
      detail,
    };
    this.groundTruth.push(entry);
    appendFileSync(join(this.options.dir, 'ground-truth.jsonl'), `${JSON.stringify(entry)}\n`);
    this.onChange();
  }

  failoverCluster(clusterId: string, targetInstanceId?: string): LabCluster {
    return this.startFailover({ clusterId, targetInstanceId });
  }

  /** Validates like RDS, then runs the sequence in the background (the API call returns at once). */
  startFailover(req: FailoverRequest): LabCluster {
    const rt = this.runtime(req.clusterId);
    const { model } = rt;
    if (rt.busy || model.status !== 'available')
      throw new RdsFault(
        'InvalidDBClusterStateFault',
        `DB cluster ${model.id} is not in an available state (current status: ${model.status}).`,
      );
    let target: LabInstance | undefined;
    if (req.targetInstanceId) {
      target = model.instances.find((i) => i.id === req.targetInstanceId);
      if (!target)
        throw new RdsFault(
          'InvalidParameterValue',
          `The target instance ${req.targetInstanceId} is not a member of DB cluster ${model.id}.`,
        );
      if (target.id === model.writerId)
        throw new RdsFault(
          'InvalidParameterValue',
          `The target instance ${target.id} is already the writer.`,
        );
    } else target = model.instances.find((i) => i.id !== model.writerId);
    if (!target)
      throw new RdsFault(
        'InvalidDBClusterStateFault',
        `DB cluster ${model.id} has no reader to fail over to.`,
      );
    if (this.failoverProfile === 'noop') {
      this.record(model.id, ++this.failoverCount, 'failover-ignored', `target ${target.id}, profile noop`);
      return model;
    }
    rt.busy = true;
    model.status = 'failing-over';
    const n = ++this.failoverCount;
    this.record(model.id, n, 'failover-requested', `target ${target.id}, mode ${req.mode ?? 'clean'}`);
    this.emit('db-cluster', model.id, `Started cross AZ failover to DB instance: ${target.id}`, 'failover');
    const done = this.runFailover(rt, target, n, req.mode ?? 'clean')
      .catch(async (err: Error) => {
        model.status = 'available';
        this.record(model.id, n, 'failover-failed', err.message);
        this.emit('db-cluster', model.id, `Failover failed: ${err.message}`, 'failure');
        // Never leave the proxy holding queries: release it onto whichever writer the model has now.
        if (model.proxy?.targetState === 'UNAVAILABLE') {
          const writer = this.instance(model, model.writerId);
          await retargetAndResume(this.bouncer(model), writer).catch(() => {});
          model.proxy.targetInstanceId = writer.id;
          model.proxy.targetState = 'AVAILABLE';
          this.record(model.id, n, 'proxy-resumed', `${writer.id} (after the failed failover)`);
        }
      })
      .finally(() => {
        rt.busy = false;
        this.onChange();
      });
    this.running.push(done);
    return model;
  }

  private async runFailover(rt: ClusterRuntime, target: LabInstance, n: number, mode: 'clean' | 'crash') {
    const { model, ops } = rt;
    const d = this.delays;
    const t0 = Date.now();
    const oldWriter = this.instance(model, model.writerId);
    const oldWs = rt.servers.get(oldWriter.id)!;
    const newWs = rt.servers.get(target.id)!;
    await sleep(d.stopOldWriterMs);

    if (model.proxy) {
      await pause(this.bouncer(model));
      model.proxy.targetState = 'UNAVAILABLE';
      this.record(model.id, n, 'proxy-paused');
    }
    if (mode === 'clean' && model.engine === 'aurora-mysql') await fenceAndDrainMariadb(oldWs, newWs);
    oldWriter.status = 'rebooting';
    await ops.stopWriter(oldWs, mode);
    this.record(model.id, n, 'old-writer-stopped', oldWriter.id);

    await sleep(d.promoteMs);
    target.status = 'rebooting';
    await ops.promote(newWs, () =>
      this.record(model.id, n, 'new-writer-promoted', `${target.id} restarting as writer`),
    );
    model.writerId = target.id;
    target.status = 'available';
    // Aurora MySQL's topology as the lab keeps it for MariaDB (aurora-topology.ts).
    if (model.kind === 'aurora' && model.engine === 'aurora-mysql')
      await announceLabMysqlWriter(newWs, target.id).catch(() => {});
    this.record(model.id, n, 'new-writer-accepting-writes', target.id);
    for (const other of model.instances)
      if (other.id !== target.id && other.id !== oldWriter.id)
        await ops.follow(rt.servers.get(other.id)!, newWs);
    // A Blue/Green deployment's green writer (a Global Database's secondary) replicates from
    // blue's (the primary's) writer, whichever it is.
    const green = this.greenOf(model.id);
    if (green) await green.ops.follow(green.servers.get(green.model.writerId)!, newWs);
    if (model.proxy) {
      await retargetAndResume(this.bouncer(model), target);
      model.proxy.targetInstanceId = target.id;
      model.proxy.targetState = 'AVAILABLE';
      this.record(model.id, n, 'proxy-resumed', target.id);
    }

    await sleep(d.demoteMs);
    await ops.demote(oldWs, newWs);
    oldWriter.status = 'available';
    this.record(model.id, n, 'old-writer-restarted-as-reader', oldWriter.id);
    this.emit(
      'db-instance',
      oldWriter.id,
      'A new writer was promoted. Restarting database as a reader.',
      'failover',
    );

    await sleep(Math.max(d.staleEndpointMinMs, t0 + d.clusterEndpointMs - Date.now()));
    await updateCname(this.dns, model.endpoint, target.dnsName);
    this.record(model.id, n, 'cluster-endpoint-updated', target.dnsName);

    await sleep(d.readerEndpointMs);
    const reader = this.readerTarget(model);
    await updateCname(this.dns, model.readerEndpoint, reader.dnsName);
    this.record(model.id, n, 'reader-endpoint-updated', reader.dnsName);

    await sleep(d.completeMs);
    this.emit('db-cluster', model.id, `Completed failover to DB instance: ${target.id}`, 'failover');
    model.status = 'available';
    this.record(model.id, n, 'failover-completed', target.id);
  }

  /** The green cluster of a blue one whose deployment has not switched over yet. */
  private greenOf(blueId: string): ClusterRuntime | undefined {
    const bg = this.blueGreenList.find((b) => b.sourceClusterId === blueId && b.status === 'AVAILABLE');
    if (bg) return this.runtimes.get(bg.targetClusterId);
    const g = this.globalList.find((x) => x.primaryClusterId === blueId && x.status === 'available');
    return g ? this.runtimes.get(g.secondaryClusterIds[0]!) : undefined;
  }

  blueGreenDeployments(): LabBlueGreen[] {
    return this.blueGreenList;
  }

  /** Validates like RDS, then switches over in the background (the API call returns at once). */
  switchoverBlueGreen(id: string, timeoutSeconds: number): LabBlueGreen {
    const bg = this.blueGreenList.find((b) => b.id === id);
    if (!bg)
      throw new RdsFault(
        'BlueGreenDeploymentNotFoundFault',
        `BlueGreenDeploymentIdentifier ${id} doesn't refer to an existing blue/green deployment.`,
        404,
      );
    const blue = this.runtime(bg.sourceClusterId);
    const green = this.runtime(bg.targetClusterId);
    if (bg.status !== 'AVAILABLE' || blue.busy || green.busy || blue.model.status !== 'available')
      throw new RdsFault(
        'InvalidBlueGreenDeploymentStateFault',
        `The blue/green deployment ${id} can't be switched over in its current state (${bg.status}${blue.busy ? ', the source cluster is busy' : ''}).`,
      );
    const n = ++this.failoverCount;
    if (this.failoverProfile === 'noop') {
      this.record(blue.model.id, n, 'operation-ignored', `SwitchoverBlueGreenDeployment ${id}, profile noop`);
      return bg;
    }
    blue.busy = true;
    green.busy = true;
    bg.status = 'SWITCHOVER_IN_PROGRESS';
    this.record(
      blue.model.id,
      n,
      'switchover-requested',
      `${id}: ${blue.model.id} -> ${green.model.id}, timeout ${timeoutSeconds} s`,
    );
    this.emit('blue-green-deployment', id, 'Switchover started on blue/green deployment.', 'notification');
    const blueName = blue.model.id;
    const done = this.runSwitchover(bg, blue, green, n, Date.now() + timeoutSeconds * 1000)
      .catch(async (err: Error) => {
        // Rolled back: blue takes writes again, the proxy sends its clients on (wherever it is).
        const writer = blue.servers.get(blue.model.writerId)!;
        await blue.ops.unfence(writer).catch(() => {});
        await this.resumeHeldProxy([blue.model, green.model], n, 'after the failed switchover');
        // Before the renaming nothing changed for clients: as RDS does after a timeout, the
        // deployment is AVAILABLE again (a switchover may be retried); after it, FAILED.
        const renamed = bg.sourceClusterId !== blueName;
        bg.status = renamed ? 'SWITCHOVER_FAILED' : 'AVAILABLE';
        bg.statusDetails = `Switchover rolled back: ${err.message}`;
        this.record(blueName, n, 'switchover-failed', err.message);
        this.emit(
          'blue-green-deployment',
          id,
          `Switchover on blue/green deployment failed and was rolled back: ${err.message}`,
          'failure',
        );
      })
      .finally(() => {
        blue.busy = false;
        green.busy = false;
        this.onChange();
      });
    this.running.push(done);
    return bg;
  }

  /**
   * RDS's switchover: guardrails; blue stops taking writes and drops its connections; green
   * applies everything blue committed; green takes blue's names (blue's get `-old1`); green
   * takes writes. Blue stays up, read-only. Past `deadlineMs` before the renaming it rolls back.
   */
  private async runSwitchover(
    bg: LabBlueGreen,
    blue: ClusterRuntime,
    green: ClusterRuntime,
    n: number,
    deadlineMs: number,
  ): Promise<void> {
    const d = this.delays;
    const name = blue.model.id;
    const blueWriter = blue.servers.get(blue.model.writerId)!;
    const greenWriter = green.servers.get(green.model.writerId)!;
    await sleep(d.switchoverFenceMs);
    if (blue.model.proxy) {
      await pause(this.bouncer(blue.model));
      blue.model.proxy.targetState = 'UNAVAILABLE';
      this.record(name, n, 'proxy-paused');
    }
    await blue.ops.fence(blueWriter);
    this.record(name, n, 'blue-read-only', blue.model.writerId);
    await green.ops
      .waitCaughtUp(greenWriter, blueWriter, Math.max(1000, deadlineMs - Date.now()))
      .catch((err: Error) => {
        throw new LabError(`green did not catch up with blue within SwitchoverTimeout (${err.message})`);
      });
    this.record(name, n, 'green-caught-up', green.model.writerId);
    await sleep(d.switchoverRenameMs);
    if (Date.now() > deadlineMs)
      throw new LabError('the switchover did not reach the renaming within SwitchoverTimeout');
    await updateRecords(this.dns, this.renameForSwitchover(bg, blue, green));
    this.record(name, n, 'cluster-endpoint-updated', green.model.writerId);
    this.record(name, n, 'reader-endpoint-updated', this.readerTarget(green.model).id);
    await sleep(d.switchoverWritableMs);
    await green.ops.promoteInPlace(greenWriter);
    this.record(name, n, 'green-writable', green.model.writerId);
    const proxy = green.model.proxy;
    if (proxy) {
      const writer = this.instance(green.model, green.model.writerId);
      await retargetAndResume(this.bouncer(green.model), writer);
      proxy.targetInstanceId = writer.id;
      proxy.targetState = 'AVAILABLE';
      this.record(name, n, 'proxy-resumed', writer.id);
    }
    await sleep(d.switchoverCompleteMs);
    bg.status = 'SWITCHOVER_COMPLETED';
    this.emit(
      'blue-green-deployment',
      bg.id,
      'Switchover completed on blue/green deployment.',
      'notification',
    );
    this.record(name, n, 'switchover-completed', `${bg.sourceClusterId} -> ${bg.targetClusterId}`);
  }

  /**
   * Green takes blue's names (clusters, endpoints, instances by position, the proxy) and blue
   * gets `<name>-old1`; returns the DNS records that change, to be sent in one update.
   */
  private renameForSwitchover(bg: LabBlueGreen, blue: ClusterRuntime, green: ClusterRuntime): DnsRecord[] {
    const b = blue.model;
    const g = green.model;
    const old = (id: string) => `${id}-${OLD_BLUE_SUFFIX}`;
    const blueId = b.id;
    const blueInstanceIds = b.instances.map((i) => i.id);
    const renameInstances = (rt: ClusterRuntime, newIds: string[]) => {
      const servers = new Map<string, ServerHandle>();
      rt.model.instances.forEach((inst, k) => {
        const to = newIds[k] ?? `${inst.id}-${k}`;
        servers.set(to, rt.servers.get(inst.id)!);
        if (rt.model.writerId === inst.id) rt.model.writerId = to;
        inst.id = to;
        inst.dnsName = instanceDnsName(to);
      });
      rt.servers = servers;
    };
    renameInstances(blue, blueInstanceIds.map(old));
    renameInstances(green, blueInstanceIds);
    b.id = old(blueId);
    g.id = blueId;
    g.endpoint = b.endpoint;
    g.readerEndpoint = b.readerEndpoint;
    g.aliasEndpoint = b.aliasEndpoint;
    g.proxy = b.proxy;
    b.endpoint = clusterEndpointName(b.id);
    b.readerEndpoint = readerEndpointName(b.id);
    b.aliasEndpoint = undefined;
    b.proxy = undefined;
    this.runtimes.delete(blueId);
    this.runtimes.delete(`${blueId}-${GREEN_SUFFIX}`);
    this.runtimes.set(g.id, green);
    this.runtimes.set(b.id, blue);
    const cert = this.certificates.get(blueId);
    if (cert) this.certificates.set(b.id, cert);
    bg.sourceClusterId = b.id;
    bg.targetClusterId = g.id;
    const records: DnsRecord[] = [];
    for (const c of [g, b]) {
      for (const i of c.instances) records.push({ name: i.dnsName, type: 'A', value: i.host });
      records.push({ name: c.endpoint, type: 'CNAME', value: this.instance(c, c.writerId).dnsName });
      records.push({ name: c.readerEndpoint, type: 'CNAME', value: this.readerTarget(c).dnsName });
    }
    return records;
  }

  /** A proxy left holding its clients by a failed operation resumes onto its cluster's writer. */
  private async resumeHeldProxy(models: LabCluster[], n: number, why: string): Promise<void> {
    for (const model of models) {
      const proxy = model.proxy;
      if (proxy?.targetState !== 'UNAVAILABLE') continue;
      const writer = this.instance(model, model.writerId);
      await retargetAndResume(this.bouncer(model), writer).catch(() => {});
      proxy.targetInstanceId = writer.id;
      proxy.targetState = 'AVAILABLE';
      this.record(model.id, n, 'proxy-resumed', `${writer.id} (${why})`);
    }
  }

  globalClusters(): LabGlobalCluster[] {
    return this.globalList;
  }

  /** Validates like RDS, then runs the switchover or failover in the background. */
  globalSwitchover(id: string, targetClusterId: string, allowDataLoss: boolean): LabGlobalCluster {
    const g = this.globalList.find((x) => x.id === id);
    if (!g) throw new RdsFault('GlobalClusterNotFoundFault', `Global cluster ${id} not found.`, 404);
    if (!g.secondaryClusterIds.includes(targetClusterId))
      throw new RdsFault(
        'InvalidParameterValue',
        `The DB cluster ${targetClusterId} is not a secondary cluster of global cluster ${id}.`,
      );
    const primary = this.runtime(g.primaryClusterId);
    const secondary = this.runtime(targetClusterId);
    if (g.status !== 'available' || primary.busy || secondary.busy)
      throw new RdsFault(
        'InvalidGlobalClusterStateFault',
        `Global cluster ${id} is in ${g.status} state${primary.busy ? ' (its primary is busy)' : ''}.`,
      );
    const n = ++this.failoverCount;
    const what = allowDataLoss ? 'FailoverGlobalCluster (AllowDataLoss)' : 'SwitchoverGlobalCluster';
    if (this.failoverProfile === 'noop') {
      this.record(primary.model.id, n, 'operation-ignored', `${what} ${id}, profile noop`);
      return g;
    }
    primary.busy = true;
    secondary.busy = true;
    g.status = allowDataLoss ? 'failing-over' : 'switching-over';
    g.failoverState = {
      status: allowDataLoss ? 'failing-over' : 'switching-over',
      fromClusterId: primary.model.id,
      toClusterId: secondary.model.id,
      dataLossAllowed: allowDataLoss,
    };
    this.record(
      primary.model.id,
      n,
      allowDataLoss ? 'global-failover-requested' : 'global-switchover-requested',
      `${id}: ${primary.model.id} -> ${secondary.model.id} (${SECONDARY_REGION})`,
    );
    const verb = allowDataLoss ? 'failover' : 'switchover';
    for (const c of [primary.model, secondary.model])
      this.emit(
        'db-cluster',
        c.id,
        `Global ${verb} to DB cluster ${secondary.model.id} in Region ${secondary.model.region ?? REGION} started.`,
        'global-failover',
      );
    const done = this.runGlobal(g, primary, secondary, n, allowDataLoss)
      .catch(async (err: Error) => {
        // Failed before the promotion: the primary takes writes again; the proxy never stays held.
        if (primary.model.globalRole === 'primary')
          await primary.ops.unfence(primary.servers.get(primary.model.writerId)!).catch(() => {});
        await this.resumeHeldProxy([primary.model, secondary.model], n, 'after the failed operation');
        this.record(primary.model.id, n, 'global-operation-failed', err.message);
        for (const c of [primary.model, secondary.model])
          this.emit('db-cluster', c.id, `Global ${verb} failed: ${err.message}`, 'failure');
      })
      .finally(() => {
        g.status = 'available';
        g.failoverState = undefined;
        primary.busy = false;
        secondary.busy = false;
        this.onChange();
      });
    this.running.push(done);
    return g;
  }

  /**
   * A switchover: the primary stops taking writes, the secondary catches up and is promoted, the
   * global writer endpoint moves, the old primary replicates from the new one. A failover with
   * data loss: the primary's writer is killed and the secondary promoted at once, with whatever
   * it had received; the old primary is rewound to the new one.
   */
  private async runGlobal(
    g: LabGlobalCluster,
    primary: ClusterRuntime,
    secondary: ClusterRuntime,
    n: number,
    allowDataLoss: boolean,
  ): Promise<void> {
    const d = this.delays;
    const name = primary.model.id;
    const oldWriter = primary.servers.get(primary.model.writerId)!;
    const newWriter = secondary.servers.get(secondary.model.writerId)!;
    await sleep(d.switchoverFenceMs);
    if (primary.model.proxy) {
      await pause(this.bouncer(primary.model));
      primary.model.proxy.targetState = 'UNAVAILABLE';
      this.record(name, n, 'proxy-paused');
    }
    if (allowDataLoss) {
      // The primary Region is gone: nothing waits for the secondary to catch up.
      await primary.ops.stopWriter(
        oldWriter,
        primary.model.engine === 'aurora-postgresql' ? 'crash' : 'clean',
      );
      this.record(name, n, 'old-writer-stopped', primary.model.writerId);
    } else {
      await primary.ops.fence(oldWriter);
      this.record(name, n, 'primary-read-only', primary.model.writerId);
      await secondary.ops.waitCaughtUp(newWriter, oldWriter, 60_000);
      this.record(name, n, 'secondary-caught-up', secondary.model.writerId);
      // Stopped cleanly before the promotion: its last WAL (the shutdown checkpoint) reaches the
      // secondary and its own readers first, so they all follow the new primary's timeline.
      await primary.ops.stopWriter(oldWriter, 'clean');
      this.record(name, n, 'old-writer-stopped', primary.model.writerId);
    }
    await sleep(d.switchoverRenameMs);
    await secondary.ops.promoteInPlace(newWriter);
    secondary.model.globalRole = 'primary';
    primary.model.globalRole = 'secondary';
    g.primaryClusterId = secondary.model.id;
    g.secondaryClusterIds = [primary.model.id];
    this.record(name, n, 'new-primary-writable', secondary.model.writerId);
    await updateCname(this.dns, g.endpoint, secondary.model.endpoint);
    this.record(name, n, 'global-endpoint-updated', secondary.model.endpoint);
    // The old primary follows the new one: its writer restarts as a replica (rewound first
    // after a failover that lost writes), its readers keep following it.
    await primary.ops.demote(oldWriter, newWriter);
    this.record(name, n, 'old-primary-is-secondary', primary.model.id);
    if (primary.model.proxy) {
      // RDS Proxy is regional: it goes on sending its clients to its own cluster, a secondary now.
      await retargetAndResume(
        this.bouncer(primary.model),
        this.instance(primary.model, primary.model.writerId),
      );
      primary.model.proxy.targetState = 'AVAILABLE';
      this.record(name, n, 'proxy-resumed', `${primary.model.writerId} (read-only: a secondary now)`);
    }
    await sleep(d.switchoverCompleteMs);
    const verb = allowDataLoss ? 'failover' : 'switchover';
    for (const c of [primary.model, secondary.model])
      this.emit(
        'db-cluster',
        c.id,
        `Global ${verb} to DB cluster ${secondary.model.id} in Region ${secondary.model.region ?? REGION} completed.`,
        'global-failover',
      );
    this.record(name, n, 'global-operation-completed', `${g.id}: primary ${secondary.model.id}`);
  }

  /** Throttling for the next `forMs` (0 ends it); the RDS API asks apiFault() per request. */
  throttleRdsApi(forMs: number): void {
    this.apiFaults.throttleUntilMs = forMs > 0 ? Date.now() + forMs : undefined;
    this.onChange();
  }

  apiFault(_action: string): RdsFault | undefined {
    const until = this.apiFaults.throttleUntilMs;
    if (until === undefined || Date.now() >= until) return undefined;
    this.apiFaults.throttled++;
    this.onChange();
    return new RdsFault('Throttling', 'Rate exceeded', 400);
  }

  /** The cluster runtime and instance of an instance id, or DBInstanceNotFound. */
  private instanceRuntime(instanceId: string): { rt: ClusterRuntime; inst: LabInstance } {
    for (const rt of this.runtimes.values()) {
      const inst = rt.model.instances.find((i) => i.id === instanceId);
      if (inst) return { rt, inst };
    }
    throw new RdsFault('DBInstanceNotFound', `DBInstance ${instanceId} not found.`, 404);
  }

  private checkInstanceAvailable(rt: ClusterRuntime, inst: LabInstance): void {
    if (rt.busy || inst.status !== 'available' || rt.model.status !== 'available')
      throw new RdsFault(
        'InvalidDBInstanceState',
        `DB instance ${inst.id} is not in an available state (current status: ${inst.status}).`,
      );
  }

  rebootInstance(instanceId: string, forceFailover: boolean): LabInstance {
    const { rt, inst } = this.instanceRuntime(instanceId);
    if (forceFailover && inst.id === rt.model.writerId) {
      this.startFailover({ clusterId: rt.model.id });
      return inst;
    }
    this.checkInstanceAvailable(rt, inst);
    const n = ++this.failoverCount;
    if (this.failoverProfile === 'noop') {
      this.record(rt.model.id, n, 'operation-ignored', `RebootDBInstance ${inst.id}, profile noop`);
      return inst;
    }
    inst.status = 'rebooting';
    this.record(rt.model.id, n, 'reboot-requested', inst.id);
    this.runInBackground(rt, inst, n, this.restartInPlace(rt, inst, n));
    return inst;
  }

  modifyInstanceClass(instanceId: string, instanceClass: string, applyImmediately: boolean): LabInstance {
    const { rt, inst } = this.instanceRuntime(instanceId);
    this.checkInstanceAvailable(rt, inst);
    if (instanceClass === inst.instanceClass) return inst; // nothing to change, as RDS: no restart
    if (!applyImmediately) {
      // RDS applies it in the next maintenance window; the lab has none, it stays pending.
      inst.pendingInstanceClass = instanceClass;
      this.onChange();
      return inst;
    }
    const n = ++this.failoverCount;
    if (this.failoverProfile === 'noop') {
      this.record(
        rt.model.id,
        n,
        'operation-ignored',
        `ModifyDBInstance ${inst.id} ${instanceClass}, profile noop`,
      );
      return inst;
    }
    const from = inst.instanceClass;
    inst.status = 'modifying';
    inst.pendingInstanceClass = instanceClass;
    this.record(rt.model.id, n, 'modify-requested', `${inst.id} ${from} -> ${instanceClass}`);
    this.emit(
      'db-instance',
      inst.id,
      'Applying modification to database instance class',
      'configuration change',
    );
    const done = (async () => {
      await sleep(this.delays.modifyStartMs);
      await this.restartInPlace(rt, inst, n, () => {
        inst.instanceClass = instanceClass;
        inst.pendingInstanceClass = undefined;
      });
      this.emit(
        'db-instance',
        inst.id,
        'Finished applying modification to DB instance class',
        'configuration change',
      );
    })();
    this.runInBackground(rt, inst, n, done);
    return inst;
  }

  /** Holds the cluster busy while `work` runs; an error is recorded and the instance made available. */
  private runInBackground(rt: ClusterRuntime, inst: LabInstance, n: number, work: Promise<void>): void {
    rt.busy = true;
    const done = work
      .catch(async (err: Error) => {
        const { model } = rt;
        this.record(model.id, n, 'operation-failed', `${inst.id}: ${err.message}`);
        this.emit('db-instance', inst.id, `Restart failed: ${err.message}`, 'failure');
        // Never leave the proxy holding queries.
        if (model.proxy?.targetState === 'UNAVAILABLE') {
          await retargetAndResume(
            this.bouncer(model),
            this.instance(model, model.proxy.targetInstanceId),
          ).catch(() => {});
          model.proxy.targetState = 'AVAILABLE';
          this.record(
            model.id,
            n,
            'proxy-resumed',
            `${model.proxy.targetInstanceId} (after the failed restart)`,
          );
        }
      })
      .finally(() => {
        inst.status = 'available';
        rt.busy = false;
        this.onChange();
      });
    this.running.push(done);
  }

  /**
   * A restart in place, as a reboot without failover or a class change applied immediately does
   * it: the proxy holds its clients (if it sends them here), the server stops cleanly, stays down
   * for instanceDownMs, starts in its role and is available again. No new writer, no DNS change.
   */
  private async restartInPlace(
    rt: ClusterRuntime,
    inst: LabInstance,
    n: number,
    beforeAvailable: () => void = () => {},
  ): Promise<void> {
    const { model, ops } = rt;
    const server = rt.servers.get(inst.id)!;
    const asWriter = inst.id === model.writerId;
    const proxied = model.proxy?.targetInstanceId === inst.id;
    if (proxied && model.proxy) {
      await pause(this.bouncer(model));
      model.proxy.targetState = 'UNAVAILABLE';
      this.record(model.id, n, 'proxy-paused');
    }
    this.record(model.id, n, 'instance-stopping', inst.id);
    await ops.stopInPlace(server);
    this.record(model.id, n, 'instance-stopped', inst.id);
    this.emit('db-instance', inst.id, 'DB instance shutdown', 'availability');
    await sleep(this.delays.instanceDownMs);
    await ops.startInPlace(server, asWriter);
    this.record(model.id, n, 'instance-started', inst.id);
    if (proxied && model.proxy) {
      await retargetAndResume(this.bouncer(model), inst);
      model.proxy.targetState = 'AVAILABLE';
      this.record(model.id, n, 'proxy-resumed', inst.id);
    }
    beforeAvailable();
    inst.status = 'available';
    this.record(model.id, n, 'instance-available', `${inst.id} ${inst.instanceClass}`);
    this.emit('db-instance', inst.id, 'DB instance restarted', 'availability');
  }

  /** Replication-lag knob for lost-write tests: a paused reader receives nothing new. */
  async setReplicationPaused(clusterId: string, instanceId: string, paused: boolean): Promise<void> {
    const rt = this.runtime(clusterId);
    const s = rt.servers.get(instanceId);
    // A Global Database secondary's (a green cluster's) writer replicates from the primary's (blue's) writer.
    const g = this.globalList.find((x) => x.secondaryClusterIds.includes(clusterId));
    const bg = this.blueGreenList.find((x) => x.targetClusterId === clusterId && x.status === 'AVAILABLE');
    const sourceId = g?.primaryClusterId ?? bg?.sourceClusterId;
    if (s && sourceId !== undefined && instanceId === rt.model.writerId) {
      const source = this.runtime(sourceId);
      await rt.ops.setReplicationPaused(s, source.servers.get(source.model.writerId)!, paused);
      return;
    }
    const writer = rt.servers.get(rt.model.writerId)!;
    if (!s || instanceId === rt.model.writerId)
      throw new RdsFault('InvalidParameterValue', `${instanceId} is not a reader of ${clusterId}.`);
    await rt.ops.setReplicationPaused(s, writer, paused);
  }

  /** Resolves when every failover and reboot started so far has finished. */
  async idle(): Promise<void> {
    while (this.running.length > 0) {
      const batch = this.running;
      this.running = [];
      await Promise.allSettled(batch);
    }
  }

  /** Stops everything this lab started (best effort, never throws). */
  async down(): Promise<void> {
    await Promise.allSettled(
      [...this.runtimes.values()]
        .filter((rt) => rt.model.proxy)
        .map((rt) => stopBouncer(this.bouncer(rt.model))),
    );
    await Promise.allSettled(
      [...this.runtimes.values()].flatMap((rt) => [...rt.servers.values()].map((s) => rt.ops.stop(s))),
    );
    if (this.pids.dns) await stopDns(this.pids.dns);
    removeIamServices(this.options.dir);
  }

  /** What `lab status --json` says about TLS: the CA bundle clients verify against. */
  tlsState(): LabTlsState {
    if (!this.options.tls) return { enabled: false };
    return {
      enabled: true,
      caFile: this.caFile,
      forceSsl: this.options.forceSsl,
      requireSecureTransport: this.options.requireSecureTransport,
    };
  }

  /** The state file `lab status` reads; written atomically. */
  writeState(extra: Record<string, unknown>): void {
    if (!existsSync(this.options.dir)) return;
    const file = join(this.options.dir, 'lab.json');
    const state = {
      ...extra,
      options: this.options,
      delays: this.delays,
      failoverProfile: this.failoverProfile,
      apiFaults: this.apiFaults,
      dns: { host: this.dns.host, port: this.dns.port, zone: LAB_ZONE },
      tls: this.tlsState(),
      clusters: this.clusters(),
      ...(this.blueGreenList.length > 0 ? { blueGreenDeployments: this.blueGreenList } : {}),
      ...(this.globalList.length > 0 ? { globalClusters: this.globalList } : {}),
      events: this.eventLog,
      groundTruth: this.groundTruth,
      ...(this.iamServices.length > 0 ? { iam: labIamInfo(this.iamServices) } : {}),
    };
    writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
  }
}
