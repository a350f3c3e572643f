// What a prober pod may use: container resources and V8 settings sized for them, from
// `npm run bench -- --only prober-memory` (docs/accuracy.md, "Prober memory"): a prober
// probing write + read every 10 ms and DNS every 100 ms holds about 120 MiB RSS (Node, type
// stripping, drivers, fastify, a V8 heap of 25-40 MiB) plus 25 bytes per sample off the heap
// (2 million samples, the store's cap: 48 MiB). The limit is twice the 2 h peak and more.

// The default requests and limits are DEFAULT_PROBER_RESOURCES (src/api/prober-placement.ts:
// the schema's descriptions state them); spec.probers.resources replaces them.
import type { V1ResourceRequirements } from '@kubernetes/client-node';
import { DEFAULT_PROBER_RESOURCES } from '../api/prober-placement.ts';

/**
 * V8 sized for the limit: without it V8 sizes its heap for the node's memory and lets garbage
 * grow (217 MiB RSS after 34 s, 287 MiB after 80 s on a 24 GiB host) past a small pod's limit.
 * 96 MiB of old space is 3x the live heap; the samples live outside it (typed arrays).
 */
export const PROBER_NODE_OPTIONS = '--max-old-space-size=96 --max-semi-space-size=4';

/** Per endpoint beyond the first in a shared pod (sharing Zone): old space, request, limit. */
const PER_LANE = { oldSpaceMiB: 16, requestMiB: 32, limitMiB: 64, cpuMilli: 50 } as const;

/** PROBER_NODE_OPTIONS for a pod of `lanes` endpoints: more old space per endpoint. */
export function proberNodeOptions(lanes = 1): string {
  if (lanes <= 1) return PROBER_NODE_OPTIONS;
  return `--max-old-space-size=${96 + PER_LANE.oldSpaceMiB * (lanes - 1)} --max-semi-space-size=4`;
}

/** The default memory limit in MiB (what the memory bench runs under). */
export const PROBER_MEMORY_LIMIT_MIB = Number.parseInt(DEFAULT_PROBER_RESOURCES.limits.memory, 10);

/**
 * The prober container's resources: the user's requests and limits, each replacing the
 * default's as a whole. The default grows with the endpoints of a shared pod (`lanes`): each
 * one beyond the first adds 32Mi and 50m to the requests and 64Mi to the limit (its samples,
 * at most 48 MiB, its drivers and heap; `npm run bench -- --only prober-memory --endpoints N`).
 */
export function proberResources(
  user?: {
    requests?: Record<string, string>;
    limits?: Record<string, string>;
  },
  lanes = 1,
): V1ResourceRequirements {
  const more = Math.max(0, lanes - 1);
  const mib = (text: string, per: number) => `${Number.parseInt(text, 10) + per * more}Mi`;
  const d = DEFAULT_PROBER_RESOURCES;
  const requests = {
    cpu: `${Number.parseInt(d.requests.cpu, 10) + PER_LANE.cpuMilli * more}m`,
    memory: mib(d.requests.memory, PER_LANE.requestMiB),
  };
  return {
    requests: { ...(user?.requests ?? requests) },
    limits: { ...(user?.limits ?? { memory: mib(d.limits.memory, PER_LANE.limitMiB) }) },
  };
}
