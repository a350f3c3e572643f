// A small standard 5-field cron matcher (minute hour day-of-month month day-of-week) with the
// usual `@hourly`-style shortcuts, evaluated in an IANA time zone through Intl. Semantics as in
// Vixie cron / Kubernetes CronJob: when both day-of-month and day-of-week are restricted, a day
// matches if either does; local times skipped by a DST change never fire, repeated ones fire
// once per UTC instant.

export const CRON_SHORTCUTS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  namesOffset?: number;
}

const FIELDS: FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES, namesOffset: 1 },
  // 7 is Sunday too
  { name: 'day of week', min: 0, max: 7, names: DAY_NAMES, namesOffset: 0 },
];

export class CronError extends Error {
  readonly code = 'INVALID_SCHEDULE';
}

export interface CronSchedule {
  source: string;
  minutes: Set<number>;
  hours: Set<number>;
  daysOfMonth: Set<number>;
  months: Set<number>;
  daysOfWeek: Set<number>;
  domRestricted: boolean;
  dowRestricted: boolean;
}

function parseValue(text: string, spec: FieldSpec): number {
  const lower = text.toLowerCase();
  const named = spec.names?.indexOf(lower) ?? -1;
  if (named >= 0) return named + (spec.namesOffset ?? 0);
  if (!/^\d+$/.test(text)) throw new CronError(`${spec.name}: "${text}" is not a number`);
  const n = Number(text);
  if (n < spec.min || n > spec.max)
    throw new CronError(`${spec.name}: ${n} is out of range ${spec.min}-${spec.max}`);
  return n;
}

function parseField(text: string, spec: FieldSpec): { values: Set<number>; restricted: boolean } {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined || range === '') throw new CronError(`${spec.name}: "${part}" is malformed`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0)
        throw new CronError(`${spec.name}: step "${stepText}" must be a positive number`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') {
      lo = spec.min;
      hi = spec.max;
    } else if (range!.includes('-')) {
      const [a, b, more] = range!.split('-');
      if (more !== undefined) throw new CronError(`${spec.name}: "${range}" is malformed`);
      lo = parseValue(a!, spec);
      hi = parseValue(b!, spec);
      if (lo > hi) throw new CronError(`${spec.name}: range ${range} goes backwards`);
    } else {
      lo = parseValue(range!, spec);
      hi = stepText !== undefined ? spec.max : lo;
    }
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return { values, restricted: text !== '*' && text !== '?' };
}

/** Parses a cron expression or shortcut; throws CronError with a readable message. */
export function parseCron(expression: string): CronSchedule {
  const trimmed = expression.trim();
  const expanded = trimmed.startsWith('@') ? CRON_SHORTCUTS[trimmed.toLowerCase()] : trimmed;
  if (!expanded)
    throw new CronError(
      `unknown shortcut "${trimmed}" (use ${Object.keys(CRON_SHORTCUTS).join(', ')} or 5 fields)`,
    );
  const parts = expanded.split(/\s+/);
  if (parts.length !== 5)
    throw new CronError(
      `"${trimmed}" has ${parts.length} fields; a schedule has 5: minute hour day-of-month month day-of-week`,
    );
  const [m, h, dom, mon, dow] = parts.map((p, i) => parseField(p, FIELDS[i]!));
  const daysOfWeek = new Set([...dow!.values].map((d) => d % 7));
  return {
    source: trimmed,
    minutes: m!.values,
    hours: h!.values,
    daysOfMonth: dom!.values,
    months: mon!.values,
    daysOfWeek,
    domRestricted: dom!.restricted,
    dowRestricted: dow!.restricted,
  };
}

/** Wall-clock fields of an instant in a time zone. */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  /** 0 = Sunday */
  weekday: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Throws CronError when the zone is not a known IANA time zone. */
export function validateTimeZone(timeZone: string): void {
  localFormatter(timeZone);
}

function localFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        weekday: 'short',
      });
    } catch {
      throw new CronError(`unknown time zone "${timeZone}" (use an IANA name like Europe/Berlin or UTC)`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

export function localTime(instantMs: number, timeZone: string): LocalTime {
  const parts = localFormatter(timeZone).formatToParts(instantMs);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  return {
    year: Number(get('year')),
    month: Number(get('month')),
    day: Number(get('day')),
    hour: Number(get('hour')),
    minute: Number(get('minute')),
    weekday: DAY_NAMES.indexOf(get('weekday').toLowerCase()),
  };
}

function dayMatches(cron: CronSchedule, t: LocalTime): boolean {
  if (!cron.months.has(t.month)) return false;
  const dom = cron.daysOfMonth.has(t.day);
  const dow = cron.daysOfWeek.has(t.weekday);
  if (cron.domRestricted && cron.dowRestricted) return dom || dow;
  return dom && dow;
}

export function matches(cron: CronSchedule, t: LocalTime): boolean {
  return dayMatches(cron, t) && cron.hours.has(t.hour) && cron.minutes.has(t.minute);
}

const MINUTE_MS = 60_000;
/** How far ahead to look: a leap day (`0 0 29 2 *`) comes within 8 years. */
const SEARCH_LIMIT_MS = 8 * 366 * 24 * 3600_000;

/**
 * The first instant strictly after `afterMs` (whole UTC minutes) whose wall clock in `timeZone`
 * matches the schedule and `accept` (allowed windows), or undefined if none within the limit.
 */
export function nextMatch(
  cron: CronSchedule,
  timeZone: string,
  afterMs: number,
  accept: (t: LocalTime) => boolean = () => true,
  limitMs = SEARCH_LIMIT_MS,
): number | undefined {
  let t = Math.floor(afterMs / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  const end = afterMs + limitMs;
  while (t <= end) {
    const local = localTime(t, timeZone);
    if (!dayMatches(cron, local)) {
      // Jump to 3 hours before local midnight, then hour by hour: a DST change (at most 2 h)
      // on the way can then not carry us past the first minutes of the next day.
      const toMidnight = (24 - local.hour) * 60 - local.minute;
      t += (toMidnight > 180 ? toMidnight - 180 : 60 - local.minute) * MINUTE_MS;
      continue;
    }
    if (!cron.hours.has(local.hour)) {
      // Next local hour: offsets are whole minutes and DST moves whole (or half) hours, so no
      // matching minute is jumped over.
      t += (60 - local.minute) * MINUTE_MS;
      continue;
    }
    if (cron.minutes.has(local.minute) && accept(local)) return t;
    // The next matching minute of this hour, or the next hour.
    let m = local.minute + 1;
    while (m < 60 && !cron.minutes.has(m)) m++;
    t += (m - local.minute) * MINUTE_MS;
  }
  return undefined;
}
