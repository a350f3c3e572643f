// Allowed windows: a tick fires only when its wall-clock time in the schedule's time zone falls
// inside one of them (days of the week, [start, end) as HH:MM). No windows = always allowed.
import type { LocalTime } from './cron.ts';

export const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface AllowedWindow {
  days: Weekday[];
  /** HH:MM, inclusive */
  start: string;
  /** HH:MM (up to 24:00), exclusive */
  end: string;
}

export const minutesOfDay = (hhmm: string): number => {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
};

/** Why a window can never contain a tick, or undefined when it can. */
export function emptyWindowReason(w: AllowedWindow): string | undefined {
  if (w.days.length === 0) return 'window has no days';
  if (minutesOfDay(w.start) >= minutesOfDay(w.end))
    return `window ${w.start}-${w.end} is empty: start must be before end (split an overnight window in two)`;
  return undefined;
}

export function inWindows(windows: readonly AllowedWindow[] | undefined, t: LocalTime): boolean {
  if (!windows || windows.length === 0) return true;
  const minute = t.hour * 60 + t.minute;
  const day = WEEKDAYS[t.weekday]!;
  return windows.some(
    (w) => w.days.includes(day) && minute >= minutesOfDay(w.start) && minute < minutesOfDay(w.end),
  );
}
