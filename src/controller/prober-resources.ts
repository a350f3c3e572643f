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

/**
 * PROBER_NODE_OPTIONS for a pod of `lanes` endpoints: 16 MiB more old space per endpoint, but
 * never more than a quarter of the container's memory limit (`limitMemory`, a quantity; the
 * default is 96 MiB of 384Mi), so a user's smaller limit is not outgrown by the heap.
 */
export function proberNodeOptions(lanes = 1, limitMemory?: string): string {
  if (lanes <= 1) return PROBER_NODE_OPTIONS;
  const grown = 96 + PER_LANE.oldSpaceMiB * (lanes - 1);
  const limitMiB = limitMemory ? quantityMiB(limitMemory) : undefined;
  const oldSpace = limitMiB ? Math.max(96, Math.min(grown, Math.floor(limitMiB / 4))) : grown;
  return `--max-old-space-size=${oldSpace} --max-semi-space-size=4`;
}

/** A memory quantity in MiB (Ki, Mi, Gi, Ti, k, M, G, T, plain bytes); undefined if unknown. */
export function quantityMiB(quantity: string): number | undefined {
  const m = /^([0-9.]+)([KMGT]i?|k)?$/.exec(quantity.trim());
  if (!m) return undefined;
  const unit: Record<string, number> = {
    '': 1,
    k: 1e3,
    K: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  const factor = unit[m[2] ?? ''];
  return factor === undefined ? undefined : (Number(m[1]) * factor) / 2 ** 20;
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
  const d = DEFAULT_PROBER_RESOURCES;
  const limits = user?.limits ?? {
    memory: `${Number.parseInt(d.limits.memory, 10) + PER_LANE.limitMiB * more}Mi`,
  };
  // Grown requests never above the user's limits (the API server refuses requests > limits).
  const capped = (name: 'cpu' | 'memory', value: number, unit: 'm' | 'Mi') => {
    const limit = limits[name];
    const limitValue = limit === undefined ? undefined : unit === 'Mi' ? quantityMiB(limit) : cpuMilli(limit);
    return limitValue !== undefined && value > limitValue ? limit! : `${value}${unit}`;
  };
  const requests = user?.requests ?? {
    cpu: capped('cpu', Number.parseInt(d.requests.cpu, 10) + PER_LANE.cpuMilli * more, 'm'),
    memory: capped('memory', Number.parseInt(d.requests.memory, 10) + PER_LANE.requestMiB * more, 'Mi'),
  };
  return { requests: { ...requests }, limits: { ...limits } };
}

function cpuMilli(quantity: string): number | undefined {
  const m = /^([0-9.]+)(m)?$/.exec(quantity.trim());
  return m ? Number(m[1]) * (m[2] ? 1 : 1000) : undefined;
}
