// How a run's verdict shows in the `Passed` condition and the final Event.
import type { VerdictResult } from '../analysis/verdict.ts';

export interface VerdictCondition {
  status: 'True' | 'False' | 'Unknown';
  /** The condition's reason. */
  reason: 'WithinSLO' | 'SLOViolated' | 'Inconclusive';
  /** The Event's reason. */
  eventReason: 'Passed' | 'SLOViolated' | 'Inconclusive';
}

/** Pass: True; Fail: False; Inconclusive: Unknown (the data cannot show the SLOs held). */
export function verdictCondition(result: VerdictResult): VerdictCondition {
  switch (result) {
    case 'Pass':
      return { status: 'True', reason: 'WithinSLO', eventReason: 'Passed' };
    case 'Fail':
      return { status: 'False', reason: 'SLOViolated', eventReason: 'SLOViolated' };
    case 'Inconclusive':
      return { status: 'Unknown', reason: 'Inconclusive', eventReason: 'Inconclusive' };
  }
}
