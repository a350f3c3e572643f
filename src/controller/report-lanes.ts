// The report's lanes drawn from the spill files, one endpoint's lanes in memory at a time.
import { DetailTable, LaneColumns } from '../analysis/lane-columns.ts';
import type { Results } from '../analysis/results.ts';
import { PROBE_KINDS } from '../analysis/sample.ts';
import { drawsLane, type Lane, reportLane } from '../report/timeline-svg.ts';
import type { SampleSpill } from './sample-spill.ts';

export async function reportLanesOf(results: Results, spill: SampleSpill): Promise<Lane[]> {
  const lanes: Lane[] = [];
  for (const endpoint of results.endpoints) {
    const columns = await spill.lanesOf(endpoint.name);
    for (const kind of PROBE_KINDS) {
      const lane = columns.get(kind) ?? new LaneColumns(endpoint.name, kind, new DetailTable());
      if (drawsLane(endpoint, kind, lane.size)) lanes.push(reportLane(results, endpoint, kind, lane));
    }
  }
  return lanes;
}
