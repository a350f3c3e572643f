// Runs all probes of one endpoint from start() to stop(): one fixed-rate scheduler per probe
// kind, sharing t0, each attempt turned into a Sample for the sink.
import type { ProbeKind } from '../analysis/sample.ts';
import type { CommittedRow } from '../analysis/server-side-gap.ts';
import { monotonicNow, wallClockMs } from './clock.ts';
import { DnsProbe } from './dns-probe.ts';
import { FixedRateScheduler, type SchedulerStats, type SkipReason, type Tick } from './scheduler.ts';
import { createProbeDriver } from './sql-driver.ts';
import { TopologyProbe } from './topology-probe.ts';
import type { AttemptOutcome, ProbeDriver, ProbeEndpointConfig, ProbeSample, SampleSink } from './types.ts';
import { writeKeyOf } from './write-key.ts';

export interface ProberOptions {
  /** Identifies this experiment run; stored in every probe row. */
  runId: string;
  endpoint: ProbeEndpointConfig;
  sink: SampleSink;
  /** Called for every skipped tick (also counted in stats()). */
  onSkip?: (kind: ProbeKind, seq: number, reason: SkipReason) => void;
  /** Replaces the database driver (tests, benchmarks). */
  driver?: ProbeDriver;
  /**
   * Added to every attempt's seq (default 0). A replacement prober of the same run starts past
   * every seq its predecessor can have used, so write keys never repeat.
   */
  seqBase?: number;
}

/**
 * Reconnect time of a pooled attempt not held against the slow threshold: above a PostgreSQL
 * login (fork + SCRAM) on a busy 2-core machine (37-182 ms measured), below any reconnect
 * through a stall (two or more held round trips).
 */
export const RECONNECT_ALLOWANCE_MS = 250;

/** Default in-flight cap: every attempt that can still be running when the next one is due, plus one. */
export function defaultMaxInFlight(attemptDeadlineMs: number, intervalMs: number): number {
  return Math.ceil(attemptDeadlineMs / intervalMs) + 1;
}

export class Prober {
  readonly endpoint: ProbeEndpointConfig;
  readonly #runId: string;
  readonly #sink: SampleSink;
  readonly #onSkip: ProberOptions['onSkip'];
  readonly #driver: ProbeDriver;
  readonly #dns: DnsProbe | undefined;
  readonly #topology: TopologyProbe | undefined;
  readonly #schedulers = new Map<ProbeKind, FixedRateScheduler>();
  readonly #seqBase: number;

  /** Throws TlsConfigError when the endpoint's CA bundle cannot be read. */
  constructor(options: ProberOptions) {
    this.endpoint = options.endpoint;
    this.#runId = options.runId;
    this.#seqBase = options.seqBase ?? 0;
    this.#sink = options.sink;
    this.#onSkip = options.onSkip;
    this.#driver = options.driver ?? createProbeDriver(options.endpoint, options.runId);
    const e = this.endpoint;
    if (e.kinds.includes('dns')) this.#dns = new DnsProbe(e.host, e.dnsServer, e.connectTimeoutMs);
    if (e.kinds.includes('topology')) this.#topology = new TopologyProbe(e, options.runId);
  }

  get runId(): string {
    return this.#runId;
  }

  /**
   * Creates the probe table (write kind), detects dialect features and finds the cluster's
   * instances (topology kind); throws ProbeSetupError.
   */
  async setup(): Promise<void> {
    const e = this.endpoint;
    if (e.kinds.includes('write') || e.kinds.includes('read'))
      await this.#driver.setup(e.kinds.includes('write'));
    await this.#topology?.setup();
  }

  /**
   * Starts every probe kind on a shared clock: t0 = now, plus `phase` (0 <= phase < 1) of the
   * endpoint's interval, so that the endpoints of one process do not all tick at once.
   */
  start(phase = 0): void {
    if (this.#schedulers.size > 0) return;
    const e = this.endpoint;
    const t0 = monotonicNow() + Math.min(Math.max(phase, 0), 1) * e.intervalMs;
    for (const kind of new Set(e.kinds)) {
      const intervalMs =
        kind === 'dns'
          ? (e.dnsIntervalMs ?? e.intervalMs)
          : kind === 'topology'
            ? (e.topology?.intervalMs ?? e.intervalMs)
            : e.intervalMs;
      // A wrapper's connect and its call may each spend its failoverTimeoutMs failing over; the
      // topology probe asks the instances in parallel with the plain driver.
      const deadlineMs =
        kind === 'dns'
          ? e.connectTimeoutMs
          : kind === 'topology'
            ? e.connectTimeoutMs + e.queryTimeoutMs
            : e.connectTimeoutMs + e.queryTimeoutMs + 2 * (e.wrapper?.failoverTimeoutMs ?? 0);
      const scheduler = new FixedRateScheduler(
        {
          intervalMs,
          maxInFlight: e.maxInFlight ?? defaultMaxInFlight(deadlineMs, intervalMs),
          startAtMs: t0,
          onSkip: (seq, reason) => this.#onSkip?.(kind, this.#seqBase + seq, reason),
        },
        (tick) => this.#attempt(kind, tick),
      );
      this.#schedulers.set(kind, scheduler);
      scheduler.start();
    }
  }

  /** Stops scheduling, waits for attempts in flight (bounded by their deadlines), closes connections. */
  async stop(): Promise<void> {
    await Promise.all([...this.#schedulers.values()].map((s) => s.stop()));
    await Promise.all([this.#driver.close(), this.#topology?.close()]);
  }

  stats(): Partial<Record<ProbeKind, SchedulerStats>> {
    const stats: Partial<Record<ProbeKind, SchedulerStats>> = {};
    for (const [kind, scheduler] of this.#schedulers) stats[kind] = scheduler.stats();
    return stats;
  }

  /** The schedulers, e.g. to merge their lag histograms across endpoints. */
  schedulers(): ReadonlyMap<ProbeKind, FixedRateScheduler> {
    return this.#schedulers;
  }

  /**
   * Lost-write audit: every row this run wrote for this endpoint, read back after recovery
   * from `from` (e.g. the new writer instance) or the endpoint itself. Throws ProbeSetupError.
   */
  readBack(from?: { host: string; port: number }): Promise<CommittedRow[]> {
    return this.#driver.readBack(this.endpoint.name, from);
  }

  async #attempt(kind: ProbeKind, tick: Tick): Promise<void> {
    const startMs = wallClockMs(tick.startedMs);
    const seq = this.#seqBase + tick.seq;
    const outcome: AttemptOutcome =
      kind === 'dns'
        ? await this.#dns!.attempt()
        : kind === 'topology'
          ? await this.#topology!.attempt()
          : await this.#driver.attempt(kind, { seq, clientMs: startMs });
    const endedMs = monotonicNow();
    // A pooled attempt that had to reconnect first is judged on its statement: a reconnect is
    // what recovery costs every pool; counting it as a stall placed the recovery edge a
    // connection set-up late (docs/accuracy.md). Only up to RECONNECT_ALLOWANCE_MS of it: a
    // reconnect held longer (a stalled server) is a stall, or an attempt that reconnected
    // through the end of a stall would claim availability from its start.
    const judgedMs = endedMs - tick.startedMs - Math.min(outcome.reconnectMs ?? 0, RECONNECT_ALLOWANCE_MS);
    const sample: ProbeSample = {
      endpoint: this.endpoint.name,
      kind,
      seq,
      startMs,
      endMs: wallClockMs(endedMs),
      // A topology attempt ends when an instance names itself the writer: its length says how
      // slowly the other instances answer, not whether the cluster has a writer.
      class:
        outcome.class === 'ok' && kind !== 'topology' && judgedMs > this.endpoint.slowThresholdMs
          ? 'slow'
          : outcome.class,
    };
    if (outcome.code !== undefined) sample.code = outcome.code;
    if (outcome.message !== undefined) sample.message = outcome.message;
    if (outcome.server) sample.server = outcome.server;
    if (outcome.dnsAnswer) sample.dnsAnswer = outcome.dnsAnswer;
    if (outcome.connectAddr) sample.connectAddr = outcome.connectAddr;
    if (kind === 'write') sample.writeKey = writeKeyOf(this.endpoint.name, seq);
    this.#sink(sample);
  }
}
