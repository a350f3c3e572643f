import { type OutageWindow, windowEstimateMs, windowLowerMs, windowUpperMs } from './outage-windows.ts';

/** The observation phase: from the trigger (T0) until observation stopped. */
export interface ObservationPhase {
  startMs: number;
  endMs: number;
}

export interface Downtime {
  /** Total length of the outage windows that overlap the observation phase (= upperBoundMs). */
  downtimeMs: number;
  lowerBoundMs: number;
  upperBoundMs: number;
  /** Sum of the windows' point estimates (see outage-windows.ts). */
  estimateMs: number;
  /** The windows counted, in time order. */
  windows: OutageWindow[];
  /** False when an outage was still open when observation ended. */
  recovered: boolean;
}

export function overlapsPhase(window: OutageWindow, phase: ObservationPhase): boolean {
  const endMs = window.endMs ?? Number.POSITIVE_INFINITY;
  return window.startMs < phase.endMs && endMs > phase.startMs;
}

/**
 * Downtime: the total length of outage windows that overlap the observation phase. A window
 * that overlaps counts whole; windows entirely in the baseline do not count.
 */
export function downtime(windows: readonly OutageWindow[], phase: ObservationPhase): Downtime {
  const counted = windows.filter((window) => overlapsPhase(window, phase));
  let upperBoundMs = 0;
  let lowerBoundMs = 0;
  let estimateMs = 0;
  for (const window of counted) {
    estimateMs += windowEstimateMs(window, phase.endMs);
    upperBoundMs += windowUpperMs(window, phase.endMs);
    lowerBoundMs += windowLowerMs(window);
  }
  return {
    downtimeMs: upperBoundMs,
    lowerBoundMs,
    upperBoundMs,
    estimateMs,
    windows: counted,
    recovered: counted.every((window) => !window.open),
  };
}
