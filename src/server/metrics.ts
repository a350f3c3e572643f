// Every Prometheus metric failwatch exposes, defined here and nowhere else. Conventions:
// `failwatch_` prefix, base units in the name (`_seconds`), counters end in `_total`.
// Label values are names from the spec (namespace, experiment, endpoint, probe kind, error
// class, phase) and never anything read from a Secret.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { ERROR_CLASSES } from '../analysis/error-class.ts';
import type { Results } from '../analysis/results.ts';
import type { ProbeKind } from '../analysis/sample.ts';
import { VERDICT_RESULTS, type VerdictResult } from '../analysis/verdict.ts';
import type { FailoverExperimentSpec } from '../api/experiment-spec.ts';
import { EXPERIMENT_PHASES, type ExperimentPhase } from '../api/experiment-status.ts';
import { splitLane } from '../api/probe-lanes.ts';
import { operationLabel, targetIdentifier } from '../api/spec-accessors.ts';
import type { LagSummary } from '../probe/lag-histogram.ts';
import type { SkipReason } from '../probe/scheduler.ts';
import type { ProbeSample } from '../probe/types.ts';

export const METRIC_PREFIX = 'failwatch_';

/**
 * `failwatch_build_info{version,node_version} 1`: which build runs, for dashboards and for
 * alerts on mixed versions after an upgrade.
 */
export function registerBuildInfo(registry: Registry, version: string): Gauge {
  const buildInfo = new Gauge({
    name: 'failwatch_build_info',
    help: 'Always 1; the labels say which failwatch version and Node.js version run.',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  });
  buildInfo.set({ version, node_version: process.versions.node }, 1);
  return buildInfo;
}

/** A registry with Node's process metrics (`process_*`, `nodejs_*`) when asked for. */
export function createRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

// ---------------------------------------------------------------------------------------
// Prober (served by each prober pod, scraped by a PodMonitor)

/** 1 ms .. 30 s: fast local answers up to attempts that ran into a long deadline. */
export const ATTEMPT_DURATION_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Schedule lag quantiles exposed as `quantile` label values ("1" is the maximum). */
export const SCHEDULE_LAG_QUANTILES = ['0.5', '0.99', '1'] as const;

export interface ProbeMetricLabels {
  namespace: string;
  experiment: string;
  endpoint: string;
  /**
   * The zone the prober runs in (spec.probers.zones), '' without zones: Prometheus stores an
   * empty label as no label, so experiments without zones keep the series they always had.
   */
  zone: string;
}

export interface ProbeMetrics {
  /** Counts one finished attempt, observes its duration and sets `up` from its class. */
  observe(sample: ProbeSample): void;
  /** Counts one skipped tick (in-flight cap reached or the event loop was late). */
  skipped(kind: ProbeKind, reason: SkipReason): void;
  /** Counts one sample measured but not kept (the pod's sample store is full). */
  dropped(kind: ProbeKind): void;
}

/**
 * The live metrics of one prober (one endpoint of one experiment). Every class starts at 0
 * for the endpoint's kinds, so `rate()` and `increase()` see the first error.
 * `lag` is read at scrape time (the schedulers keep their own histogram).
 */
export function createProbeMetrics(
  registry: Registry,
  labels: ProbeMetricLabels,
  kinds: readonly ProbeKind[],
  lag: () => Partial<Record<ProbeKind, LagSummary>>,
): ProbeMetrics {
  // One set of instruments per registry: a prober pod that serves several lanes registers
  // each lane's label values on the same series families.
  let shared = probeInstruments.get(registry);
  if (!shared) {
    shared = probeInstrumentsOf(registry);
    probeInstruments.set(registry, shared);
  }
  const { attempts, duration, up, skippedTicks, droppedSamples, lagSources } = shared;
  lagSources.push({ labels, kinds, lag });
  for (const kind of kinds) {
    for (const errorClass of ERROR_CLASSES) attempts.inc({ ...labels, kind, class: errorClass }, 0);
    for (const reason of ['in-flight-cap', 'late'] as const) skippedTicks.inc({ ...labels, kind, reason }, 0);
    droppedSamples.inc({ ...labels, kind }, 0);
  }
  return {
    observe(sample) {
      const kindLabels = { ...labels, kind: sample.kind };
      attempts.inc({ ...kindLabels, class: sample.class });
      duration.observe(kindLabels, Math.max(0, sample.endMs - sample.startMs) / 1000);
      up.set(kindLabels, sample.class === 'ok' ? 1 : 0);
    },
    skipped(kind, reason) {
      skippedTicks.inc({ ...labels, kind, reason });
    },
    dropped(kind) {
      droppedSamples.inc({ ...labels, kind });
    },
  };
}

interface LagSource {
  labels: ProbeMetricLabels;
  kinds: readonly ProbeKind[];
  lag: () => Partial<Record<ProbeKind, LagSummary>>;
}

const probeInstruments = new WeakMap<Registry, ReturnType<typeof probeInstrumentsOf>>();

function probeInstrumentsOf(registry: Registry) {
  const base = ['experiment', 'namespace', 'endpoint', 'zone'] as const;
  const lagSources: LagSource[] = [];
  const attempts = new Counter({
    name: 'failwatch_probe_attempts_total',
    help: 'Probe attempts finished, by probe kind and error class (ok, slow, read_only, ...).',
    labelNames: [...base, 'kind', 'class'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'failwatch_probe_attempt_duration_seconds',
    help: 'Duration of probe attempts (connect + query, or DNS resolution), whatever their class.',
    labelNames: [...base, 'kind'],
    buckets: ATTEMPT_DURATION_BUCKETS_SECONDS,
    registers: [registry],
  });
  const up = new Gauge({
    name: 'failwatch_probe_up',
    help: '1 when the last finished attempt of this probe kind was ok, else 0.',
    labelNames: [...base, 'kind'],
    registers: [registry],
  });
  const skippedTicks = new Counter({
    name: 'failwatch_probe_skipped_ticks_total',
    help: 'Scheduled attempts not started: in-flight cap reached, or the process woke up too late.',
    labelNames: [...base, 'kind', 'reason'],
    registers: [registry],
  });
  const droppedSamples = new Counter({
    name: 'failwatch_probe_samples_dropped_total',
    help: 'Samples measured but not kept because the prober pod held its maximum; results will miss them.',
    labelNames: [...base, 'kind'],
    registers: [registry],
  });
  new Gauge({
    name: 'failwatch_probe_schedule_lag_seconds',
    help: 'Delay between the scheduled and the actual start of attempts, as quantiles since start ("1" = max).',
    labelNames: [...base, 'kind', 'quantile'],
    registers: [registry],
    collect() {
      for (const { labels, kinds, lag } of lagSources) {
        const summaries = lag();
        for (const kind of kinds) {
          const s = summaries[kind];
          if (!s) continue;
          const values = { '0.5': s.p50Ms, '0.99': s.p99Ms, '1': s.maxMs };
          for (const quantile of SCHEDULE_LAG_QUANTILES)
            this.set({ ...labels, kind, quantile }, values[quantile] / 1000);
        }
      }
    },
  });
  return { attempts, duration, up, skippedTicks, droppedSamples, lagSources };
}

// ---------------------------------------------------------------------------------------
// Controller (served by the operator)

/** Reconcile durations: 1 ms .. 60 s. */
export const RECONCILE_DURATION_BUCKETS_SECONDS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export type ReconcileResult = 'success' | 'requeue' | 'error';

export interface ControllerMetrics {
  reconcileTotal: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  reconcileDuration: Histogram<'controller'>;
  workqueueDepth: Gauge<'controller'>;
  experiments: Gauge<'phase'>;
  /** One finished reconcile: counts it (and its error) and observes its duration. */
  observeReconcile(controller: string, result: ReconcileResult, seconds: number): void;
  /** Experiments by phase; every phase is set (absent ones to 0). */
  setExperimentsByPhase(counts: Partial<Record<ExperimentPhase, number>>): void;
}

export function createControllerMetrics(registry: Registry): ControllerMetrics {
  const reconcileTotal = new Counter({
    name: 'failwatch_reconcile_total',
    help: 'Reconciles finished, by controller and result (success, requeue, error).',
    labelNames: ['controller', 'result'],
    registers: [registry],
  });
  const reconcileErrors = new Counter({
    name: 'failwatch_reconcile_errors_total',
    help: 'Reconciles that ended in an error (and were requeued with backoff).',
    labelNames: ['controller'],
    registers: [registry],
  });
  const reconcileDuration = new Histogram({
    name: 'failwatch_reconcile_duration_seconds',
    help: 'Time spent in one reconcile.',
    labelNames: ['controller'],
    buckets: RECONCILE_DURATION_BUCKETS_SECONDS,
    registers: [registry],
  });
  const workqueueDepth = new Gauge({
    name: 'failwatch_workqueue_depth',
    help: 'Keys waiting in the work queue (not counting those being processed).',
    labelNames: ['controller'],
    registers: [registry],
  });
  const experiments = new Gauge({
    name: 'failwatch_experiments',
    help: 'FailoverExperiment objects by phase.',
    labelNames: ['phase'],
    registers: [registry],
  });
  for (const phase of EXPERIMENT_PHASES) experiments.set({ phase }, 0);
  return {
    reconcileTotal,
    reconcileErrors,
    reconcileDuration,
    workqueueDepth,
    experiments,
    observeReconcile(controller, result, seconds) {
      reconcileTotal.inc({ controller, result });
      // The error series exists (at 0) from the controller's first reconcile on.
      reconcileErrors.inc({ controller }, result === 'error' ? 1 : 0);
      reconcileDuration.observe({ controller }, seconds);
    },
    setExperimentsByPhase(counts) {
      for (const phase of EXPERIMENT_PHASES) experiments.set({ phase }, counts[phase] ?? 0);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Results of finished runs (served by the operator)

export const VERDICTS: readonly VerdictResult[] = VERDICT_RESULTS;

export interface ResultMetrics {
  /** Replaces every series of this experiment with the results of its latest run. */
  recordResults(namespace: string, name: string, results: Results): void;
  /** Removes every series of this experiment (deleted, or its results are gone). */
  forgetExperiment(namespace: string, name: string): void;
  /**
   * Replaces the trigger-time series with those of `experiments` (the controller's cache):
   * one per experiment with a `status.triggerTime`; experiments no longer listed lose theirs.
   */
  setTriggerTimes(experiments: readonly TriggeredExperiment[]): void;
  /** Rebuilds the trigger-time series from `source` at every scrape (and only then). */
  triggerTimesFrom(source: () => readonly TriggeredExperiment[]): void;
}

/** The fields of a FailoverExperiment the trigger-time gauge reads. */
export interface TriggeredExperiment {
  metadata: { namespace?: string; name?: string };
  spec?: FailoverExperimentSpec;
  status?: { triggerTime?: string; target?: string; trigger?: { operation?: string } };
}

type SeriesLabels = Record<string, string>;

export function createResultMetrics(registry: Registry): ResultMetrics {
  const downtime = new Gauge({
    name: 'failwatch_experiment_downtime_seconds',
    help: "Measured downtime of the experiment's latest run, by endpoint and probe kind (write, read).",
    labelNames: ['namespace', 'experiment', 'endpoint', 'zone', 'kind'],
    registers: [registry],
  });
  const lostWrites = new Gauge({
    name: 'failwatch_experiment_lost_writes',
    help: "Acknowledged writes missing after recovery in the experiment's latest run, by endpoint.",
    labelNames: ['namespace', 'experiment', 'endpoint', 'zone'],
    registers: [registry],
  });
  const coverageGaps = new Gauge({
    name: 'failwatch_experiment_coverage_gaps',
    help: "Coverage gaps (stretches without probe attempts: missing data, not downtime) of the experiment's latest run, by endpoint and probe kind.",
    labelNames: ['namespace', 'experiment', 'endpoint', 'zone', 'kind'],
    registers: [registry],
  });
  const coverageGapSeconds = new Gauge({
    name: 'failwatch_experiment_coverage_gap_seconds',
    help: "Total length of the coverage gaps of the experiment's latest run, by endpoint and probe kind.",
    labelNames: ['namespace', 'experiment', 'endpoint', 'zone', 'kind'],
    registers: [registry],
  });
  const droppedSamples = new Gauge({
    name: 'failwatch_experiment_dropped_samples',
    help: "Samples a prober could not store (its store was full) in the experiment's latest run, by endpoint.",
    labelNames: ['namespace', 'experiment', 'endpoint', 'zone'],
    registers: [registry],
  });
  const verdict = new Gauge({
    name: 'failwatch_experiment_verdict',
    help: "Verdict of the experiment's latest run: 1 for the current verdict, 0 for the others.",
    labelNames: ['namespace', 'experiment', 'verdict'],
    registers: [registry],
  });
  const lastRun = new Gauge({
    name: 'failwatch_experiment_last_run_timestamp_seconds',
    help: "When the experiment's latest run ended observing, Unix time.",
    labelNames: ['namespace', 'experiment'],
    registers: [registry],
  });

  let triggerSource: (() => readonly TriggeredExperiment[]) | undefined;
  const triggerTime = new Gauge({
    name: 'failwatch_experiment_trigger_timestamp_seconds',
    help: "When the experiment's failover or operation was triggered (T0, status.triggerTime), Unix time; operation is the trigger action.",
    labelNames: ['namespace', 'experiment', 'target', 'operation'],
    registers: [registry],
    collect() {
      if (triggerSource) setTriggerTimes(triggerSource());
    },
  });

  // prom-client removes series by their full label set only, so remember them per experiment.
  const series = new Map<string, Array<{ gauge: Gauge<string>; labels: SeriesLabels }>>();
  const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

  function forgetExperiment(namespace: string, name: string): void {
    const key = keyOf(namespace, name);
    for (const { gauge, labels } of series.get(key) ?? []) gauge.remove(labels);
    series.delete(key);
  }

  function recordResults(namespace: string, name: string, results: Results): void {
    forgetExperiment(namespace, name);
    const written: Array<{ gauge: Gauge<string>; labels: SeriesLabels }> = [];
    const set = (gauge: Gauge<string>, labels: SeriesLabels, value: number) => {
      gauge.set(labels, value);
      written.push({ gauge, labels });
    };
    const experiment = { namespace, experiment: name };
    for (const endpoint of results.endpoints) {
      // A per-zone lane: endpoint and zone labels; without zones zone is '' (no label).
      const lane = { ...experiment, endpoint: endpoint.endpoint ?? endpoint.name, zone: endpoint.zone ?? '' };
      for (const kind of ['write', 'read'] as const) {
        const result = endpoint[kind];
        if (result) set(downtime, { ...lane, kind }, result.downtimeSeconds);
      }
      if (endpoint.lostWrites !== null) set(lostWrites, lane, endpoint.lostWrites);
      // Results written before coverage have none: no series rather than a false 0.
      if (endpoint.coverage) {
        for (const probe of endpoint.coverage.lanes) {
          const labels = { ...lane, kind: probe.kind };
          set(coverageGaps, labels, probe.gaps.length + probe.gapsOmitted);
          set(coverageGapSeconds, labels, probe.gapSeconds);
        }
        set(droppedSamples, lane, endpoint.coverage.droppedSamples);
      }
    }
    for (const v of VERDICTS)
      set(verdict, { ...experiment, verdict: v }, v === results.verdict.result ? 1 : 0);
    const endedMs = Date.parse(results.observation.end.time);
    if (Number.isFinite(endedMs)) set(lastRun, experiment, endedMs / 1000);
    series.set(keyOf(namespace, name), written);
  }

  function setTriggerTimes(experiments: readonly TriggeredExperiment[]): void {
    // reset() and the sets run in one synchronous turn: a scrape never sees the gap.
    triggerTime.reset();
    for (const obj of experiments) {
      const { namespace, name } = obj.metadata;
      const ms = Date.parse(obj.status?.triggerTime ?? '');
      if (!namespace || !name || !Number.isFinite(ms)) continue;
      const target = obj.status?.target ?? (obj.spec ? targetIdentifier(obj.spec) : null) ?? '';
      // The operation the run recorded with its intent; the spec's when an older status lacks it.
      const operation = obj.status?.trigger?.operation ?? operationLabel(obj.spec);
      triggerTime.set({ namespace, experiment: name, target, operation }, ms / 1000);
    }
  }

  return {
    recordResults,
    forgetExperiment,
    setTriggerTimes,
    triggerTimesFrom: (source) => {
      triggerSource = source;
    },
  };
}

// ---------------------------------------------------------------------------------------
// FailoverSchedules (served by the operator)

export interface ScheduleSnapshot {
  /** Finished runs still in history, by verdict (Pass, Fail, Failed, Aborted). */
  runsByVerdict: Record<string, number>;
  /** Downtime of the latest finished run, by endpoint and probe kind. */
  lastDowntime: Array<{ endpoint: string; kind: 'write' | 'read'; seconds: number }>;
  nextRunMs?: number;
  regressionDetected: boolean;
}

export const SCHEDULE_SKIP_REASONS = ['active-run', 'missed'] as const;

export interface ScheduleMetrics {
  /** Replaces every series of this schedule with the given snapshot. */
  recordSchedule(namespace: string, name: string, snapshot: ScheduleSnapshot): void;
  /** Counts ticks the schedule did not run (skipped-active, missed). */
  countSkipped(
    namespace: string,
    name: string,
    reason: (typeof SCHEDULE_SKIP_REASONS)[number],
    n?: number,
  ): void;
  forgetSchedule(namespace: string, name: string): void;
}

export function createScheduleMetrics(registry: Registry): ScheduleMetrics {
  const runs = new Gauge({
    name: 'failwatch_schedule_runs',
    help: 'Finished runs of the schedule still in history, by verdict.',
    labelNames: ['namespace', 'schedule', 'verdict'],
    registers: [registry],
  });
  const lastDowntime = new Gauge({
    name: 'failwatch_schedule_last_downtime_seconds',
    help: "Downtime measured by the schedule's latest finished run, by endpoint and probe kind.",
    labelNames: ['namespace', 'schedule', 'endpoint', 'zone', 'kind'],
    registers: [registry],
  });
  const nextRun = new Gauge({
    name: 'failwatch_schedule_next_run_timestamp_seconds',
    help: "The schedule's next tick, Unix time (absent while suspended).",
    labelNames: ['namespace', 'schedule'],
    registers: [registry],
  });
  const regression = new Gauge({
    name: 'failwatch_schedule_regression',
    help: "1 when the latest run's worst downtime exceeds the history median by more than the margin.",
    labelNames: ['namespace', 'schedule'],
    registers: [registry],
  });
  const skipped = new Counter({
    name: 'failwatch_schedule_skipped_ticks_total',
    help: 'Ticks that did not run: a run was still active, or the controller was too late (missed).',
    labelNames: ['namespace', 'schedule', 'reason'],
    registers: [registry],
  });
  const series = new Map<string, Array<{ gauge: Gauge<string>; labels: SeriesLabels }>>();
  const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;
  function forgetSchedule(namespace: string, name: string): void {
    for (const { gauge, labels } of series.get(keyOf(namespace, name)) ?? []) gauge.remove(labels);
    series.delete(keyOf(namespace, name));
    for (const reason of SCHEDULE_SKIP_REASONS) skipped.remove({ namespace, schedule: name, reason });
  }
  return {
    forgetSchedule,
    recordSchedule(namespace, name, snapshot) {
      for (const { gauge, labels } of series.get(keyOf(namespace, name)) ?? []) gauge.remove(labels);
      const written: Array<{ gauge: Gauge<string>; labels: SeriesLabels }> = [];
      const set = (gauge: Gauge<string>, labels: SeriesLabels, value: number) => {
        gauge.set(labels, value);
        written.push({ gauge, labels });
      };
      const schedule = { namespace, schedule: name };
      for (const [verdict, n] of Object.entries(snapshot.runsByVerdict))
        set(runs, { ...schedule, verdict }, n);
      for (const d of snapshot.lastDowntime)
        set(lastDowntime, { ...schedule, ...splitLane(d.endpoint), kind: d.kind }, d.seconds);
      if (snapshot.nextRunMs !== undefined) set(nextRun, schedule, snapshot.nextRunMs / 1000);
      set(regression, schedule, snapshot.regressionDetected ? 1 : 0);
      series.set(keyOf(namespace, name), written);
      // Both reasons exist from the first reconcile on (at 0), so increase() sees the first skip.
      for (const reason of SCHEDULE_SKIP_REASONS) skipped.inc({ ...schedule, reason }, 0);
    },
    countSkipped(namespace, name, reason, n = 1) {
      skipped.inc({ namespace, schedule: name, reason }, n);
    },
  };
}
