// A lane is what one prober measures: an endpoint, or an endpoint in one zone (spec.probers.zones
// or the endpoint's probers.zones). Its name identifies it everywhere downstream: in samples,
// probe rows, write keys, analysis, results, status and the report. Without zones the lane name
// is the endpoint name, so output stays as it was; with zones it is `<endpoint>@<zone>` ('@' is
// in neither an endpoint name nor a label value, so the name splits back unambiguously).
import type { EndpointSpec, FailoverExperimentSpec, ProberPlacementSpec } from './experiment-spec.ts';

export const LANE_ZONE_SEPARATOR = '@';

/** The placement of one endpoint's probers: spec.probers, each field replaced by the endpoint's own. */
export type ProberPlacement = Omit<ProberPlacementSpec, 'zones' | 'sharing' | 'maxEndpointsPerPod'>;

export interface ProbeLane {
  /** `<endpoint>` or `<endpoint>@<zone>`: unique in the experiment. */
  name: string;
  /** The endpoint as the spec has it (its own name). */
  endpoint: EndpointSpec;
  zone?: string;
  placement: ProberPlacement;
}

export function laneName(endpoint: string, zone?: string): string {
  return zone ? `${endpoint}${LANE_ZONE_SEPARATOR}${zone}` : endpoint;
}

/** The endpoint's placement and zones: spec.probers with the endpoint's fields replacing it. */
export function endpointPlacement(
  spec: Pick<FailoverExperimentSpec, 'probers'>,
  endpoint: EndpointSpec,
): ProberPlacementSpec {
  const merged: Record<string, unknown> = { ...spec.probers };
  for (const [key, value] of Object.entries(endpoint.probers ?? {}))
    if (value !== undefined) merged[key] = value;
  return merged as ProberPlacementSpec;
}

/** A lane name's endpoint and zone ('' without zone): the inverse of laneName. */
export function splitLane(lane: string): { endpoint: string; zone: string } {
  const at = lane.indexOf(LANE_ZONE_SEPARATOR);
  return at < 0 ? { endpoint: lane, zone: '' } : { endpoint: lane.slice(0, at), zone: lane.slice(at + 1) };
}

/** Every lane of the experiment, endpoint by endpoint, zones in the order listed. */
export function probeLanes(spec: Pick<FailoverExperimentSpec, 'endpoints' | 'probers'>): ProbeLane[] {
  return spec.endpoints.flatMap((endpoint) => {
    const {
      zones,
      sharing: _sharing,
      maxEndpointsPerPod: _max,
      ...placement
    } = endpointPlacement(spec, endpoint);
    if (!zones || zones.length === 0) return [{ name: endpoint.name, endpoint, placement }];
    return zones.map((zone) => ({ name: laneName(endpoint.name, zone), endpoint, zone, placement }));
  });
}

/** The endpoint as the lane's prober measures it: the spec's endpoint under the lane's name. */
export function laneEndpoint(lane: ProbeLane): EndpointSpec {
  return lane.zone ? { ...lane.endpoint, name: lane.name } : lane.endpoint;
}

/** Whether any endpoint of the spec is probed per zone. */
export function usesZones(spec: Pick<FailoverExperimentSpec, 'endpoints' | 'probers'>): boolean {
  return probeLanes(spec).some((lane) => lane.zone !== undefined);
}

/**
 * What one prober pod probes: one lane, or with spec.probers.sharing Zone every lane of a zone
 * whose placement is the same (the pod can be placed only one way).
 */
export interface ProberGroup {
  /** Its lanes in spec order: one, or several endpoints of one zone. */
  lanes: ProbeLane[];
  zone?: string;
  placement: ProberPlacement;
  /**
   * The part of its pod's name after `<experiment>-probe-`: the endpoint's name for a pod per
   * endpoint; `shared` (`shared<n>` for the n-th other placement; `-<k>` appended for the k-th
   * pod of a zone beyond maxEndpointsPerPod) for a pod per zone.
   */
  podKey: string;
}

/** The prober pods of the experiment: one per lane, or one per zone and placement (sharing Zone). */
export function proberGroups(spec: Pick<FailoverExperimentSpec, 'endpoints' | 'probers'>): ProberGroup[] {
  const lanes = probeLanes(spec);
  if (spec.probers?.sharing !== 'Zone')
    return lanes.map((lane) => ({
      lanes: [lane],
      ...(lane.zone ? { zone: lane.zone } : {}),
      placement: lane.placement,
      podKey: lane.endpoint.name,
    }));
  const placements: string[] = [];
  const groups = new Map<string, ProberGroup[]>();
  const max = spec.probers?.maxEndpointsPerPod ?? Number.POSITIVE_INFINITY;
  for (const lane of lanes) {
    const placementKey = JSON.stringify(lane.placement);
    let n = placements.indexOf(placementKey);
    if (n < 0) n = placements.push(placementKey) - 1;
    const pods = groups.get(`${n}\u0000${lane.zone ?? ''}`) ?? [];
    groups.set(`${n}\u0000${lane.zone ?? ''}`, pods);
    const last = pods.at(-1);
    if (last && last.lanes.length < max) last.lanes.push(lane);
    else
      pods.push({
        lanes: [lane],
        ...(lane.zone ? { zone: lane.zone } : {}),
        placement: lane.placement,
        podKey: `${n === 0 ? 'shared' : `shared${n}`}${pods.length > 0 ? `-${pods.length + 1}` : ''}`,
      });
  }
  return [...groups.values()].flat();
}
