// The live progress line of `failwatch run`: per endpoint and probe kind, the state of the
// last attempt and the attempts so far by class, in the words of the final table's
// "errors by class" column (`slow` is a class of its own, never counted as an error).
import type { ClassCounts } from '../analysis/error-counts.ts';
import type { ProbeSample } from '../probe/types.ts';
import { formatErrorCounts } from '../report/format.ts';

interface Lane {
  counts: ClassCounts;
  last: ProbeSample['class'];
}

export class Progress {
  private readonly lanes = new Map<string, Lane>();
  private t0Ms: number | undefined;

  add(s: ProbeSample): void {
    const key = `${s.endpoint}/${s.kind}`;
    const lane = this.lanes.get(key) ?? { counts: {}, last: 'ok' };
    if (s.class !== 'ok') lane.counts[s.class] = (lane.counts[s.class] ?? 0) + 1;
    lane.last = s.class;
    this.lanes.set(key, lane);
  }

  setT0(ms: number): void {
    this.t0Ms = ms;
  }

  get empty(): boolean {
    return this.lanes.size === 0;
  }

  /** `[T0+3.2s] cluster/write DOWN(read_only): connection_refused 21, read_only 3 | proxy/write SLOW: slow 9` */
  line(nowMs = Date.now(), note?: string): string {
    const at = this.t0Ms === undefined ? 'baseline' : `T0+${((nowMs - this.t0Ms) / 1000).toFixed(1)}s`;
    const parts = [...this.lanes.entries()].map(
      ([key, lane]) => `${key} ${stateWord(lane.last)}: ${formatErrorCounts(lane.counts)}`,
    );
    return `[${at}${note ? `, ${note}` : ''}] ${parts.join(' | ')}`;
  }
}

function stateWord(last: ProbeSample['class']): string {
  if (last === 'ok') return 'up';
  if (last === 'slow') return 'SLOW';
  return `DOWN(${last})`;
}
