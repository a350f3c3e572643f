// When has an endpoint recovered? Pure functions over the samples seen so far, so the
// observe loop's stopping rule is testable without servers.
import { maxGapMs } from '../analysis/coverage.ts';
import type { ProbeKind, Sample } from '../analysis/sample.ts';
import type { EndpointSpec } from '../api/experiment-spec.ts';
import { laneIntervalMsOf } from '../api/spec-accessors.ts';

/**
 * The lanes of the spec's endpoints (endpoint x probe kind) with their intervals that decide
 * when the run has recovered: every kind but topology (the database's view, not a client's: a
 * writer the setup did not list must not hold observation open to maxDuration).
 */
export function specLanes(
  endpoints: readonly EndpointSpec[],
): { endpoint: string; kind: ProbeKind; intervalMs: number }[] {
  return endpoints.flatMap((e) =>
    e.probes
      .filter((kind) => kind !== 'topology')
      .map((kind) => ({
        endpoint: e.name,
        kind,
        intervalMs: laneIntervalMsOf(e, kind),
      })),
  );
}

export interface LaneState {
  /** End of the last bad attempt (epoch ms), or undefined if none was bad. */
  lastBadEndMs?: number;
  /** End of the last attempt of any class. */
  lastEndMs?: number;
  /** Start of the last attempt of any class. */
  lastStartMs?: number;
  /** Longest normal time between attempt starts (coverage.ts); undefined: not checked. */
  maxGapMs?: number;
  /** First attempt after the lane's latest coverage gap: recovery is not credited across it. */
  resumedMs?: number;
  /** Attempts since the trigger, and bad ones among them. */
  attempts: number;
  bad: number;
}

/** Tracks, per endpoint and probe kind, the last bad and last good attempt after T0. */
export class RecoveryTracker {
  private readonly lanes = new Map<string, LaneState>();
  private readonly t0Ms: number;

  /** With `intervalMs`, a lane whose attempts stopped coming (a lost prober) is not recovered. */
  constructor(lanes: { endpoint: string; kind: ProbeKind; intervalMs?: number }[], t0Ms: number) {
    this.t0Ms = t0Ms;
    for (const l of lanes) {
      const state: LaneState = { attempts: 0, bad: 0 };
      if (l.intervalMs !== undefined) state.maxGapMs = maxGapMs(l.intervalMs);
      this.lanes.set(`${l.endpoint}/${l.kind}`, state);
    }
  }

  add(sample: Sample): void {
    if (sample.startMs < this.t0Ms) return;
    const lane = this.lanes.get(`${sample.endpoint}/${sample.kind}`);
    if (!lane) return;
    lane.attempts++;
    if (
      lane.maxGapMs !== undefined &&
      lane.lastStartMs !== undefined &&
      sample.startMs - lane.lastStartMs > lane.maxGapMs
    )
      lane.resumedMs = sample.startMs;
    lane.lastEndMs = Math.max(lane.lastEndMs ?? 0, sample.endMs);
    lane.lastStartMs = Math.max(lane.lastStartMs ?? 0, sample.startMs);
    if (sample.class !== 'ok') {
      lane.bad++;
      lane.lastBadEndMs = Math.max(lane.lastBadEndMs ?? 0, sample.endMs);
    }
  }

  /** Whether any lane has seen a bad attempt since T0. */
  sawOutage(): boolean {
    return [...this.lanes.values()].some((l) => l.bad > 0);
  }

  /**
   * Every lane has answered well for `forMs` up to `nowMs`: its last bad attempt ended at
   * least `forMs` ago (or there was none), and so did its latest coverage gap (time without a
   * prober shows nothing), and it has attempts since then, the last one no longer than its
   * coverage gap ago (a prober that stopped reporting has not shown recovery).
   */
  allRecovered(nowMs: number, forMs: number): boolean {
    for (const lane of this.lanes.values()) {
      const since = Math.max(lane.lastBadEndMs ?? this.t0Ms, this.t0Ms, lane.resumedMs ?? 0);
      if (nowMs - since < forMs) return false;
      if ((lane.lastEndMs ?? 0) <= since) return false;
      if (lane.maxGapMs !== undefined && nowMs - (lane.lastStartMs ?? 0) > lane.maxGapMs) return false;
    }
    return true;
  }

  /** Lanes still failing, for progress output. */
  summary(): Record<string, LaneState> {
    return Object.fromEntries(this.lanes);
  }
}

export interface LaneHealth {
  lane: string;
  attempts: number;
  bad: number;
  ratio: number;
  topClass?: string;
  topMessage?: string;
}

/** Share of bad attempts per lane, counted as samples come (bounded per lane). */
export class BaselineHealth {
  readonly #lanes = new Map<
    string,
    {
      attempts: number;
      bad: number;
      counts: Map<string, number>;
      firstMessage: Map<string, string | undefined>;
    }
  >();

  add(s: Sample): void {
    const key = `${s.endpoint}/${s.kind}`;
    let lane = this.#lanes.get(key);
    if (!lane) {
      lane = { attempts: 0, bad: 0, counts: new Map(), firstMessage: new Map() };
      this.#lanes.set(key, lane);
    }
    lane.attempts++;
    if (s.class === 'ok') return;
    lane.bad++;
    lane.counts.set(s.class, (lane.counts.get(s.class) ?? 0) + 1);
    if (!lane.firstMessage.has(s.class)) lane.firstMessage.set(s.class, s.message);
  }

  /**
   * Per lane in the order first seen, with its most frequent bad class and an example message;
   * then each `expected` lane that had no attempt at all (ratio 1: a lane that shows nothing is
   * not healthy).
   */
  lanes(expected: readonly string[] = []): LaneHealth[] {
    const silent = expected
      .filter((lane) => !this.#lanes.has(lane))
      .map((lane): LaneHealth => ({ lane, attempts: 0, bad: 0, ratio: 1 }));
    const seen = [...this.#lanes.entries()].map(
      ([lane, { attempts, bad, counts, firstMessage }]): LaneHealth => {
        const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
        return {
          lane,
          attempts,
          bad,
          ratio: attempts === 0 ? 1 : bad / attempts,
          topClass: top?.[0],
          topMessage: top ? firstMessage.get(top[0]) : undefined,
        };
      },
    );
    return [...seen, ...silent];
  }
}

/**
 * The lanes that must have attempts in a baseline of `baselineMs` (`endpoint/kind`): those with
 * at least three attempts due in it (one interval of margin for a pod clock apart from the
 * controller's, one for an attempt's own time). Topology is the database's view, not a
 * client's (specLanes).
 */
export function baselineLanes(endpoints: readonly EndpointSpec[], baselineMs: number): string[] {
  return specLanes(endpoints)
    .filter((l) => baselineMs >= 3 * l.intervalMs)
    .map((l) => `${l.endpoint}/${l.kind}`);
}

/** Lanes over the spec's error ratio, and every lane without an attempt whatever the ratio. */
export function unhealthyLanes(health: readonly LaneHealth[], maxErrorRatio: number): LaneHealth[] {
  return health.filter((l) => l.attempts === 0 || l.ratio > maxErrorRatio);
}

/** A lane of an unhealthy baseline, for the run's message: "cluster/write 4/20 bad (slow)". */
export function describeLaneHealth(l: LaneHealth): string {
  return l.attempts === 0 ? `${l.lane} no attempts` : `${l.lane} ${l.bad}/${l.attempts} bad (${l.topClass})`;
}

/** The BaselineUnhealthy message of both paths (failwatch run, the controller). */
export function unhealthyBaselineMessage(unhealthy: readonly LaneHealth[]): string {
  return `baseline not healthy, nothing was triggered: ${unhealthy.map(describeLaneHealth).join(', ')}`;
}

/**
 * A prober's first 2 s (a new process's module loading, JIT and first TLS logins, several
 * endpoints of one pod starting at once) are its warm-up: recorded and shown like any attempt,
 * but the baseline starts after it, so a cold start is not judged as an unhealthy endpoint.
 * A CPU profile of a prober has every stall over 15 ms but two in its first 2 s
 * (docs/accuracy.md, "Prober footprint").
 */
export const PROBER_WARM_UP_MS = 2000;

/** Share of bad attempts per lane in the baseline, and the worst lane. */
export function baselineHealth(samples: readonly Sample[], expected: readonly string[] = []): LaneHealth[] {
  const health = new BaselineHealth();
  for (const s of samples) health.add(s);
  return health.lanes(expected);
}
