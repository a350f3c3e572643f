// One experiment run as a state machine: preflight -> baseline -> trigger -> observe ->
// audit -> analyze. It knows nothing of Kubernetes or terminals: the CLI and the controller
// are shells that pass in credentials, a trigger and hooks.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AuditRow, analyzeRun, type RunMeta } from '../analysis/analyze-run.ts';
import type { Results } from '../analysis/results.ts';
import type { InconclusiveFinding } from '../analysis/verdict.ts';
import { parseDurationMs } from '../api/duration.ts';
import type { EndpointSpec } from '../api/experiment-spec.ts';
import { type ProbeLane, probeLanes } from '../api/probe-lanes.ts';
import {
  endpointSloSeconds,
  sloSeconds,
  targetIdentifier,
  triggerOperation,
  triggerVerb,
} from '../api/spec-accessors.ts';
import type { ExperimentManifest } from '../api/validate-experiment.ts';
import { Prober } from '../probe/prober.ts';
import { Redactor } from '../probe/redact.ts';
import { ProbeSetupError } from '../probe/sql-driver.ts';
import { TlsConfigError } from '../probe/tls-options.ts';
import type { ProbeDriver, ProbeEndpointConfig, ProbeSample } from '../probe/types.ts';
import {
  type FailoverTrigger,
  type FiredTrigger,
  TriggerError,
  type TriggerEvent,
} from '../trigger/types.ts';
import { DRY_RUN, dryRunMessage } from './dry-run.ts';
import { type EndpointCredentials, EngineConfigError, probeConfigFor } from './endpoint-config.ts';
import {
  baselineHealth,
  baselineLanes,
  PROBER_WARM_UP_MS,
  RecoveryTracker,
  specLanes,
  unhealthyBaselineMessage,
  unhealthyLanes,
} from './recovery.ts';
import {
  callOnce,
  eventsForResults,
  type Inconclusive,
  lookAtTarget,
  RoleFlipWatcher,
  TriggerObserver,
} from './trigger-protocol.ts';

export type EnginePhase = 'Preflight' | 'Baseline' | 'Triggering' | 'Observing' | 'Analyzing';
export type EngineEnd = 'Completed' | 'Failed' | 'Aborted';

export interface EngineHooks {
  onPhase?(phase: EnginePhase, message: string): void;
  onSample?(sample: ProbeSample): void;
  /** Called right before the trigger fires; it must durably record the intent (at-most-once). */
  beforeTrigger?(): Promise<void>;
  afterTrigger?(fired: FiredTrigger): Promise<void>;
}

export interface RunOptions {
  manifest: ExperimentManifest;
  trigger: FailoverTrigger;
  credentials(endpoint: EndpointSpec): EndpointCredentials;
  hooks?: EngineHooks;
  /** Aborting stops the run cleanly; what was measured is still analyzed. */
  signal?: AbortSignal;
  runId?: string;
  /** How often the observe loop checks recovery and the target's state. */
  pollMs?: number;
  /** Replaces the database driver (tests). */
  driverFor?: (config: ProbeEndpointConfig) => ProbeDriver;
}

export interface RunOutcome {
  end: EngineEnd;
  runId: string;
  /**
   * Machine-readable reason for Failed/Aborted (e.g. BaselineUnhealthy, TargetNotAvailable);
   * DryRun for a Completed dry run (spec.dryRun), which stops before the trigger.
   */
  reason?: string;
  message: string;
  triggered: boolean;
  results?: Results;
  samples: ProbeSample[];
}

class RunFailure extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Reasons for a probe that could not be set up, by error class. */
export function setupReason(errorClass: string): string {
  const byClass: Record<string, string> = {
    auth_error: 'AuthenticationFailed',
    tls_error: 'TlsFailed',
    dns_error: 'EndpointNotResolvable',
    connection_refused: 'EndpointUnreachable',
    connect_timeout: 'EndpointUnreachable',
    connection_lost: 'EndpointUnreachable',
    read_only: 'EndpointReadOnly',
  };
  return byClass[errorClass] ?? 'ProbeSetupFailed';
}

export async function runExperiment(options: RunOptions): Promise<RunOutcome> {
  const { manifest, trigger, hooks = {}, signal } = options;
  const spec = manifest.spec;
  const runId = options.runId ?? randomUUID();
  const pollMs = options.pollMs ?? 100;
  const samples: ProbeSample[] = [];
  const probers: Prober[] = [];
  let fired: FiredTrigger | undefined;
  let baselineStartMs = Date.now();
  let tracker: RecoveryTracker | undefined;
  let flips: RoleFlipWatcher | undefined;
  let inconclusive: Inconclusive | undefined;
  // Samples, the run's message and results.json hide the credentials, as a prober pod does.
  const redactor = new Redactor();
  const sink = (s: ProbeSample) => {
    if (s.message !== undefined) s.message = redactor.redact(s.message);
    samples.push(s);
    tracker?.add(s);
    flips?.add(s);
    hooks.onSample?.(s);
  };
  const phase = (p: EnginePhase, message: string) => hooks.onPhase?.(p, message);
  const aborted = () => signal?.aborted === true;

  const finish = async (end: EngineEnd, message: string, reason?: string): Promise<RunOutcome> => {
    // Lanes must have attempts up to here (coverage); the audit after it takes its own time.
    const probingEndMs = Date.now();
    await Promise.allSettled(probers.map((p) => p.stop()));
    const outcome: RunOutcome = {
      end,
      runId,
      message: redactor.redact(message),
      triggered: fired !== undefined,
      samples,
    };
    if (reason) outcome.reason = reason;
    if (fired) {
      phase('Analyzing', 'auditing writes and analyzing samples');
      const audit = spec.audit.lostWrites && !aborted() ? await auditRows(probers) : undefined;
      const events = await eventsForResults(trigger, baselineStartMs - 60_000, Date.now() + 1000);
      outcome.results = analyzeMeasurement({
        manifest,
        runId,
        baselineStartMs,
        fired,
        observeEndMs: Date.now(),
        coverageEndMs: probingEndMs,
        events,
        samples,
        auditRows: audit,
        inconclusive: inconclusive ? [inconclusive] : undefined,
      });
    }
    return outcome;
  };

  try {
    // Preflight: every endpoint answers with the given credentials, the target can fail over.
    phase('Preflight', 'checking endpoints and the failover target');
    for (const endpoint of spec.endpoints) {
      const credentials = options.credentials(endpoint);
      redactor.add(credentials.password);
      const endpointConfig = probeConfigFor(endpoint, credentials);
      try {
        const driver = options.driverFor?.(endpointConfig);
        probers.push(new Prober({ runId, endpoint: endpointConfig, sink, ...(driver ? { driver } : {}) }));
      } catch (err) {
        // An unreadable tls.caFile (a lab that is down, a typo) is the user's to fix, not a bug.
        if (err instanceof TlsConfigError)
          throw new RunFailure('TlsFailed', `endpoint \`${endpoint.name}\`: ${err.message}`);
        throw err;
      }
    }
    // One at a time: several endpoints usually reach the same database, and concurrent
    // CREATE TABLE IF NOT EXISTS races in PostgreSQL's catalog.
    for (const p of probers) await p.setup();
    await trigger.preflight();
    if (aborted()) return await finish('Aborted', 'stopped before the baseline');

    // Baseline: the endpoints must be healthy before anything is triggered.
    const baselineMs = parseDurationMs(spec.baseline.duration);
    phase('Baseline', `probing for ${spec.baseline.duration} before the trigger`);
    for (const p of probers) p.start();
    // The probers' warm-up is recorded but not judged (PROBER_WARM_UP_MS).
    await sleep(PROBER_WARM_UP_MS, undefined, { signal }).catch(() => {});
    baselineStartMs = Date.now();
    await sleep(baselineMs, undefined, { signal }).catch(() => {});
    if (aborted()) return await finish('Aborted', 'stopped during the baseline; nothing was triggered');
    const health = baselineHealth(
      samples.filter((s) => s.startMs >= baselineStartMs),
      baselineLanes(spec.endpoints, baselineMs),
    );
    const unhealthy = unhealthyLanes(health, spec.baseline.maxErrorRatio);
    if (unhealthy.length > 0) {
      const worst = unhealthy.filter((l) => l.topClass).sort((a, b) => b.ratio - a.ratio)[0];
      const example = worst ? `; e.g. ${worst.topClass}: ${worst.topMessage ?? ''}` : '';
      throw new RunFailure('BaselineUnhealthy', `${unhealthyBaselineMessage(unhealthy)}${example}`.trim());
    }
    if (spec.dryRun === true) return await finish('Completed', dryRunMessage(health), DRY_RUN);

    // Trigger, at most once: the intent is recorded before the call (trigger-protocol.ts).
    phase('Triggering', `${triggerVerb(spec)} ${trigger.description}`);
    const writerBefore = (await trigger.state())?.writerId;
    await hooks.beforeTrigger?.();
    const call = await callOnce(trigger, writerBefore);
    if (call.kind === 'refused')
      throw new RunFailure(call.reason, `${call.message} (the call was refused: nothing was failed over)`);
    fired = call.fired;
    await hooks.afterTrigger?.(fired);

    // Observe until every lane has been good for recoveredFor and the failover was seen and
    // settled; transient RDS errors back off and never end the run.
    const recoveredForMs = parseDurationMs(spec.observe.recoveredFor);
    tracker = new RecoveryTracker(specLanes(spec.endpoints), fired.t0Ms);
    flips = new RoleFlipWatcher(fired.t0Ms);
    for (const s of samples) {
      tracker.add(s);
      flips.add(s);
    }
    phase(
      'Observing',
      `watching recovery (recovered for ${spec.observe.recoveredFor}, at most ${spec.observe.maxDuration})`,
    );
    const observer = new TriggerObserver({
      t0Ms: fired.t0Ms,
      writerBefore,
      outcome: call.outcome,
      maxDurationMs: parseDurationMs(spec.observe.maxDuration),
      observeOnly: spec.trigger.type === 'none',
      operation: triggerOperation(spec),
    });
    while (!aborted()) {
      const now = Date.now();
      const look = observer.wantsLook(now)
        ? await lookAtTarget(trigger, fired.t0Ms, writerBefore).catch((err: unknown) => ({
            error: err instanceof TriggerError ? err : new TriggerError('RdsError', (err as Error).message),
          }))
        : undefined;
      const decision = observer.step({
        nowMs: now,
        look,
        roleFlipMs: flips.firstFlipMs(),
        restartMs: flips.firstRestartMs(),
        sawOutage: tracker.sawOutage(),
        recovered: tracker.allRecovered(now, recoveredForMs),
      });
      if (decision.done) {
        inconclusive = decision.inconclusive;
        break;
      }
      await sleep(pollMs);
    }
    if (aborted())
      return await finish('Aborted', 'stopped during observation; the measured part was analyzed');
    return await finish('Completed', 'the run completed');
  } catch (err) {
    if (err instanceof RunFailure || err instanceof TriggerError || err instanceof EngineConfigError)
      return await finish('Failed', err.message, (err as { reason: string }).reason);
    if (err instanceof ProbeSetupError)
      return await finish('Failed', err.message, setupReason(err.outcome.class));
    return await finish('Failed', (err as Error).message, 'InternalError');
  }
}

export interface Measurement {
  manifest: ExperimentManifest;
  runId: string;
  baselineStartMs: number;
  fired: FiredTrigger;
  observeEndMs: number;
  /** When the probers were stopped (coverage: lanes need attempts up to here); default observeEndMs. */
  coverageEndMs?: number;
  /** Per endpoint (lane name), when its own prober stopped, where that differs from coverageEndMs. */
  coverageEndByEndpointMs?: Readonly<Record<string, number>>;
  events: TriggerEvent[];
  samples: readonly ProbeSample[];
  auditRows: AuditRow[] | undefined;
  /** Endpoints with a write probe whose read-back could not run (their lost writes are null). */
  auditMissing?: readonly string[];
  /** Samples each endpoint's prober could not store, by endpoint. */
  droppedSamples?: Readonly<Record<string, number>>;
  /** Reasons found outside the samples why the run cannot be decided (e.g. FailoverNotObserved). */
  inconclusive?: readonly InconclusiveFinding[];
  /**
   * The lanes probed (Kubernetes: per zone with spec.probers.zones); default one per endpoint,
   * as `failwatch run` probes them from where it runs.
   */
  lanes?: readonly ProbeLane[];
}

/** Samples and trigger record -> the results document (shared by the CLI and the controller). */
export function analyzeMeasurement(m: Measurement): Results {
  return analyzeRun({ ...measurementMeta(m), samples: m.samples });
}

/** The run's description for the analysis, all but its samples (analyzeRunStreamed reads those). */
export function measurementMeta(m: Omit<Measurement, 'samples'>): RunMeta {
  const spec = m.manifest.spec;
  return {
    experiment: { name: m.manifest.metadata.name, namespace: m.manifest.metadata.namespace, runId: m.runId },
    phases: {
      baselineStartMs: m.baselineStartMs,
      triggerMs: m.fired.t0Ms,
      observeEndMs: m.observeEndMs,
      ...(m.coverageEndMs !== undefined ? { coverageEndMs: m.coverageEndMs } : {}),
      ...(m.coverageEndByEndpointMs ? { coverageEndByEndpointMs: { ...m.coverageEndByEndpointMs } } : {}),
    },
    trigger: {
      type: spec.trigger.type,
      action: m.fired.action,
      target: targetIdentifier(spec),
      targetKind: spec.target?.kind ?? null,
      events: m.events.map((e) => ({ atMs: e.atMs, source: e.sourceIdentifier, message: e.message })),
    },
    endpoints: (m.lanes ?? probeLanes({ endpoints: spec.endpoints })).map(({ name, endpoint: e, zone }) => ({
      name,
      ...(zone !== undefined ? { endpoint: e.name, zone } : {}),
      role: e.role,
      dialect: e.dialect,
      connectionMode: e.connectionMode,
      client: e.client.stack,
      probes: [...e.probes],
      slo: endpointSloSeconds(spec, e),
      intervalMs: parseDurationMs(e.interval),
      dnsIntervalMs: parseDurationMs(e.dns.interval),
      topologyIntervalMs: parseDurationMs(e.topology.interval),
    })),
    auditRows: m.auditRows,
    ...(m.auditMissing ? { auditMissing: m.auditMissing } : {}),
    ...(m.droppedSamples ? { droppedSamples: m.droppedSamples } : {}),
    ...(m.inconclusive ? { inconclusive: m.inconclusive } : {}),
    defaultSlo: sloSeconds(spec.slo),
  };
}

/** Rows of this run read back after recovery, per endpoint with a write probe. */
async function auditRows(probers: Prober[]): Promise<AuditRow[] | undefined> {
  const rows: AuditRow[] = [];
  for (const p of probers) {
    if (!p.endpoint.kinds.includes('write')) continue;
    try {
      for (const r of await p.readBack()) rows.push({ ...r, endpoint: p.endpoint.name });
    } catch {
      return undefined;
    }
  }
  return rows;
}
