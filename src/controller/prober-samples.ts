// Samples pulled from an experiment's prober pods, kept by the controller per experiment. The
// cursor is per pod uid, so a replacement prober (a new pod, perhaps with the same name) is read
// from its own start, and the samples of a lost pod already pulled stay. A failed pull is
// logged (once per failure streak) and retried at the next pull: the pod keeps its samples,
// and what is never pulled shows as a coverage gap, never as downtime.
import type { V1Pod } from '@kubernetes/client-node';
import type { RecoveryTracker } from '../engine/recovery.ts';
import type { ProbeSample } from '../probe/types.ts';
import { LABEL_ENDPOINT } from './kube.ts';
import { ProberClient } from './prober-pods.ts';

interface PodCursor {
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

export class ProberSamples {
  readonly samples: ProbeSample[] = [];
  readonly #pods = new Map<string, PodCursor>();
  #tracker: RecoveryTracker | undefined;
  #newestEndMs = 0;

  /** The latest end of any sample pulled (epoch ms; 0 before any). */
  get newestEndMs(): number {
    return this.#newestEndMs;
  }

  /**
   * The recovery tracker of the observe phase, fed every sample once: those held when it is
   * made, then each new one as it is pulled (per-pull work proportional to the new samples).
   */
  tracker(make: () => RecoveryTracker): RecoveryTracker {
    if (!this.#tracker) {
      this.#tracker = make();
      for (const sample of this.samples) this.#tracker.add(sample);
    }
    return this.#tracker;
  }

  /** Samples each endpoint's probers could not store (their stores were full), by endpoint. */
  droppedByEndpoint(): Record<string, number> {
    const dropped: Record<string, number> = {};
    for (const pod of this.#pods.values())
      if (pod.dropped > 0) dropped[pod.endpoint] = (dropped[pod.endpoint] ?? 0) + pod.dropped;
    return dropped;
  }

  /**
   * Pulls new samples from every pod that can answer (has an IP, has not ended). Returns the
   * uids of the pods pulled to their end this time.
   */
  async pull(pods: Iterable<V1Pod>, token: string, log?: PullLog): Promise<Set<string>> {
    const pulled = new Set<string>();
    await Promise.all(
      [...pods].map(async (pod) => {
        const uid = pod.metadata?.uid;
        const ip = pod.status?.podIP;
        const phase = pod.status?.phase;
        if (!uid || !ip || phase === 'Failed' || phase === 'Succeeded') return;
        const cursor = this.#pods.get(uid) ?? {
          endpoint: pod.metadata?.labels?.[LABEL_ENDPOINT] ?? '',
          next: 0,
          dropped: 0,
          failures: 0,
        };
        this.#pods.set(uid, cursor);
        try {
          const page = await new ProberClient(ip, token).samplesFrom(cursor.next);
          for (const sample of page.samples) {
            this.samples.push(sample);
            this.#tracker?.add(sample);
            if (sample.endMs > this.#newestEndMs) this.#newestEndMs = sample.endMs;
          }
          cursor.next = page.next;
          cursor.dropped = page.dropped;
          if (cursor.failures > 0)
            log?.warn(
              { pod: pod.metadata?.name, failures: cursor.failures },
              'sample pull works again after failures',
            );
          cursor.failures = 0;
          delete cursor.lastError;
          pulled.add(uid);
        } catch (err) {
          cursor.lastError = (err as Error).message;
          if (cursor.failures++ === 0)
            log?.warn(
              { pod: pod.metadata?.name, endpoint: cursor.endpoint, error: cursor.lastError },
              'sample pull failed; retrying at the next pull (samples not pulled count as a coverage gap)',
            );
        }
      }),
    );
    return pulled;
  }
}
