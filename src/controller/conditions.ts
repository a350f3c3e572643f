// metav1.Condition bookkeeping on the FailoverExperiment status.
import type { ExperimentCondition, FailoverExperimentStatus } from '../api/experiment-status.ts';

/** Sets a metav1.Condition, keeping lastTransitionTime when the status did not change. */
export function setCondition(
  status: FailoverExperimentStatus,
  obj: { metadata: { generation?: number } },
  c: Omit<ExperimentCondition, 'lastTransitionTime' | 'observedGeneration'>,
): void {
  const conditions = [...(status.conditions ?? [])];
  const i = conditions.findIndex((x) => x.type === c.type);
  const previous = i >= 0 ? conditions[i] : undefined;
  const next: ExperimentCondition = {
    ...c,
    observedGeneration: obj.metadata.generation,
    lastTransitionTime:
      previous && previous.status === c.status ? previous.lastTransitionTime : new Date().toISOString(),
  };
  if (i >= 0) conditions[i] = next;
  else conditions.push(next);
  status.conditions = conditions;
}
