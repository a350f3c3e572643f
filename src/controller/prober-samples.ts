// Samples pulled from an experiment's prober pods. The controller keeps no sample objects: each
// page pulled feeds the running per-lane state the phases need (baseline health, the recovery
// tracker, the role-flip watcher, the newest sample end), work proportional to the new samples
// only, and is appended in compact records to the experiment's spill files (sample-spill.ts),
// from which the final analysis reads one endpoint at a time. The cursor is per pod uid (and lane,
// in a pod that probes several endpoints), so a replacement prober (a new pod, perhaps with the same name) is read from its own start, and the
// samples of a lost pod already pulled stay. A failed pull is logged (once per failure streak)
// and retried at the next pull: the pod keeps its samples, and what is never pulled shows as a
// coverage gap, never as downtime.
import type { V1Pod } from '@kubernetes/client-node';
import { BaselineHealth, type LaneHealth, type RecoveryTracker } from '../engine/recovery.ts';
import { RoleFlipWatcher } from '../engine/trigger-protocol.ts';
import type { ProbeSample } from '../probe/types.ts';
import { ProberClient } from './prober-pods.ts';
import { SampleSpill } from './sample-spill.ts';

interface PodCursor {
  /** The pod's lane: its endpoint, or `<endpoint>@<zone>`. */
  endpoint: string;
  next: number;
  dropped: number;
  /** Consecutive failed pulls, and the last error. */
  failures: number;
  lastError?: string;
}

export interface PullLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

/** What the observe phase follows, fed every sample once. */
export interface ObserveState {
  tracker: RecoveryTracker;
  roleFlips: RoleFlipWatcher;
}

export class ProberSamples {
  readonly spill: SampleSpill;
  readonly #pods = new Map<string, PodCursor>();
  readonly #baselineStartMs: number;
  readonly #baseline = new BaselineHealth();
  #observe: ObserveState | undefined;
  #newestEndMs = 0;

  /** `spillDir`: this experiment's own directory (started over); `baselineStartMs`: baseline health counts from here. */
  constructor(spillDir: string, baselineStartMs: number) {
    this.spill = new SampleSpill(spillDir);
    this.#baselineStartMs = baselineStartMs;
  }

  /** The latest end of any sample pulled (epoch ms; 0 before any). */
  get newestEndMs(): number {
    return this.#newestEndMs;
  }

  /** Samples pulled so far. */
  get size(): number {
    return this.spill.samples;
  }

  /** Share of bad attempts per lane since baseline start; `expected` lanes without any have ratio 1. */
  baselineHealth(expected: readonly string[] = []): LaneHealth[] {
    return this.#baseline.lanes(expected);
  }

  /**
   * The observe phase's running state: made once (fed the samples already held, read back from
   * the spill files), then fed each new sample as it is pulled.
   */
  async observe(t0Ms: number, makeTracker: () => RecoveryTracker): Promise<ObserveState> {
    if (!this.#observe) {
      const state: ObserveState = { tracker: makeTracker(), roleFlips: new RoleFlipWatcher(t0Ms) };
      await this.spill.forEach((sample) => {
        state.tracker.add(sample);
        state.roleFlips.add(sample);
      });
      this.#observe = state;
    }
    return this.#observe;
  }

  /**
   * What the observe pass that ended observation proved (recoveredThroughAtDecision): every lane
   * has attempts up to here. Kept in memory only: a controller that restarted since does not know.
   */
  recoveredThroughMs: number | undefined;

  /** Samples each lane's probers could not store (their stores were full), by lane. */
  droppedByEndpoint(): Record<string, number> {
    const dropped: Record<string, number> = {};
    for (const pod of this.#pods.values())
      if (pod.dropped > 0) dropped[pod.endpoint] = (dropped[pod.endpoint] ?? 0) + pod.dropped;
    return dropped;
  }

  #take(uid: string, endpoint: string, samples: readonly ProbeSample[]): void {
    for (const sample of samples) {
      if (sample.startMs >= this.#baselineStartMs) this.#baseline.add(sample);
      this.#observe?.tracker.add(sample);
      this.#observe?.roleFlips.add(sample);
      if (sample.endMs > this.#newestEndMs) this.#newestEndMs = sample.endMs;
    }
    this.spill.append(uid, endpoint, samples);
  }

  /**
   * Pulls new samples from every pod that can answer (has an IP, has not ended), page by page.
   * Returns the uids of the pods pulled to their end this time.
   */
  async pull(pods: Iterable<V1Pod>, token: string, log?: PullLog): Promise<Set<string>> {
    const pulled = new Set<string>();
    await Promise.all(
      [...pods].map(async (pod) => {
        const uid = pod.metadata?.uid;
        const ip = pod.status?.podIP;
        const phase = pod.status?.phase;
        if (!uid || !ip || phase === 'Failed' || phase === 'Succeeded') return;
        const lanes = ProberClient.ofPod(pod, token);
        const done = await Promise.all(
          lanes.map(([lane, client], index) =>
            this.#pullLane(lanes.length === 1 ? uid : `${uid}-${index}`, lane, client, pod, log),
          ),
        );
        if (done.every(Boolean)) pulled.add(uid);
      }),
    );
    return pulled;
  }

  /** One lane of a pod to its end; false when the pull failed. */
  async #pullLane(
    key: string,
    lane: string,
    client: ProberClient,
    pod: V1Pod,
    log: PullLog | undefined,
  ): Promise<boolean> {
    const cursor: PodCursor = this.#pods.get(key) ?? { endpoint: lane, next: 0, dropped: 0, failures: 0 };
    this.#pods.set(key, cursor);
    try {
      await client.eachPageFrom(cursor.next, (page) => {
        this.#take(key, cursor.endpoint, page.samples);
        cursor.next = page.next;
        cursor.dropped = page.dropped;
      });
      if (cursor.failures > 0)
        log?.warn(
          { pod: pod.metadata?.name, endpoint: lane, failures: cursor.failures },
          'sample pull works again after failures',
        );
      cursor.failures = 0;
      delete cursor.lastError;
      return true;
    } catch (err) {
      cursor.lastError = (err as Error).message;
      if (cursor.failures++ === 0)
        log?.warn(
          { pod: pod.metadata?.name, endpoint: cursor.endpoint, error: cursor.lastError },
          'sample pull failed; retrying at the next pull (samples not pulled count as a coverage gap)',
        );
      return false;
    }
  }

  /** Deletes the spill files (the run's clean-up). */
  remove(): void {
    this.spill.remove();
  }
}
