// Builders of synthetic probe samples for analysis and report tests: fixed-rate attempts with
// a class and latency chosen per scheduled start, like the probe module produces.
import type { RunInput } from '../../src/analysis/analyze-run.ts';
import type { ErrorClass } from '../../src/analysis/error-class.ts';
import type { ProbeKind, Sample } from '../../src/analysis/sample.ts';

export interface Outcome {
  class: ErrorClass;
  /** Attempt duration; default 2 ms. */
  durationMs?: number;
  /** Absolute end instead of a duration (e.g. a stall released at one moment). */
  endMs?: number;
  server?: string;
  dnsAnswer?: string[];
  code?: string;
}

export interface LaneSpec {
  endpoint: string;
  kind: ProbeKind;
  fromMs: number;
  toMs: number;
  intervalMs: number;
  outcomeAt: (startMs: number) => Outcome;
}

/** Attempts start at fromMs, fromMs + interval, ... while < toMs. */
export function fixedRateLane(spec: LaneSpec): Sample[] {
  const samples: Sample[] = [];
  let seq = 0;
  for (let startMs = spec.fromMs; startMs < spec.toMs; startMs += spec.intervalMs) {
    const outcome = spec.outcomeAt(startMs);
    const sample: Sample = {
      endpoint: spec.endpoint,
      kind: spec.kind,
      seq: seq++,
      startMs,
      endMs: outcome.endMs ?? startMs + (outcome.durationMs ?? 2),
      class: outcome.class,
    };
    if (outcome.code) sample.code = outcome.code;
    if (outcome.server)
      sample.server = { id: outcome.server, role: spec.kind === 'write' ? 'writer' : 'reader' };
    if (outcome.dnsAnswer) sample.dnsAnswer = outcome.dnsAnswer;
    if (spec.kind === 'write') sample.writeKey = `${spec.endpoint}:${sample.seq}`;
    samples.push(sample);
  }
  return samples;
}

export function attempt(startMs: number, endMs: number, errorClass: ErrorClass, seq = 0): Sample {
  return { endpoint: 'e', kind: 'write', seq, startMs, endMs, class: errorClass };
}

/** T0 of the synthetic run: 2024-05-01T12:00:00.000Z. */
export const T0_MS = Date.UTC(2024, 4, 1, 12, 0, 0);
const S = 1000;

/**
 * A seed-shaped failover: T0 at 0 s, 10 s of baseline, 30 s of observation, 100 ms interval.
 * - cluster (write+read+dns): writes fail 5.0-6.0 s (connection_lost/refused), 6.0-8.0 s
 *   starting_up, 8.0-11.0 s read_only, then succeed on `pg-2`; DNS flips at 10.5 s;
 *   reads fail 5.0-7.0 s.
 * - proxy (write): every attempt started 5.0-7.3 s stalls until 7.3 s, slow when waiting over 500 ms.
 * - reader (read): refused 12.0-13.0 s.
 */
export function syntheticRun(): RunInput {
  const at = (seconds: number) => T0_MS + seconds * S;
  const clusterWrite = fixedRateLane({
    endpoint: 'cluster',
    kind: 'write',
    fromMs: at(-10),
    toMs: at(30),
    intervalMs: 100,
    outcomeAt: (startMs) => {
      if (startMs < at(5)) return { class: 'ok', server: 'pg-1' };
      if (startMs < at(5.5)) return { class: 'connection_lost', durationMs: 1 };
      if (startMs < at(6)) return { class: 'connection_refused', durationMs: 1 };
      if (startMs < at(8)) return { class: 'starting_up', durationMs: 3, code: '57P03' };
      if (startMs < at(11)) return { class: 'read_only', durationMs: 3, code: '25006' };
      return { class: 'ok', server: 'pg-2' };
    },
  });
  const clusterRead = fixedRateLane({
    endpoint: 'cluster',
    kind: 'read',
    fromMs: at(-10) + 50,
    toMs: at(30),
    intervalMs: 100,
    outcomeAt: (startMs) =>
      startMs >= at(5) && startMs < at(7)
        ? { class: 'connection_refused', durationMs: 1 }
        : { class: 'ok', durationMs: 1 },
  });
  const clusterDns = fixedRateLane({
    endpoint: 'cluster',
    kind: 'dns',
    fromMs: at(-10),
    toMs: at(30),
    intervalMs: 500,
    outcomeAt: (startMs) => ({
      class: 'ok',
      durationMs: 1,
      dnsAnswer: startMs < at(10.5) ? ['pg-1.lab.local', '127.0.10.11'] : ['pg-2.lab.local', '127.0.10.12'],
    }),
  });
  const proxyWrite = fixedRateLane({
    endpoint: 'proxy',
    kind: 'write',
    fromMs: at(-10),
    toMs: at(30),
    intervalMs: 100,
    outcomeAt: (startMs) => {
      if (startMs < at(5)) return { class: 'ok', server: 'pg-1' };
      if (startMs < at(7.3))
        return { class: at(7.3) - startMs > 500 ? 'slow' : 'ok', endMs: at(7.3), server: 'pg-2' };
      return { class: 'ok', server: 'pg-2' };
    },
  });
  const readerRead = fixedRateLane({
    endpoint: 'reader',
    kind: 'read',
    fromMs: at(-10),
    toMs: at(30),
    intervalMs: 100,
    outcomeAt: (startMs) =>
      startMs >= at(12) && startMs < at(13)
        ? { class: 'connection_refused', durationMs: 1 }
        : { class: 'ok', server: 'pg-2' },
  });
  const samples = [...clusterWrite, ...clusterRead, ...clusterDns, ...proxyWrite, ...readerRead];
  const acknowledged = samples.filter((s) => s.kind === 'write' && (s.class === 'ok' || s.class === 'slow'));
  // Two acknowledged cluster writes just before the crash are missing after recovery (lost).
  const lost = new Set(['cluster:148', 'cluster:149']);
  const auditRows = acknowledged
    .filter((s) => !lost.has(s.writeKey!))
    .map((s) => ({ endpoint: s.endpoint, key: s.writeKey!, serverMs: s.endMs - 1 }));
  return {
    experiment: { name: 'lab-aurora-postgresql', namespace: 'default', runId: 'run-1' },
    phases: { baselineStartMs: at(-10), triggerMs: T0_MS, observeEndMs: at(30) },
    trigger: {
      type: 'aws-rds',
      action: 'failover-db-cluster',
      target: 'lab-pg',
      events: [
        { atMs: at(0.4), source: 'lab-pg', message: 'Started cross AZ failover to DB instance: pg-2' },
        {
          atMs: at(9),
          source: 'pg-1',
          message: 'A new writer was promoted. Restarting database as a reader.',
        },
        { atMs: at(24), source: 'lab-pg', message: 'Completed failover to DB instance: pg-2' },
      ],
    },
    endpoints: [
      {
        name: 'cluster',
        role: 'cluster',
        probes: ['write', 'read', 'dns'],
        dialect: 'aurora-postgresql',
        connectionMode: 'fresh',
      },
      {
        name: 'proxy',
        role: 'proxy',
        probes: ['write'],
        connectionMode: 'pooled',
        slo: { maxWriteDowntimeSeconds: 5 },
      },
      { name: 'reader', role: 'reader', probes: ['read'] },
    ],
    samples,
    auditRows,
    defaultSlo: { maxWriteDowntimeSeconds: 3, maxReadDowntimeSeconds: 10, maxLostWrites: 0 },
  };
}
