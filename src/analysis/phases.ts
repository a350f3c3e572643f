// Failover phases (docs/results.md, "Failover phases"): an endpoint's outage window split by
// what the database itself reported (the topology probe) and what DNS answered.
//
// The topology lane's outage window is the time the cluster had no writer: it starts when the
// old writer was last seen (writerLost) and ends when an instance next said it was the writer
// (writerFound). With the endpoint's own DNS flip, these cut the endpoint's window [start, end]:
//   detection  start .. writerLost    the client is down, the database still has its writer
//   promotion  writerLost .. writerFound    no instance is the writer
//   dns        writerFound .. dnsFlip  the writer is there, the name still points at the old one
//   recovery   the last of those .. end    the client finds its way back
// Each boundary is clamped into the window, so the four add up to its length. `dns` is null when
// the endpoint recovered before its DNS answer changed (more than one dns interval before the
// flip was seen: dnsWait not-waited), or has no dns probe (dnsWait not-probed: recovery then
// includes any DNS wait); recovery then runs from writerFound.
import type { EndpointResult, TimePoint } from './results.ts';
import { roundSeconds } from './time-point.ts';

export interface PhasesResult {
  /** The lane whose topology probe timed the writer: this endpoint's, else the first one's that has it. */
  topologyFrom: string;
  /** The probe kind whose outage window is split: write, else read. */
  kind: 'write' | 'read';
  window: { start: TimePoint; end: TimePoint };
  /** End of the last topology attempt that found the old writer. */
  writerLost: TimePoint;
  /** End of the first topology attempt after it that found a writer. */
  writerFound: TimePoint;
  /** The instance that was the writer before T0, and the one found after (null: no topology flip). */
  writerBefore: string | null;
  writerAfter: string | null;
  /** The endpoint's DNS flip when it came before the endpoint recovered (within a dns interval); else null. */
  dnsFlip: TimePoint | null;
  /**
   * `waited`: the endpoint recovered after its DNS answer changed (dnsSeconds is that wait);
   * `not-waited`: it recovered before; `not-probed`: it has no dns probe, so nobody knows, and
   * recoverySeconds includes any DNS wait.
   */
  dnsWait: 'waited' | 'not-waited' | 'not-probed';
  detectionSeconds: number;
  promotionSeconds: number;
  dnsSeconds: number | null;
  recoverySeconds: number;
}

/**
 * When the cluster had no writer, by a topology lane: its one no-writer window after T0, which
 * must be closed and, when the probe names a new writer, end with that writer's first answer.
 * Null, never a guess, when the lane has a coverage gap or omitted windows, when no window or
 * more than one closed after T0 (a blip next to the failover: which one was the promotion?), when
 * a writer change was seen without a window (a gap shorter than one interval went unsampled).
 */
export function writerGap(
  endpoint: EndpointResult,
): { lost: TimePoint; found: TimePoint; before: string | null; after: string | null } | null {
  const topology = endpoint.topology;
  if (!topology || topology.windowsOmitted > 0) return null;
  const lane = endpoint.coverage?.lanes.find((l) => l.kind === 'topology');
  if (lane && (lane.gaps.length > 0 || lane.gapsOmitted > 0)) return null;
  const after = topology.windows.filter((w) => w.end === null || w.end.seconds > 0);
  if (after.length !== 1) return null;
  const window = after[0]!;
  if (window.end === null || window.cutByGap) return null;
  const flip = endpoint.writerFlip ?? null;
  if (flip && Math.abs(flip.seconds - window.end.seconds) > 0.0005) return null;
  return {
    lost: window.start,
    found: window.end,
    before: flip?.fromServer ?? null,
    after: flip?.toServer ?? null,
  };
}

/**
 * The phase split of `endpoint`'s outage by the writer gap of `source`. Null when it cannot be
 * made honestly: no writer gap; no closed outage window of the endpoint that overlaps the gap,
 * or more than one; a window cut by a coverage gap (its end is where data stopped, not a
 * recovery); omitted windows.
 */
export function phasesOf(endpoint: EndpointResult, source: EndpointResult): PhasesResult | null {
  const gap = writerGap(source);
  if (!gap) return null;
  const kind = endpoint.write ? 'write' : endpoint.read ? 'read' : null;
  if (!kind) return null;
  const lane = endpoint[kind]!;
  if (lane.windowsOmitted > 0) return null;
  const overlapping = lane.windows.filter(
    (w) => w.start.seconds <= gap.found.seconds && (w.end === null || w.end.seconds >= gap.lost.seconds),
  );
  if (overlapping.length !== 1) return null;
  const window = overlapping[0]!;
  if (window.end === null || window.cutByGap) return null;
  const s = window.start.seconds;
  const e = window.end.seconds;
  const clamp = (x: number) => Math.min(Math.max(x, s), e);
  const lost = clamp(gap.lost.seconds);
  const found = Math.max(lost, clamp(gap.found.seconds));
  // The flip is the end of the first dns attempt with the new answer: DNS moved within one dns
  // interval before it. A flip up to that interval after the recovery may still have caused it.
  const dnsLane = endpoint.coverage?.lanes.find((l) => l.kind === 'dns');
  const probedDns = endpoint.probes.includes('dns');
  const dnsIntervalSeconds = dnsLane?.intervalSeconds ?? 0;
  const dns =
    endpoint.dnsFlip && endpoint.dnsFlip.seconds - dnsIntervalSeconds <= e ? endpoint.dnsFlip : null;
  const dnsAt = dns ? Math.max(found, clamp(dns.seconds)) : found;
  return {
    topologyFrom: source.name,
    kind,
    window: { start: window.start, end: window.end },
    writerLost: gap.lost,
    writerFound: gap.found,
    writerBefore: gap.before,
    writerAfter: gap.after,
    dnsFlip: dns ? { seconds: dns.seconds, time: dns.time } : null,
    dnsWait: dns ? 'waited' : probedDns ? 'not-waited' : 'not-probed',
    detectionSeconds: roundSeconds(lost - s),
    promotionSeconds: roundSeconds(found - lost),
    dnsSeconds: dns ? roundSeconds(dnsAt - found) : null,
    recoverySeconds: roundSeconds(e - dnsAt),
  };
}

/** Sets `phases` on every endpoint with a write or read probe when some lane has a topology probe. */
export function addPhases(endpoints: readonly EndpointResult[]): void {
  const sources = endpoints.filter((endpoint) => endpoint.topology);
  if (sources.length === 0) return;
  for (const endpoint of endpoints) {
    if (!endpoint.write && !endpoint.read) continue;
    // Its own topology lane, else one of the same zone, else the first.
    const source =
      (endpoint.topology ? endpoint : undefined) ??
      sources.find((s) => endpoint.zone !== undefined && s.zone === endpoint.zone) ??
      sources[0]!;
    endpoint.phases = phasesOf(endpoint, source);
  }
}
