// The lab's view of itself, shaped after the RDS API so that the RDS Query API endpoint
// (rds-api.ts) only has to render it. The lab orchestrator (lab.ts) owns the state; the
// API server reads it and asks the orchestrator to act through LabControl.

export type LabEngine = 'aurora-postgresql' | 'aurora-mysql';

export interface LabInstance {
  /** DBInstanceIdentifier, e.g. `lab-pg-1`. */
  id: string;
  /** Loopback address the instance listens on, e.g. 127.0.10.11. */
  host: string;
  port: number;
  /** DNS name of the instance, e.g. `lab-pg-1.abc123.lab.failwatch.local`. */
  dnsName: string;
  availabilityZone: string;
  /** RDS DBInstanceStatus: `available`, `rebooting`, `modifying`, ... */
  status: string;
  /** DBInstanceClass; the lab's processes have no real class, a class change restarts them. */
  instanceClass: string;
  /** A class change asked for without ApplyImmediately (the lab has no maintenance window). */
  pendingInstanceClass?: string;
}

export interface LabCluster {
  /** DBClusterIdentifier, e.g. `lab-pg`. */
  id: string;
  /** The engine family; the RDS API renders it as Aurora's or a Multi-AZ DB cluster's Engine. */
  engine: LabEngine;
  /**
   * `aurora`; `multi-az-db-cluster` (Engine `postgres` / `mysql`, DBClusterInstanceClass); or
   * `multi-az-instance`: to the RDS API one DB instance named after `id` with `endpoint` as its
   * address, whose primary is `writerId` and whose standby is hidden.
   */
  kind: 'aurora' | 'multi-az-db-cluster' | 'multi-az-instance';
  engineVersion: string;
  /** RDS cluster Status: `available`, `failing-over`, `rebooting`, ... */
  status: string;
  /** Cluster (writer) endpoint DNS name. */
  endpoint: string;
  /** Reader endpoint DNS name. */
  readerEndpoint: string;
  /**
   * A CNAME onto the cluster endpoint that is not in the certificate, like a company's own
   * DNS name in front of RDS: verify-full fails on it.
   */
  aliasEndpoint?: string;
  port: number;
  instances: LabInstance[];
  /** DBInstanceIdentifier of the current writer. */
  writerId: string;
  /** The proxy endpoint (PgBouncer), if the cluster has one. */
  proxy?: LabProxy;
  masterUsername: string;
  databaseName: string;
  clusterCreateTime: string;
  /** The region in its ARN (default the lab's): a Global Database's secondary is elsewhere. */
  region?: string;
  /**
   * Member of a Global Database: the `primary` takes writes; a `secondary` replicates from it
   * and shows no writer to the API (its internal writerId is the instance a promotion makes it).
   */
  globalRole?: 'primary' | 'secondary';
}

export interface LabProxy {
  /** DBProxyName. */
  name: string;
  endpoint: string;
  host: string;
  port: number;
  /** Instance the proxy currently sends traffic to. */
  targetInstanceId: string;
  /** RDS ProxyTarget TargetHealth.State: AVAILABLE | UNAVAILABLE | REGISTERING. */
  targetState: 'AVAILABLE' | 'UNAVAILABLE' | 'REGISTERING';
}

/** RDS BlueGreenDeployment Status (and SwitchoverDetail Status). */
export type LabBlueGreenStatus =
  | 'PROVISIONING'
  | 'AVAILABLE'
  | 'SWITCHOVER_IN_PROGRESS'
  | 'SWITCHOVER_COMPLETED'
  | 'SWITCHOVER_FAILED';

/**
 * A Blue/Green deployment: the green cluster replicates from the blue one (the source); a
 * switchover makes blue read-only, waits for green to catch up, promotes green and gives it
 * blue's names (blue's become `<name>-old1`).
 */
export interface LabBlueGreen {
  /** BlueGreenDeploymentIdentifier, e.g. `bgd-labpg0000000001`. */
  id: string;
  /** BlueGreenDeploymentName. */
  name: string;
  /** DBClusterIdentifier of the blue cluster (the source) as it is named now. */
  sourceClusterId: string;
  /** DBClusterIdentifier of the green cluster (the target) as it is named now. */
  targetClusterId: string;
  status: LabBlueGreenStatus;
  statusDetails?: string;
  createTime: string;
}

/**
 * An Aurora Global Database: a primary cluster and a secondary one in another region that
 * replicates from it asynchronously, with a global writer endpoint naming the primary.
 */
export interface LabGlobalCluster {
  /** GlobalClusterIdentifier, e.g. `lab-pg-global`. */
  id: string;
  primaryClusterId: string;
  secondaryClusterIds: string[];
  /** `available`, `switching-over`, `failing-over`. */
  status: string;
  /** The global writer endpoint (a CNAME onto the primary's cluster endpoint). */
  endpoint: string;
  engine: LabEngine;
  engineVersion: string;
  /** While a switchover or failover runs (RDS FailoverState). */
  failoverState?: { status: string; fromClusterId: string; toClusterId: string; dataLossAllowed: boolean };
}

/** An RDS event as DescribeEvents returns it. */
export interface LabEvent {
  sourceIdentifier: string;
  sourceType: 'db-cluster' | 'db-instance' | 'blue-green-deployment';
  message: string;
  eventCategories: string[];
  /** ISO-8601 UTC with milliseconds. */
  date: string;
  sourceArn: string;
}

/** One step the lab really took, with the wall-clock time it completed (ground truth). */
export interface GroundTruthStep {
  cluster: string;
  /** Sequence number of the failover (or reboot, class change) this step belongs to (1-based). */
  failover: number;
  step:
    | 'failover-requested'
    | 'old-writer-stopped'
    | 'new-writer-promoted'
    | 'new-writer-accepting-writes'
    | 'old-writer-restarted-as-reader'
    | 'proxy-paused'
    | 'proxy-resumed'
    | 'cluster-endpoint-updated'
    | 'reader-endpoint-updated'
    | 'failover-completed'
    | 'failover-failed'
    /** The failover profile `noop` accepted the call and did nothing. */
    | 'failover-ignored'
    /** RebootDBInstance without failover of one instance (detail: the instance). */
    | 'reboot-requested'
    /** ModifyDBInstance of the class, applied immediately (detail: instance, old -> new class). */
    | 'modify-requested'
    /** The rebooting / modified instance's clean shutdown starts (clients are cut off from here). */
    | 'instance-stopping'
    /** ... and its server process is down. */
    | 'instance-stopped'
    /** ... and up again, accepting connections. */
    | 'instance-started'
    /** ... and RDS shows it available again (with its new class after a class change). */
    | 'instance-available'
    /** The profile `noop` accepted a reboot or class change and did nothing. */
    | 'operation-ignored'
    /** A reboot or class change could not restart the instance (detail: the error). */
    | 'operation-failed'
    /** SwitchoverBlueGreenDeployment accepted (detail: deployment, blue -> green writer). */
    | 'switchover-requested'
    /** Blue's writer refuses writes (read-only) and its client connections are dropped. */
    | 'blue-read-only'
    /** Green has applied everything blue committed. */
    | 'green-caught-up'
    /** Green's writer accepts writes (it carries blue's names from the next step). */
    | 'green-writable'
    /** Blue/Green switchover done: Status SWITCHOVER_COMPLETED. */
    | 'switchover-completed'
    /** The switchover could not complete (detail: the error); blue is writable again. */
    | 'switchover-failed'
    /** SwitchoverGlobalCluster (or FailoverGlobalCluster without data loss) accepted. */
    | 'global-switchover-requested'
    /** FailoverGlobalCluster with AllowDataLoss accepted: the primary is taken away at once. */
    | 'global-failover-requested'
    /** The primary's writer refuses writes and its client connections are dropped (switchover). */
    | 'primary-read-only'
    /** The secondary has applied everything the primary committed (switchover only). */
    | 'secondary-caught-up'
    /** The promoted secondary's writer accepts writes. */
    | 'new-primary-writable'
    /** The global writer endpoint names the new primary's cluster endpoint. */
    | 'global-endpoint-updated'
    /** The former primary replicates from the new one (its writer restarted as a replica). */
    | 'old-primary-is-secondary'
    /** Global cluster `available` again with the new primary. */
    | 'global-operation-completed'
    /** The switchover or failover could not complete (detail: the error). */
    | 'global-operation-failed';
  /** ISO-8601 UTC with milliseconds. */
  at: string;
  /** Milliseconds since the epoch (same instant as `at`). */
  atMs: number;
  detail?: string;
}

/** Errors the RDS API maps to its fault codes. */
export class RdsFault extends Error {
  readonly code: string;
  readonly httpStatus: number;
  constructor(code: string, message: string, httpStatus = 400) {
    super(message);
    this.name = 'RdsFault';
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

/** What the RDS API endpoint can ask of the lab. Methods throw RdsFault for API errors. */
export interface LabControl {
  clusters(): LabCluster[];
  events(): LabEvent[];
  /** Starts a failover and returns at once (the RDS call is asynchronous too). */
  failoverCluster(clusterId: string, targetInstanceId?: string): LabCluster;
  /** RebootDBInstance; with forceFailover on a writer this is a failover to any reader. */
  rebootInstance(instanceId: string, forceFailover: boolean): LabInstance;
  /** ModifyDBInstance of DBInstanceClass: applied immediately, the instance restarts with it. */
  modifyInstanceClass(instanceId: string, instanceClass: string, applyImmediately: boolean): LabInstance;
  /** Blue/Green deployments (DescribeBlueGreenDeployments). */
  blueGreenDeployments(): LabBlueGreen[];
  /** SwitchoverBlueGreenDeployment: starts the switchover and returns at once. */
  switchoverBlueGreen(id: string, timeoutSeconds: number): LabBlueGreen;
  /** Global Databases (DescribeGlobalClusters). */
  globalClusters(): LabGlobalCluster[];
  /**
   * SwitchoverGlobalCluster, or FailoverGlobalCluster (`allowDataLoss`: an unplanned failover
   * that does not wait for the secondary); starts it and returns at once.
   */
  globalSwitchover(id: string, targetClusterId: string, allowDataLoss: boolean): LabGlobalCluster;
  /** A fault the RDS API answers with instead of handling the request (e.g. throttling). */
  apiFault?(action: string): RdsFault | undefined;
  region: string;
  accountId: string;
}
