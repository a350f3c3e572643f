// How many samples a run may make per prober. A prober keeps at most PROBER_MAX_SAMPLES (its
// store, src/server/sample-store.ts) and drops the rest, which makes the run Inconclusive; the
// controller holds a run's samples on disk in 27-byte records and analyses one endpoint's lanes
// at a time (about 40 bytes a sample in memory, so one full prober's worth is ~80 MiB at the
// final analysis; docs/operations.md, longrun bench). A spec whose probes would overflow a
// prober is refused at validation, before anything runs.
import { formatDurationMs, parseDurationMs } from './duration.ts';
import type { FailoverExperimentSpec } from './experiment-spec.ts';
import type { FieldError } from './field-errors.ts';
import { laneIntervalMsOf } from './spec-accessors.ts';

/** Samples one prober keeps. */
export const PROBER_MAX_SAMPLES = 2_000_000;
/**
 * Probing time besides baseline + observe.maxDuration that the budget allows for: preflight
 * (probers start before the baseline) and stopping at the analysis.
 */
export const PROBING_SLACK_MS = 5 * 60_000;

type Spec = Pick<FailoverExperimentSpec, 'endpoints' | 'baseline' | 'observe'>;

/** The most samples one endpoint's prober makes in a run of this spec. */
export function samplesPerProberAtMost(spec: Spec, endpoint: Spec['endpoints'][number]): number {
  const probingMs = probingMsOf(spec);
  return endpoint.probes.reduce(
    (sum, kind) => sum + Math.ceil(probingMs / laneIntervalMsOf(endpoint, kind)),
    0,
  );
}

function probingMsOf(spec: Spec): number {
  return (
    parseDurationMs(spec.baseline.duration) + parseDurationMs(spec.observe.maxDuration) + PROBING_SLACK_MS
  );
}

/** An error per endpoint whose prober would make more samples than it keeps (spec with defaults). */
export function sampleBudgetErrors(spec: Spec, basePath = 'spec'): FieldError[] {
  const errors: FieldError[] = [];
  const probingMs = probingMsOf(spec);
  spec.endpoints.forEach((endpoint, i) => {
    const samples = samplesPerProberAtMost(spec, endpoint);
    if (samples <= PROBER_MAX_SAMPLES) return;
    const sqlKinds = endpoint.probes.filter((kind) => kind === 'write' || kind === 'read').length;
    // dns and topology probes have their own intervals.
    const dnsPerMs = endpoint.probes
      .filter((kind) => kind === 'dns' || kind === 'topology')
      .reduce((sum, kind) => sum + 1 / laneIntervalMsOf(endpoint, kind), 0);
    const perMs = sqlKinds / parseDurationMs(endpoint.interval) + dnsPerMs;
    const maxDurationMs = Math.floor(
      PROBER_MAX_SAMPLES / perMs - parseDurationMs(spec.baseline.duration) - PROBING_SLACK_MS,
    );
    const fixes: string[] = [];
    if (maxDurationMs >= 1000)
      fixes.push(`observe.maxDuration at most ${formatDurationMs(floorTo(maxDurationMs, 1000))}`);
    // The interval (write and read) that fits with this maxDuration and dns.interval.
    const sqlRoomPerMs = PROBER_MAX_SAMPLES / probingMs - dnsPerMs;
    if (sqlKinds > 0 && sqlRoomPerMs > 0)
      fixes.push(`interval at least ${formatDurationMs(Math.ceil(sqlKinds / sqlRoomPerMs))}`);
    if (endpoint.probes.includes('dns')) fixes.push('a longer dns.interval');
    if (endpoint.probes.includes('topology')) fixes.push('a longer topology.interval');
    errors.push({
      path: `${basePath ? `${basePath}.` : ''}endpoints[${i}].interval`,
      message: `endpoint \`${endpoint.name}\`: ${endpoint.probes.join(', ')} probes every ${endpoint.interval}${endpoint.probes.includes('dns') ? ` (dns every ${endpoint.dns.interval})` : ''} for baseline ${spec.baseline.duration} + observe.maxDuration ${spec.observe.maxDuration} (+ ${formatDurationMs(PROBING_SLACK_MS)} for preflight and stop) make up to ${samples.toLocaleString('en')} samples, more than the ${PROBER_MAX_SAMPLES.toLocaleString('en')} a prober keeps; use ${fixes.join(', or ')}`,
    });
  });
  return errors;
}

function floorTo(ms: number, unitMs: number): number {
  return Math.floor(ms / unitMs) * unitMs;
}
