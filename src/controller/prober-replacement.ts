// A prober pod that fails, is evicted or is deleted while the run observes is replaced, so its
// lanes go on (the time without a prober shows as a coverage gap, never as downtime). The
// replacement is a new pod (`<experiment>-probe-<endpoint>[-<zone>]-r<n>`, placed like the
// first: the same zone, node selector, affinity, tolerations, resources and priority) whose attempts start at a seq
// no predecessor can have used, so the write keys of the run (the probe rows' primary key) never
// repeat: generation n owns seqs from n x 2^26 on (2^26 attempts at 10 ms are 7.7 days, beyond
// any run), and a generation number is reused only when its pod is gone from the API (a
// controller restart lost track), in which case the time-based offset puts the new seqs past
// every seq the gone pod reached before it was gone.
import type { V1Pod } from '@kubernetes/client-node';
import { parseDurationMs } from '../api/duration.ts';
import type { EndpointSpec } from '../api/experiment-spec.ts';
import type { ProberGroup } from '../api/probe-lanes.ts';
import {
  ANNOTATION_PROBER_GENERATION,
  type ExperimentIdentity,
  lanesOfPod,
  proberPod,
  type Replacement,
  type TokenSecretRef,
} from './prober-pods.ts';

/** Seqs per prober generation. */
export const GENERATION_SEQS = 2 ** 26;
/** Generations of one endpoint's prober at most (seqs are 32-bit). */
export const MAX_GENERATIONS = 60;
/** The time-based offset runs this far ahead of the run's clock (covers slow pod starts). */
export const SEQ_HEADROOM_MS = 60_000;

/** Whether a prober pod is gone for measuring: ended, being deleted (evicted, drained). */
export function proberLost(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Failed' || phase === 'Succeeded' || pod.metadata?.deletionTimestamp != null;
}

function generationOf(pod: V1Pod): number {
  const value = Number(pod.metadata?.annotations?.[ANNOTATION_PROBER_GENERATION] ?? 0);
  return Number.isInteger(value) && value >= 0 ? value : 0;
}

/**
 * The replacement for a lane (or a shared pod's lanes: `endpoints`) whose pods (`pods`, those
 * lanes' only) are all lost or gone; undefined while one of them is still measuring, or after
 * MAX_GENERATIONS.
 */
export function replacementFor(
  endpoints: EndpointSpec | readonly EndpointSpec[],
  pods: readonly V1Pod[],
  runStartMs: number,
  nowMs: number,
): Replacement | undefined {
  if (pods.some((pod) => !proberLost(pod))) return undefined;
  const generation = 1 + Math.max(0, ...pods.map(generationOf));
  if (generation > MAX_GENERATIONS) return undefined;
  const intervalMs = Math.min(
    ...(Array.isArray(endpoints) ? endpoints : [endpoints as EndpointSpec]).flatMap((endpoint) => [
      parseDurationMs(endpoint.interval),
      parseDurationMs(endpoint.dns.interval),
      parseDurationMs(endpoint.topology.interval),
    ]),
  );
  // A prober started at runStartMs or later reaches at most one seq per interval.
  const offset = Math.ceil((Math.max(0, nowMs - runStartMs) + SEQ_HEADROOM_MS) / intervalMs);
  return { generation, seqBase: generation * GENERATION_SEQS + Math.min(offset, GENERATION_SEQS / 2) };
}

export interface ReplaceDeps {
  createPod(pod: V1Pod): Promise<void>;
  onReplaced(lanes: string, pod: V1Pod, lost: readonly V1Pod[]): Promise<void>;
}

/**
 * Creates a replacement prober pod for every group of lanes (one lane, or a shared pod's)
 * without a measuring pod; returns their names.
 */
export async function replaceLostProbers(
  exp: ExperimentIdentity,
  groups: readonly ProberGroup[],
  pods: Iterable<V1Pod>,
  image: string,
  token: TokenSecretRef,
  runStartMs: number,
  deps: ReplaceDeps,
): Promise<string[]> {
  const all = [...pods];
  const created: string[] = [];
  for (const group of groups) {
    const names = group.lanes.map((lane) => lane.name).join(',');
    const own = all.filter((pod) => lanesOfPod(pod).join(',') === names);
    const endpoints = group.lanes.map((lane) => lane.endpoint);
    const replacement = replacementFor(endpoints, own, runStartMs, Date.now());
    if (!replacement) continue;
    const pod = proberPod(exp, group, image, token, replacement);
    try {
      await deps.createPod(pod);
    } catch (err) {
      // Created at an earlier pass that the cache does not show yet.
      if ((err as { code?: number }).code === 409) continue;
      throw err;
    }
    created.push(pod.metadata!.name!);
    await deps.onReplaced(names.replaceAll(',', ', '), pod, own);
  }
  return created;
}
