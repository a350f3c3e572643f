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

/** The prober container's resources: the user's requests and limits, each replacing the default's as a whole. */
/** The default memory limit in MiB (what the memory bench runs under). */
export const PROBER_MEMORY_LIMIT_MIB = Number.parseInt(DEFAULT_PROBER_RESOURCES.limits.memory, 10);

export function proberResources(user?: {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}): V1ResourceRequirements {
  return {
    requests: { ...(user?.requests ?? DEFAULT_PROBER_RESOURCES.requests) },
    limits: { ...(user?.limits ?? DEFAULT_PROBER_RESOURCES.limits) },
  };
}
