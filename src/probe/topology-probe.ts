// The topology probe: the writer as the database itself reports it. At setup it reads the
// cluster's instance identifiers through the endpoint (aurora_replica_status() on Aurora
// PostgreSQL, information_schema.replica_host_status on Aurora MySQL) and builds each
// instance's name from the instance host pattern, as the AWS Advanced Wrapper does. Each
// attempt then asks every instance, over its own pooled connection, whether it is the writer
// (pg_is_in_recovery(), @@read_only / @@innodb_read_only). The attempt is `ok` with the writer's
// identifier as soon as one instance says it is the writer; when every instance has answered
// and none is, it is bad: `read_only` (code NO_WRITER) if any instance answered, else the
// first instance's error. The run's topology lane therefore has an outage window exactly while
// the cluster has no writer (docs/results.md, "Failover phases").
import { createProbeDriver, ProbeSetupError } from './sql-driver.ts';
import type { AttemptOutcome, ProbeDriver, ProbeEndpointConfig } from './types.ts';

/** The second label of an RDS cluster, reader, custom or proxy endpoint name. */
export const RDS_ENDPOINT_LABEL = /^(?:cluster-custom-|cluster-ro-|cluster-|proxy-)([a-z0-9]+)$/i;

/**
 * The instance host pattern of an RDS endpoint name: `name.cluster-abc.region.rds.amazonaws.com`
 * (also cluster-ro-, cluster-custom- and proxy- names) gives `?.abc.region.rds.amazonaws.com`.
 * Undefined for any other name.
 */
export function derivedInstanceHostPattern(host: string): string | undefined {
  const labels = host.replace(/\.$/, '').split('.');
  if (labels.length < 3) return undefined;
  const m = RDS_ENDPOINT_LABEL.exec(labels[1]!);
  return m ? ['?', m[1], ...labels.slice(2)].join('.') : undefined;
}

/** `?.suffix[:port]` with `?` replaced by the instance identifier. */
export function instanceAddress(
  pattern: string,
  id: string,
  defaultPort: number,
): { host: string; port: number } {
  const m = /^(.*?)(?::(\d{1,5}))?$/.exec(pattern)!;
  return { host: m[1]!.replace('?', () => id), port: m[2] ? Number(m[2]) : defaultPort };
}

/**
 * An RDS DB instance identifier (1-63 letters, digits and hyphens, starting with a letter). The
 * identifiers come from the database, and each becomes a host name the prober dials with its
 * credentials: anything else (dots, slashes, colons) could point it elsewhere, so it is refused.
 */
export const INSTANCE_ID = /^[A-Za-z][A-Za-z0-9-]{0,62}$/;
/** An Aurora cluster has at most 16 instances (a writer and 15 replicas). */
export const MAX_INSTANCES = 16;

interface Instance {
  id: string;
  driver: ProbeDriver;
  /** The question in flight, if any. */
  pending?: Promise<AttemptOutcome> | undefined;
}

export class TopologyProbe {
  readonly #endpoint: ProbeEndpointConfig;
  readonly #runId: string;
  #instances: Instance[] = [];

  constructor(endpoint: ProbeEndpointConfig, runId: string) {
    this.#endpoint = endpoint;
    this.#runId = runId;
  }

  /** The instances found at setup (identifiers). */
  get instances(): string[] {
    return this.#instances.map((i) => i.id);
  }

  /** The plain driver on `host:port` with one pooled connection, whatever the endpoint's client. */
  #driverFor(host: string, port: number): ProbeDriver {
    const { wrapper: _wrapper, ...plain } = this.#endpoint;
    return createProbeDriver(
      { ...plain, host, port, kinds: ['read'], connectionMode: 'pooled', poolSize: 1 },
      this.#runId,
    );
  }

  /** Finds the instances; throws ProbeSetupError. */
  async setup(): Promise<void> {
    const e = this.#endpoint;
    const pattern = e.topology?.instanceHostPattern ?? derivedInstanceHostPattern(e.host);
    if (!pattern)
      throw new ProbeSetupError(e.name, 'topology discovery', {
        class: 'other',
        message: `cannot build instance names from host ${e.host} (not an RDS cluster, reader, custom or proxy endpoint name): set topology.instanceHostPattern, e.g. ?.abc123.us-east-1.rds.amazonaws.com`,
      });
    const discovery = this.#driverFor(e.host, e.port);
    let ids: string[];
    try {
      ids = (await discovery.instances?.()) ?? [];
    } finally {
      await discovery.close();
    }
    const refuse = (message: string) =>
      new ProbeSetupError(e.name, 'topology discovery', { class: 'other', message });
    if (ids.length === 0)
      throw refuse('the cluster lists no instances (aurora_replica_status() / replica_host_status is empty)');
    if (ids.length > MAX_INSTANCES)
      throw refuse(
        `the cluster lists ${ids.length} instances, more than an Aurora cluster has (${MAX_INSTANCES})`,
      );
    const bad = ids.find((id) => !INSTANCE_ID.test(id));
    if (bad !== undefined)
      throw refuse(
        `the cluster lists an instance identifier that is not an RDS one (${JSON.stringify(bad.slice(0, 80))}): it would become a host name`,
      );
    this.#instances = ids.map((id) => {
      const at = instanceAddress(pattern, id, e.port);
      return { id, driver: this.#driverFor(at.host, at.port) };
    });
  }

  /**
   * Asks every instance whether it is the writer; never rejects. At most one question per
   * instance is in flight: an attempt that finds one still pending (a hung instance) waits for
   * that answer instead of asking again, so a hung instance holds one connection, not one per tick.
   */
  attempt(): Promise<AttemptOutcome> {
    const instances = this.#instances;
    if (instances.length === 0) return Promise.resolve({ class: 'other', message: 'no instances' });
    return new Promise((resolve) => {
      const answers: (AttemptOutcome | undefined)[] = instances.map(() => undefined);
      let pending = instances.length;
      let done = false;
      instances.forEach((instance, k) => {
        instance.pending ??= instance.driver
          .attempt('read', { seq: 0, clientMs: 0 })
          .catch((err: unknown): AttemptOutcome => ({ class: 'other', message: String(err) }))
          .finally(() => {
            instance.pending = undefined;
          });
        void instance.pending.then((outcome) => {
          answers[k] = outcome;
          pending--;
          if (done) return;
          if (outcome.class === 'ok' && outcome.server?.role === 'writer') {
            done = true;
            resolve({ class: 'ok', server: { id: instance.id, role: 'writer' } });
          } else if (pending === 0) {
            done = true;
            resolve(noWriter(instances, answers as AttemptOutcome[]));
          }
        });
      });
    });
  }

  /** Waits for the questions in flight (bounded by their deadlines), then closes the connections. */
  async close(): Promise<void> {
    await Promise.all(this.#instances.map((i) => i.pending));
    await Promise.all(this.#instances.map((i) => i.driver.close()));
  }
}

/** No instance said it was the writer: read_only if any answered, else the first one's error. */
function noWriter(instances: readonly Instance[], answers: readonly AttemptOutcome[]): AttemptOutcome {
  // Only classes: the message stays the same from attempt to attempt (samples share details).
  const each = instances
    .map((instance, k) => {
      const answer = answers[k]!;
      return `${instance.id}: ${answer.class === 'ok' ? (answer.server?.role ?? 'unknown') : answer.class}`;
    })
    .join(', ');
  const message = `no instance reports itself the writer (${each})`;
  if (answers.some((answer) => answer.class === 'ok'))
    return { class: 'read_only', code: 'NO_WRITER', message };
  const first = answers[0]!;
  return { class: first.class, ...(first.code !== undefined ? { code: first.code } : {}), message };
}
