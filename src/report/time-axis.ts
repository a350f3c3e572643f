// The time axis of the report: which part of the run to show and where the ticks go.
import type { Results } from '../analysis/results.ts';
import type { TimeDomain } from './lane-segments.ts';

const NICE_STEPS_SECONDS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];

/**
 * Shows the observation and a little baseline (at least 5 s or 10 % of the observation before
 * T0), widened to include every outage window.
 */
export function reportDomain(results: Results): TimeDomain {
  const t0Ms = Date.parse(results.trigger.time);
  const observeEndSeconds = results.observation.end.seconds;
  const padSeconds = Math.max(5, observeEndSeconds * 0.1);
  let startSeconds = -padSeconds;
  for (const endpoint of results.endpoints) {
    for (const kind of [endpoint.write, endpoint.read]) {
      for (const window of kind?.windows ?? [])
        startSeconds = Math.min(startSeconds, window.start.seconds - 1);
    }
  }
  startSeconds = Math.max(startSeconds, results.baseline.start.seconds);
  return { startMs: t0Ms + startSeconds * 1000, endMs: t0Ms + Math.max(observeEndSeconds, 1) * 1000 };
}

/** Tick positions in seconds relative to T0, about `target` of them, always including 0. */
export function axisTicksSeconds(domain: TimeDomain, t0Ms: number, target = 12): number[] {
  const spanSeconds = (domain.endMs - domain.startMs) / 1000;
  const step = NICE_STEPS_SECONDS.find((candidate) => spanSeconds / candidate <= target) ?? 3600;
  const fromSeconds = (domain.startMs - t0Ms) / 1000;
  const toSeconds = (domain.endMs - t0Ms) / 1000;
  const ticks: number[] = [];
  for (let tick = Math.ceil(fromSeconds / step) * step; tick <= toSeconds + 1e-9; tick += step) {
    ticks.push(Math.round(tick * 1000) / 1000);
  }
  return ticks;
}
