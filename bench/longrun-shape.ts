// The synthetic run of the longrun bench, shared by its prober and controller processes.
import type { ProbeKind } from '../src/analysis/sample.ts';

export interface LongrunShape {
  endpoints: number;
  kinds: ProbeKind[];
  intervalMs: number;
  /** First attempt (baseline start), T0 and the end of the run, epoch ms. */
  startMs: number;
  t0Ms: number;
  endMs: number;
  token: string;
}

export function longrunShape(endpoints: number, intervalMs: number, minutes: number): LongrunShape {
  const t0Ms = Date.UTC(2026, 0, 1, 12);
  return {
    endpoints,
    kinds: ['write', 'read', 'dns'],
    intervalMs,
    startMs: t0Ms - 60_000,
    t0Ms,
    endMs: t0Ms - 60_000 + minutes * 60_000,
    token: 'longrun-bench-token-0123456789abcdef',
  };
}

export function samplesOf(shape: LongrunShape): number {
  return Math.floor((shape.endMs - shape.startMs) / shape.intervalMs) * shape.endpoints * shape.kinds.length;
}

/** Each prober listens on its own loopback address, on the real prober port. */
export function proberHost(endpoint: number): string {
  return `127.0.91.${endpoint + 1}`;
}
