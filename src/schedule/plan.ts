// What a FailoverSchedule should do now, as a pure function of its spec, what it last did, and
// the clock. CronJob semantics with a database's caution: no backfill (of all ticks missed
// since the last one handled, only the latest may still run, and only within
// startingDeadlineSeconds), and never two runs at once (a tick that finds a run active is
// skipped, not queued).
import { type CronSchedule, nextMatch, parseCron, validateTimeZone } from './cron.ts';
import { type AllowedWindow, emptyWindowReason, inWindows } from './windows.ts';

export interface ScheduleTiming {
  schedule: string;
  timeZone: string;
  windows?: AllowedWindow[];
}

export interface CompiledSchedule {
  cron: CronSchedule;
  timeZone: string;
  windows: AllowedWindow[];
}

/** Parses and checks a schedule; throws CronError with a message for a person. */
export function compileSchedule(timing: ScheduleTiming): CompiledSchedule {
  const cron = parseCron(timing.schedule);
  validateTimeZone(timing.timeZone);
  const windows = timing.windows ?? [];
  for (const w of windows) {
    const reason = emptyWindowReason(w);
    if (reason) throw new Error(reason);
  }
  return { cron, timeZone: timing.timeZone, windows };
}

/**
 * True when some weekday, hour and minute satisfy both the cron fields and a window (day of
 * month and month aside), so a search for the next tick can end.
 */
export function windowsCanMatch(s: CompiledSchedule): boolean {
  if (s.windows.length === 0) return true;
  for (let weekday = 0; weekday < 7; weekday++) {
    if (s.cron.dowRestricted && !s.cron.domRestricted && !s.cron.daysOfWeek.has(weekday)) continue;
    for (const hour of s.cron.hours)
      for (const minute of s.cron.minutes)
        if (inWindows(s.windows, { year: 2000, month: 1, day: 1, hour, minute, weekday })) return true;
  }
  return false;
}

/** The first tick strictly after `afterMs` inside the allowed windows. */
export function nextTick(s: CompiledSchedule, afterMs: number): number | undefined {
  if (!windowsCanMatch(s)) return undefined;
  return nextMatch(s.cron, s.timeZone, afterMs, (t) => inWindows(s.windows, t));
}

export interface PlanInput {
  schedule: CompiledSchedule;
  nowMs: number;
  /** The latest tick already handled (run, skipped or missed); else the schedule's creation. */
  lastHandledMs: number;
  startingDeadlineSeconds?: number;
  suspended: boolean;
  /** A child of this schedule has not finished yet. */
  hasActiveRun: boolean;
}

export type PlanAction =
  | { kind: 'wait' }
  | { kind: 'run'; tickMs: number; lateMs: number }
  | { kind: 'skip-active'; tickMs: number }
  | { kind: 'missed'; tickMs: number; missedTicks: number }
  | { kind: 'suspended'; tickMs: number };

export interface Plan {
  action: PlanAction;
  /** Ticks that passed since lastHandledMs and will never run (not counting a run one). */
  missedTicks: number;
  /** The next tick after now (for status.nextScheduleTime and the requeue). */
  nextTickMs: number | undefined;
}

/** Enough to say "many"; a schedule that was down for a year does not count every minute. */
const MAX_COUNTED_TICKS = 1000;

export function planSchedule(input: PlanInput): Plan {
  const { schedule, nowMs } = input;
  let latest: number | undefined;
  let due = 0;
  for (let t = nextTick(schedule, input.lastHandledMs); t !== undefined && t <= nowMs; ) {
    latest = t;
    due++;
    if (due >= MAX_COUNTED_TICKS) {
      // Jump: only the most recent due tick matters.
      latest = lastTickAtOrBefore(schedule, nowMs, t) ?? t;
      break;
    }
    t = nextTick(schedule, t);
  }
  const nextTickMs = nextTick(schedule, nowMs);
  if (latest === undefined) return { action: { kind: 'wait' }, missedTicks: 0, nextTickMs };
  const olderMissed = due - 1;
  if (input.suspended) return { action: { kind: 'suspended', tickMs: latest }, missedTicks: due, nextTickMs };
  const lateMs = nowMs - latest;
  const deadlineMs =
    input.startingDeadlineSeconds === undefined ? Infinity : input.startingDeadlineSeconds * 1000;
  if (lateMs > deadlineMs)
    return { action: { kind: 'missed', tickMs: latest, missedTicks: due }, missedTicks: due, nextTickMs };
  if (input.hasActiveRun)
    return { action: { kind: 'skip-active', tickMs: latest }, missedTicks: due, nextTickMs };
  return { action: { kind: 'run', tickMs: latest, lateMs }, missedTicks: olderMissed, nextTickMs };
}

function lastTickAtOrBefore(schedule: CompiledSchedule, nowMs: number, fromMs: number): number | undefined {
  // Walk back day by day from now to find a window of ticks, then forward to the last.
  for (let back = 3600_000; back <= 400 * 86_400_000; back *= 2) {
    let last: number | undefined;
    for (let t = nextTick(schedule, Math.max(fromMs, nowMs - back)); t !== undefined && t <= nowMs; )
      [last, t] = [t, nextTick(schedule, t)];
    if (last !== undefined) return last;
  }
  return undefined;
}
