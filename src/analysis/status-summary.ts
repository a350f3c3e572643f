// The bounded summary of a run's results that goes into FailoverExperiment.status.
import type { EndpointStatusSummary, FailoverExperimentStatus } from '../api/experiment-status.ts';
import {
  STATUS_EVENTS_LIMIT,
  STATUS_GAPS_LIMIT,
  STATUS_REASONS_LIMIT,
  STATUS_WINDOWS_LIMIT,
} from '../api/experiment-status.ts';
import type { CoverageResult, EndpointResult, Results } from './results.ts';

type StatusSummary = Pick<
  FailoverExperimentStatus,
  | 'verdict'
  | 'verdictReasons'
  | 'inconclusive'
  | 'worstDowntimeSeconds'
  | 'worstDowntime'
  | 'endpoints'
  | 'events'
  | 'triggerTime'
>;

/** Seconds with the unit, short for a kubectl column: `0.35s`, `11.1s`. */
export function shortSeconds(seconds: number): string {
  return `${seconds.toFixed(seconds < 10 ? 2 : 1)}s`;
}

function endpointSummary(endpoint: EndpointResult): EndpointStatusSummary {
  const summary: EndpointStatusSummary = {
    name: endpoint.name,
    ...(endpoint.zone !== undefined
      ? { endpoint: endpoint.endpoint ?? endpoint.name, zone: endpoint.zone }
      : {}),
    recovered: (endpoint.write?.recovered ?? true) && (endpoint.read?.recovered ?? true),
    verdict: endpoint.verdict.result,
  };
  if (endpoint.write) {
    summary.writeDowntimeSeconds = endpoint.write.downtimeSeconds;
    summary.writeLowerBoundSeconds = endpoint.write.lowerBoundSeconds;
  }
  if (endpoint.read) {
    summary.readDowntimeSeconds = endpoint.read.downtimeSeconds;
    summary.readLowerBoundSeconds = endpoint.read.lowerBoundSeconds;
  }
  if (Object.keys(endpoint.errors).length > 0)
    summary.errors = { ...endpoint.errors } as EndpointStatusSummary['errors'];
  if (endpoint.dnsFlipSeconds !== null) summary.dnsFlipSeconds = endpoint.dnsFlipSeconds;
  if (endpoint.roleFlipSeconds !== null) summary.roleFlipSeconds = endpoint.roleFlipSeconds;
  if (endpoint.lostWrites !== null) summary.lostWrites = endpoint.lostWrites;
  if (endpoint.ambiguousWrites !== null) summary.ambiguousWrites = endpoint.ambiguousWrites;
  if (endpoint.serverSideGapSeconds !== null) summary.serverSideGapSeconds = endpoint.serverSideGapSeconds;
  if (endpoint.phases) {
    const p = endpoint.phases;
    summary.phases = {
      detectionSeconds: p.detectionSeconds,
      promotionSeconds: p.promotionSeconds,
      ...(p.dnsSeconds !== null ? { dnsSeconds: p.dnsSeconds } : {}),
      recoverySeconds: p.recoverySeconds,
      dnsWait: p.dnsWait,
    };
  }
  const windows = (['write', 'read'] as const).flatMap((kind) =>
    (endpoint[kind]?.windows ?? []).map((window) => ({
      kind,
      startSeconds: window.start.seconds,
      ...(window.end ? { endSeconds: window.end.seconds } : {}),
      lowerBoundSeconds: window.lowerBoundSeconds,
      upperBoundSeconds: window.upperBoundSeconds,
    })),
  );
  if (endpoint.coverage) summary.coverage = coverageSummary(endpoint.coverage);
  if (windows.length > 0) {
    summary.windows = windows.sort((a, b) => a.startSeconds - b.startSeconds).slice(0, STATUS_WINDOWS_LIMIT);
  }
  return summary;
}

function coverageSummary(coverage: CoverageResult): NonNullable<EndpointStatusSummary['coverage']> {
  const gaps = coverage.lanes
    .flatMap((lane) =>
      lane.gaps.map((gap) => ({
        kind: lane.kind,
        startSeconds: gap.start.seconds,
        endSeconds: gap.end.seconds,
      })),
    )
    .sort((a, b) => a.startSeconds - b.startSeconds);
  return {
    complete: coverage.complete,
    gaps: coverage.lanes.reduce((sum, lane) => sum + lane.gaps.length + lane.gapsOmitted, 0),
    ...(coverage.droppedSamples > 0 ? { droppedSamples: coverage.droppedSamples } : {}),
    ...(gaps.length > 0 ? { firstGaps: gaps.slice(0, STATUS_GAPS_LIMIT) } : {}),
  };
}

/** Status fields from a run's results: small and bounded, never raw samples. */
export function statusSummary(results: Results): StatusSummary {
  const downtimes = results.endpoints.flatMap((endpoint) =>
    [endpoint.write, endpoint.read].flatMap((kind) => (kind ? [kind.downtimeSeconds] : [])),
  );
  const worst = downtimes.length > 0 ? Math.max(...downtimes) : 0;
  return {
    triggerTime: results.trigger.time,
    verdict: results.verdict.result,
    verdictReasons: results.verdict.reasons.slice(0, STATUS_REASONS_LIMIT),
    // Results written before the Inconclusive verdict have no `inconclusive`.
    ...((results.verdict.inconclusive ?? []).length > 0
      ? {
          inconclusive: results.verdict.inconclusive.slice(0, STATUS_REASONS_LIMIT).map((finding) => ({
            reason: finding.reason,
            ...(finding.endpoint !== undefined ? { endpoint: finding.endpoint } : {}),
            message: finding.message.slice(0, 1024),
          })),
        }
      : {}),
    worstDowntimeSeconds: worst,
    worstDowntime: shortSeconds(worst),
    endpoints: results.endpoints.map(endpointSummary),
    events: results.trigger.events.slice(0, STATUS_EVENTS_LIMIT).map((event) => ({
      seconds: event.seconds,
      time: event.time,
      ...(event.source ? { source: event.source } : {}),
      message: event.message,
    })),
  };
}
