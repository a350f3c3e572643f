// The aws-rds trigger: FailoverDBCluster (Aurora, Multi-AZ DB cluster), RebootDBInstance
// with ForceFailover (Multi-AZ DB instance), and the operations that restart one instance in
// place: RebootDBInstance without failover and ModifyDBInstance of its DBInstanceClass
// (ApplyImmediately), and the switchover of a Blue/Green deployment
// (SwitchoverBlueGreenDeployment), through the real @aws-sdk/client-rds. The endpoint is overridable so
// the same code drives the local lab.
import {
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeEventsCommand,
  DescribeGlobalClustersCommand,
  FailoverDBClusterCommand,
  FailoverGlobalClusterCommand,
  ModifyDBInstanceCommand,
  RDSClient,
  type Event as RdsEvent,
  RebootDBInstanceCommand,
  type SourceType,
  SwitchoverBlueGreenDeploymentCommand,
  SwitchoverGlobalClusterCommand,
} from '@aws-sdk/client-rds';
import {
  isClusterKind,
  isGlobalAction,
  type TargetKind,
  type TriggerAction,
} from '../api/experiment-spec.ts';
import {
  type BlueGreenState,
  type FailoverTrigger,
  type FiredTrigger,
  type GlobalClusterState,
  type InstanceState,
  type TargetState,
  TriggerError,
  type TriggerEvent,
  type TriggerFailureReason,
} from './types.ts';

export interface AwsRdsTriggerConfig {
  action: TriggerAction;
  /** spec.target.kind; default aurora-cluster. */
  targetKind?: TargetKind;
  clusterIdentifier?: string;
  /** The rds-instance target's DBInstanceIdentifier. */
  instanceIdentifier?: string;
  targetInstanceIdentifier?: string;
  /**
   * reboot-db-instance / modify-db-instance-class on a cluster: the member to act on (default
   * the writer).
   */
  operationInstanceIdentifier?: string;
  /** modify-db-instance-class: the new DBInstanceClass. */
  instanceClass?: string;
  /** switchover-blue-green-deployment: the BlueGreenDeploymentIdentifier. */
  blueGreenDeploymentIdentifier?: string;
  /** switchover-blue-green-deployment: SwitchoverTimeout in seconds (RDS's default when absent). */
  switchoverTimeoutSeconds?: number;
  /** The Global Database actions: the GlobalClusterIdentifier. */
  globalClusterIdentifier?: string;
  /** ... the secondary cluster to promote (its ARN). */
  targetDbClusterIdentifier?: string;
  /** failover-global-cluster: AllowDataLoss. */
  allowDataLoss?: boolean;
  region?: string;
  /** Endpoint override (the local lab's RDS API). */
  endpoint?: string;
  /** Static credentials; otherwise the SDK's default chain (env, IRSA, Pod Identity, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Per-call timeout; the SDK's own retries stay on for throttling. */
  requestTimeoutMs?: number;
}

/** Maps SDK errors to a reason and a sentence a person can act on. */
export function classifyRdsError(err: unknown, what: string): TriggerError {
  const e = err as Error & { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? '';
  const table: [RegExp, TriggerFailureReason, string][] = [
    [/^DBClusterNotFoundFault$/, 'TargetNotFound', 'the DB cluster does not exist in this account/region'],
    [
      /^DBInstanceNotFound(Fault)?$/,
      'TargetNotFound',
      'the DB instance does not exist in this account/region',
    ],
    [
      /^InvalidDBClusterStateFault$/,
      'InvalidState',
      'the DB cluster is not in a state that allows a failover',
    ],
    [
      /^InvalidDBInstanceState(Fault)?$/,
      'InvalidState',
      'the DB instance is not in a state that allows a reboot or modification',
    ],
    [
      /^BlueGreenDeploymentNotFound(Fault)?$/,
      'TargetNotFound',
      'the Blue/Green deployment does not exist in this account/region',
    ],
    [
      /^InvalidBlueGreenDeploymentState(Fault)?$/,
      'InvalidState',
      'the Blue/Green deployment is not in a state that allows a switchover',
    ],
    [
      /^GlobalClusterNotFound(Fault)?$/,
      'TargetNotFound',
      'the global cluster does not exist in this account',
    ],
    [
      /^InvalidGlobalClusterState(Fault)?$/,
      'InvalidState',
      'the global cluster is not in a state that allows a switchover or failover',
    ],
    [/^InvalidParameterValue$/, 'TargetInstanceNotMember', 'the request was rejected'],
    [
      /Throttl|TooManyRequests|RequestLimitExceeded/,
      'Throttled',
      'the RDS API is throttling requests; retry later',
    ],
    [
      /CredentialsProviderError|CredentialsError|ExpiredToken|InvalidClientTokenId|SignatureDoesNotMatch|UnrecognizedClient/,
      'NoCredentials',
      'no valid AWS credentials: configure IRSA / Pod Identity or the credentials Secret',
    ],
    [
      /AccessDenied|UnauthorizedOperation|NotAuthorized/,
      'AccessDenied',
      'the IAM policy does not allow this call',
    ],
  ];
  for (const [pattern, reason, hint] of table)
    if (pattern.test(name)) return new TriggerError(reason, `${what}: ${hint} (${name}: ${e.message})`);
  // Refused before it was sent: nothing can have happened.
  const notConnected = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN/;
  const text = `${e.code ?? ''} ${name} ${e.message}`;
  if (notConnected.test(text))
    return new TriggerError(
      'RdsUnreachable',
      `${what}: the RDS API endpoint cannot be reached (${e.message})`,
    );
  const network = /ETIMEDOUT|ECONNRESET|TimeoutError|socket hang up|EPIPE/;
  if (network.test(text))
    return new TriggerError('RdsUnreachable', `${what}: no answer from the RDS API endpoint (${e.message})`, {
      mayHaveHappened: 'maybe',
    });
  const httpStatus = e.$metadata?.httpStatusCode;
  if (httpStatus !== undefined && httpStatus >= 500)
    return new TriggerError('RdsServerError', `${what}: RDS answered ${httpStatus} ${name}: ${e.message}`, {
      mayHaveHappened: 'maybe',
    });
  return new TriggerError('RdsError', `${what}: ${name || 'error'}: ${e.message}`, {
    mayHaveHappened: httpStatus !== undefined && httpStatus >= 400 ? 'no' : 'maybe',
  });
}

export class AwsRdsTrigger implements FailoverTrigger {
  private readonly client: RDSClient;
  /** The failover call goes through a client without retries: an SDK retry could call twice. */
  private readonly onceClient: RDSClient;
  private readonly config: AwsRdsTriggerConfig;
  readonly description: string;

  constructor(config: AwsRdsTriggerConfig, client?: RDSClient) {
    this.config = config;
    const make = (maxAttempts: number) =>
      new RDSClient({
        region: config.region ?? process.env.AWS_REGION ?? 'us-east-1',
        endpoint: config.endpoint,
        credentials: config.credentials,
        maxAttempts,
        requestHandler: { requestTimeout: config.requestTimeoutMs ?? 10_000, connectionTimeout: 5000 },
      });
    this.client = client ?? make(3);
    this.onceClient = client ?? make(1);
    this.description = this.onGlobal
      ? `Global Database ${config.globalClusterIdentifier} (primary: DB cluster ${config.clusterIdentifier}, promoting ${clusterIdOfArn(config.targetDbClusterIdentifier ?? '')})`
      : this.switchesOver
        ? `Blue/Green deployment ${config.blueGreenDeploymentIdentifier} (blue: ${isClusterKind(config.targetKind) ? `DB cluster ${config.clusterIdentifier}` : `DB instance ${config.instanceIdentifier}`})`
        : this.restartsInstance
          ? `DB instance ${this.subjectHint()}`
          : config.action === 'failover-db-cluster'
            ? `DB cluster ${config.clusterIdentifier}`
            : `DB instance ${config.instanceIdentifier}`;
  }

  /** reboot-db-instance or modify-db-instance-class: one instance restarts, no new writer. */
  private get restartsInstance(): boolean {
    return this.config.action === 'reboot-db-instance' || this.config.action === 'modify-db-instance-class';
  }

  /** switchover-blue-green-deployment: green takes over blue's names. */
  private get switchesOver(): boolean {
    return this.config.action === 'switchover-blue-green-deployment';
  }

  /** switchover-global-cluster, failover-global-cluster: a secondary cluster becomes the primary. */
  private get onGlobal(): boolean {
    return isGlobalAction(this.config.action);
  }

  private async describeGlobal(): Promise<GlobalClusterState> {
    const id = this.config.globalClusterIdentifier!;
    const out = await this.send(`DescribeGlobalClusters ${id}`, () =>
      this.client.send(new DescribeGlobalClustersCommand({ GlobalClusterIdentifier: id })),
    );
    const g = out.GlobalClusters?.[0];
    if (!g) throw new TriggerError('TargetNotFound', `global cluster ${id} not found`);
    const members = g.GlobalClusterMembers ?? [];
    const writer = members.find((m) => m.IsWriter)?.DBClusterArn;
    return {
      id,
      status: g.Status ?? 'unknown',
      ...(writer ? { writerArn: writer } : {}),
      members: members.map((m) => m.DBClusterArn ?? '').filter(Boolean),
      ...(g.FailoverState?.Status ? { failoverStatus: g.FailoverState.Status } : {}),
    };
  }

  /** The target is a DB cluster (DescribeDBClusters: Aurora or Multi-AZ), not a lone instance. */
  private get onCluster(): boolean {
    return (
      this.config.action === 'failover-db-cluster' ||
      this.onGlobal ||
      ((this.restartsInstance || this.switchesOver) && isClusterKind(this.config.targetKind))
    );
  }

  private async describeBlueGreen(): Promise<BlueGreenState> {
    const id = this.config.blueGreenDeploymentIdentifier!;
    const out = await this.send(`DescribeBlueGreenDeployments ${id}`, () =>
      this.client.send(new DescribeBlueGreenDeploymentsCommand({ BlueGreenDeploymentIdentifier: id })),
    );
    const bg = out.BlueGreenDeployments?.[0];
    if (!bg) throw new TriggerError('TargetNotFound', `Blue/Green deployment ${id} not found`);
    return {
      id,
      status: bg.Status ?? 'unknown',
      ...(bg.StatusDetails ? { statusDetails: bg.StatusDetails } : {}),
      ...(bg.Source ? { source: bg.Source } : {}),
      ...(bg.Target ? { target: bg.Target } : {}),
    };
  }

  private subjectHint(): string {
    const c = this.config;
    if (!this.onCluster) return c.instanceIdentifier ?? 'unknown';
    return c.operationInstanceIdentifier ?? `(the writer of DB cluster ${c.clusterIdentifier})`;
  }

  /** The instance a reboot or class change acts on, given the cluster's members. */
  private subjectId(members: { id: string; isWriter: boolean }[]): string | undefined {
    const c = this.config;
    if (!this.onCluster) return c.instanceIdentifier;
    return c.operationInstanceIdentifier ?? members.find((m) => m.isWriter)?.id;
  }

  private async describeInstance(id: string): Promise<InstanceState & { arn?: string }> {
    const out = await this.send(`DescribeDBInstances ${id}`, () =>
      this.client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id })),
    );
    const inst = out.DBInstances?.[0];
    if (!inst) throw new TriggerError('TargetNotFound', `DB instance ${id} not found`);
    return {
      id,
      status: inst.DBInstanceStatus ?? 'unknown',
      ...(inst.DBInstanceClass ? { instanceClass: inst.DBInstanceClass } : {}),
      ...(inst.MultiAZ !== undefined ? { multiAz: inst.MultiAZ } : {}),
      ...(inst.DBInstanceArn ? { arn: inst.DBInstanceArn } : {}),
    };
  }

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw classifyRdsError(err, what);
    }
  }

  async state(): Promise<TargetState> {
    if (this.onCluster) {
      const id = this.config.clusterIdentifier!;
      const out = await this.send(`DescribeDBClusters ${id}`, () =>
        this.client.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id })),
      );
      const cluster = out.DBClusters?.[0];
      if (!cluster) throw new TriggerError('TargetNotFound', `DB cluster ${id} not found`);
      const members = (cluster.DBClusterMembers ?? []).map((m) => ({
        id: m.DBInstanceIdentifier ?? '',
        isWriter: m.IsClusterWriter === true,
      }));
      const state: TargetState = {
        status: cluster.Status ?? 'unknown',
        writerId: members.find((m) => m.isWriter)?.id,
        members,
        ...(cluster.DBClusterArn ? { arn: cluster.DBClusterArn } : {}),
        ...(cluster.Engine ? { engine: cluster.Engine } : {}),
      };
      const subject = this.restartsInstance ? this.subjectId(members) : undefined;
      // A member named in the spec that is not in the cluster: preflight says so.
      if (subject !== undefined && members.some((m) => m.id === subject)) {
        const { arn: _arn, ...instance } = await this.describeInstance(subject);
        state.instance = instance;
      }
      if (this.switchesOver) state.blueGreen = await this.describeBlueGreen();
      if (this.onGlobal) state.globalCluster = await this.describeGlobal();
      return state;
    }
    const id = this.config.instanceIdentifier!;
    const { arn, ...instance } = await this.describeInstance(id);
    return {
      status: instance.status,
      writerId: id,
      members: [{ id, isWriter: true }],
      ...(arn ? { arn } : {}),
      ...(this.restartsInstance || this.config.action === 'reboot-db-instance-force-failover'
        ? { instance }
        : {}),
      ...(this.switchesOver ? { blueGreen: await this.describeBlueGreen() } : {}),
    };
  }

  async preflight(): Promise<TargetState> {
    const s = await this.state();
    // The kind first: waiting would not mend a spec that names the wrong kind of cluster.
    if (this.onCluster) this.checkKind(s);
    if (s.status !== 'available')
      throw new TriggerError(
        'TargetNotAvailable',
        `${this.onCluster ? `DB cluster ${this.config.clusterIdentifier}` : this.description} is ${s.status}, not available: wait and retry`,
      );
    if (this.config.action === 'failover-db-cluster') {
      const readers = s.members.filter((m) => !m.isWriter);
      if (!s.writerId || readers.length === 0)
        throw new TriggerError(
          'NoReader',
          `${this.description} needs a writer and at least one reader to fail over`,
        );
      const target = this.config.targetInstanceIdentifier;
      if (target && !readers.some((r) => r.id === target))
        throw new TriggerError(
          'TargetInstanceNotMember',
          `${target} is not a reader of ${this.description} (readers: ${readers.map((r) => r.id).join(', ')})`,
        );
    }
    if (this.restartsInstance) this.checkSubject(s);
    if (this.switchesOver) this.checkBlueGreen(s);
    if (this.onGlobal) this.checkGlobal(s);
    if (this.config.action === 'reboot-db-instance-force-failover' && s.instance?.multiAz === false)
      throw new TriggerError(
        'NoReader',
        `${this.description} is not a Multi-AZ deployment: a reboot with ForceFailover has no standby to fail over to`,
      );
    return s;
  }

  /**
   * target.kind says which kind of cluster it is; RDS's Engine says which it really is: Aurora
   * engines are `aurora-*`, a Multi-AZ DB cluster runs `postgres` or `mysql`. The two fail over
   * differently (shared storage vs two readable standbys), so results named after the wrong
   * one would mislead: refuse before any call.
   */
  private checkKind(s: TargetState): void {
    if (s.engine === undefined) return;
    const aurora = s.engine.startsWith('aurora');
    const kind = this.config.targetKind ?? 'aurora-cluster';
    if (kind === 'multi-az-db-cluster' && aurora)
      throw new TriggerError(
        'TargetKindMismatch',
        `DB cluster ${this.config.clusterIdentifier} is an Aurora cluster (Engine ${s.engine}), not a Multi-AZ DB cluster: set target.kind: aurora-cluster`,
      );
    if (kind === 'aurora-cluster' && !aurora)
      throw new TriggerError(
        'TargetKindMismatch',
        this.restartsInstance
          ? `DB cluster ${this.config.clusterIdentifier} is a Multi-AZ DB cluster (Engine ${s.engine}), not an Aurora cluster: RDS reboots and resizes its members through the cluster (RebootDBCluster, ModifyDBCluster), which failwatch does not call; ${this.config.action} acts on Aurora members and RDS instances`
          : `DB cluster ${this.config.clusterIdentifier} is a Multi-AZ DB cluster (Engine ${s.engine}), not an Aurora cluster: set target.kind: multi-az-db-cluster`,
      );
  }

  /**
   * The deployment switches over the target (its Source is the target's ARN: the allowlist on
   * the target then covers the switchover too) and is AVAILABLE (green ready, not switched yet).
   */
  private checkBlueGreen(s: TargetState): void {
    const bg = s.blueGreen;
    const id = this.config.blueGreenDeploymentIdentifier;
    if (!bg) throw new TriggerError('TargetNotFound', `Blue/Green deployment ${id} not found`);
    const target = this.onCluster
      ? `DB cluster ${this.config.clusterIdentifier}`
      : `DB instance ${this.config.instanceIdentifier}`;
    // After a switchover the target's name is green's, the deployment's Target: "already
    // switched over" says more than "not this deployment".
    const switchedOverHere = bg.status === 'SWITCHOVER_COMPLETED' && bg.target === s.arn;
    // Without both ARNs nothing proves the deployment is the target's: refused, not assumed.
    if ((bg.source === undefined || s.arn === undefined || bg.source !== s.arn) && !switchedOverHere)
      throw new TriggerError(
        'BlueGreenSourceMismatch',
        `Blue/Green deployment ${id} switches over ${bg.source ?? 'a source RDS does not show'}, not the target ${target} (${s.arn ?? 'no ARN shown'}): name the deployment whose blue environment is the target`,
      );
    if (bg.status !== 'AVAILABLE')
      throw new TriggerError(
        'TargetNotAvailable',
        `Blue/Green deployment ${id} is ${bg.status}, not AVAILABLE${bg.statusDetails ? ` (${bg.statusDetails})` : ''}: a switchover needs a green environment that is ready and not switched over yet`,
      );
  }

  /**
   * The global cluster is available, its primary (writer member) is the target (the allowlist
   * on the target covers the primary; the controller checks the secondary's ARN too), and the
   * cluster to promote is one of its secondaries.
   */
  private checkGlobal(s: TargetState): void {
    const g = s.globalCluster;
    const id = this.config.globalClusterIdentifier;
    if (!g) throw new TriggerError('TargetNotFound', `global cluster ${id} not found`);
    if (g.writerArn === undefined || s.arn === undefined || g.writerArn !== s.arn)
      throw new TriggerError(
        'GlobalClusterMismatch',
        `the primary of global cluster ${id} is ${g.writerArn ?? 'not shown'}, not the target DB cluster ${this.config.clusterIdentifier} (${s.arn ?? 'no ARN shown'}): target the primary cluster`,
      );
    const wanted = this.config.targetDbClusterIdentifier ?? '';
    const secondaries = g.members.filter((m) => m !== g.writerArn);
    if (!secondaries.includes(wanted))
      throw new TriggerError(
        'GlobalClusterMismatch',
        `${wanted} is not a secondary cluster of global cluster ${id} (secondaries: ${secondaries.join(', ') || 'none'})`,
      );
    if (g.status !== 'available')
      throw new TriggerError(
        'TargetNotAvailable',
        `global cluster ${id} is ${g.status}, not available: wait and retry`,
      );
  }

  /** The instance to reboot or modify exists, is available and (class change) has another class. */
  private checkSubject(s: TargetState): void {
    const named = this.config.operationInstanceIdentifier;
    const inst = s.instance;
    if (!inst) {
      if (named !== undefined)
        throw new TriggerError(
          'TargetInstanceNotMember',
          `${named} is not a member of DB cluster ${this.config.clusterIdentifier} (members: ${s.members.map((m) => m.id).join(', ') || 'none'})`,
        );
      throw new TriggerError('TargetNotFound', `${this.description}: no instance to act on (no writer)`);
    }
    if (inst.status !== 'available')
      throw new TriggerError(
        'TargetNotAvailable',
        `DB instance ${inst.id} is ${inst.status}, not available: wait and retry`,
      );
    const wanted = this.config.instanceClass;
    if (
      this.config.action === 'modify-db-instance-class' &&
      wanted !== undefined &&
      inst.instanceClass === wanted
    )
      throw new TriggerError(
        'InstanceClassUnchanged',
        `DB instance ${inst.id} already is ${wanted}: a class change to the same class restarts nothing; choose another trigger.instanceClass`,
      );
  }

  close(): void {
    this.client.destroy();
    this.onceClient.destroy();
  }

  async fire(writerBefore?: string): Promise<FiredTrigger> {
    if (this.restartsInstance) return this.fireInstanceRestart(writerBefore);
    const before = writerBefore ?? (await this.state()).writerId;
    const t0Ms = Date.now();
    if (this.onGlobal) {
      const id = this.config.globalClusterIdentifier!;
      const target = this.config.targetDbClusterIdentifier!;
      if (this.config.action === 'switchover-global-cluster') {
        await this.send(`SwitchoverGlobalCluster ${id}`, () =>
          this.onceClient.send(
            new SwitchoverGlobalClusterCommand({
              GlobalClusterIdentifier: id,
              TargetDbClusterIdentifier: target,
            }),
          ),
        );
        return { t0Ms, action: `SwitchoverGlobalCluster ${id} (to ${target})`, writerBefore: before };
      }
      const lossy = this.config.allowDataLoss === true;
      await this.send(`FailoverGlobalCluster ${id}`, () =>
        this.onceClient.send(
          new FailoverGlobalClusterCommand({
            GlobalClusterIdentifier: id,
            TargetDbClusterIdentifier: target,
            ...(lossy ? { AllowDataLoss: true } : {}),
          }),
        ),
      );
      return {
        t0Ms,
        action: `FailoverGlobalCluster ${id} (to ${target}${lossy ? ', AllowDataLoss' : ''})`,
        writerBefore: before,
      };
    }
    if (this.switchesOver) {
      const id = this.config.blueGreenDeploymentIdentifier!;
      const timeout = this.config.switchoverTimeoutSeconds;
      await this.send(`SwitchoverBlueGreenDeployment ${id}`, () =>
        this.onceClient.send(
          new SwitchoverBlueGreenDeploymentCommand({
            BlueGreenDeploymentIdentifier: id,
            ...(timeout !== undefined ? { SwitchoverTimeout: timeout } : {}),
          }),
        ),
      );
      return {
        t0Ms,
        action: `SwitchoverBlueGreenDeployment ${id} (SwitchoverTimeout ${timeout ?? 300} s)`,
        writerBefore: before,
      };
    }
    if (this.config.action === 'failover-db-cluster') {
      const id = this.config.clusterIdentifier!;
      const target = this.config.targetInstanceIdentifier;
      await this.send(`FailoverDBCluster ${id}`, () =>
        this.onceClient.send(
          new FailoverDBClusterCommand({ DBClusterIdentifier: id, TargetDBInstanceIdentifier: target }),
        ),
      );
      return {
        t0Ms,
        action: `FailoverDBCluster ${id}${target ? ` (target ${target})` : ''}`,
        writerBefore: before,
      };
    }
    const id = this.config.instanceIdentifier!;
    await this.send(`RebootDBInstance ${id}`, () =>
      this.onceClient.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: id, ForceFailover: true })),
    );
    return { t0Ms, action: `RebootDBInstance ${id} (ForceFailover)`, writerBefore: before };
  }

  /** RebootDBInstance without failover, or ModifyDBInstance of the class applied immediately. */
  private async fireInstanceRestart(writerBefore?: string): Promise<FiredTrigger> {
    // Which instance, and its class: a Describe before the call. Its failure, whatever it is,
    // means the mutating call was never sent (a refusal, not an unknown outcome).
    const s = await this.state().catch((err: unknown) => {
      const e = err instanceof TriggerError ? err : classifyRdsError(err, 'DescribeDBInstances');
      throw new TriggerError(e.reason, `${e.message} (before the call; nothing was called)`, {
        mayHaveHappened: 'no',
      });
    });
    const before = writerBefore ?? s.writerId;
    const id = s.instance?.id ?? this.subjectId(s.members);
    if (id === undefined)
      throw new TriggerError('TargetNotFound', `${this.description}: no instance to act on`);
    const t0Ms = Date.now();
    if (this.config.action === 'reboot-db-instance') {
      await this.send(`RebootDBInstance ${id}`, () =>
        this.onceClient.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: id, ForceFailover: false })),
      );
      return { t0Ms, action: `RebootDBInstance ${id} (no failover)`, writerBefore: before };
    }
    const cls = this.config.instanceClass!;
    await this.send(`ModifyDBInstance ${id}`, () =>
      this.onceClient.send(
        new ModifyDBInstanceCommand({
          DBInstanceIdentifier: id,
          DBInstanceClass: cls,
          ApplyImmediately: true,
        }),
      ),
    );
    const from = s.instance?.instanceClass;
    return {
      t0Ms,
      action: `ModifyDBInstance ${id} (DBInstanceClass ${from ? `${from} -> ` : ''}${cls}, ApplyImmediately)`,
      writerBefore: before,
    };
  }

  async events(fromMs: number, toMs: number): Promise<TriggerEvent[]> {
    const sources: { type: SourceType; id: string }[] = [];
    if (this.config.clusterIdentifier)
      sources.push({ type: 'db-cluster', id: this.config.clusterIdentifier });
    const s = await this.state().catch(() => undefined);
    for (const m of s?.members ?? []) sources.push({ type: 'db-instance', id: m.id });
    if (this.config.instanceIdentifier && !sources.some((x) => x.id === this.config.instanceIdentifier))
      sources.push({ type: 'db-instance', id: this.config.instanceIdentifier });
    if (this.switchesOver)
      sources.push({ type: 'blue-green-deployment', id: this.config.blueGreenDeploymentIdentifier! });
    const out: TriggerEvent[] = [];
    for (const source of sources) {
      let marker: string | undefined;
      do {
        const page = await this.send('DescribeEvents', () =>
          this.client.send(
            new DescribeEventsCommand({
              SourceType: source.type,
              SourceIdentifier: source.id,
              StartTime: new Date(fromMs),
              EndTime: new Date(toMs),
              MaxRecords: 100,
              Marker: marker,
            }),
          ),
        );
        out.push(...(page.Events ?? []).map(toTriggerEvent));
        marker = page.Marker;
      } while (marker);
    }
    return out.sort((a, b) => a.atMs - b.atMs);
  }
}

/** The identifier in a DB cluster ARN (the value itself when it is not one). */
function clusterIdOfArn(arn: string): string {
  return arn.slice(arn.lastIndexOf(':') + 1);
}

function toTriggerEvent(e: RdsEvent): TriggerEvent {
  return {
    sourceIdentifier: e.SourceIdentifier ?? '',
    sourceType: e.SourceType ?? '',
    message: e.Message ?? '',
    categories: e.EventCategories ?? [],
    atMs: e.Date ? e.Date.getTime() : 0,
  };
}

/** Observe-only: the failover is done by hand or by something else. */
export class NoneTrigger implements FailoverTrigger {
  readonly description = 'nothing (observe only)';
  async preflight(): Promise<undefined> {
    return undefined;
  }
  async fire(): Promise<FiredTrigger> {
    return { t0Ms: Date.now(), action: 'none (observe only)' };
  }
  async state(): Promise<undefined> {
    return undefined;
  }
  async events(): Promise<TriggerEvent[]> {
    return [];
  }
}
