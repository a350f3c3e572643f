// The aws-rds trigger: FailoverDBCluster (Aurora, Multi-AZ DB cluster) or RebootDBInstance
// with ForceFailover (Multi-AZ DB instance), through the real @aws-sdk/client-rds. The
// endpoint is overridable so the same code drives the local lab.
import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeEventsCommand,
  FailoverDBClusterCommand,
  RDSClient,
  type Event as RdsEvent,
  RebootDBInstanceCommand,
  type SourceType,
} from '@aws-sdk/client-rds';
import {
  type FailoverTrigger,
  type FiredTrigger,
  type TargetState,
  TriggerError,
  type TriggerEvent,
  type TriggerFailureReason,
} from './types.ts';

export interface AwsRdsTriggerConfig {
  action: 'failover-db-cluster' | 'reboot-db-instance-force-failover';
  clusterIdentifier?: string;
  instanceIdentifier?: string;
  targetInstanceIdentifier?: string;
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
      'the DB instance is not in a state that allows a reboot',
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
    this.description =
      config.action === 'failover-db-cluster'
        ? `DB cluster ${config.clusterIdentifier}`
        : `DB instance ${config.instanceIdentifier}`;
  }

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw classifyRdsError(err, what);
    }
  }

  async state(): Promise<TargetState> {
    if (this.config.action === 'failover-db-cluster') {
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
      return { status: cluster.Status ?? 'unknown', writerId: members.find((m) => m.isWriter)?.id, members };
    }
    const id = this.config.instanceIdentifier!;
    const out = await this.send(`DescribeDBInstances ${id}`, () =>
      this.client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id })),
    );
    const inst = out.DBInstances?.[0];
    if (!inst) throw new TriggerError('TargetNotFound', `DB instance ${id} not found`);
    return {
      status: inst.DBInstanceStatus ?? 'unknown',
      writerId: inst.DBInstanceIdentifier,
      members: [{ id, isWriter: true }],
    };
  }

  async preflight(): Promise<TargetState> {
    const s = await this.state();
    if (s.status !== 'available')
      throw new TriggerError(
        'TargetNotAvailable',
        `${this.description} is ${s.status}, not available: wait and retry`,
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
    return s;
  }

  close(): void {
    this.client.destroy();
    this.onceClient.destroy();
  }

  async fire(writerBefore?: string): Promise<FiredTrigger> {
    const before = writerBefore ?? (await this.state()).writerId;
    const t0Ms = Date.now();
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

  async events(fromMs: number, toMs: number): Promise<TriggerEvent[]> {
    const sources: { type: SourceType; id: string }[] = [];
    if (this.config.clusterIdentifier)
      sources.push({ type: 'db-cluster', id: this.config.clusterIdentifier });
    const s = await this.state().catch(() => undefined);
    for (const m of s?.members ?? []) sources.push({ type: 'db-instance', id: m.id });
    if (this.config.instanceIdentifier && !sources.some((x) => x.id === this.config.instanceIdentifier))
      sources.push({ type: 'db-instance', id: this.config.instanceIdentifier });
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
