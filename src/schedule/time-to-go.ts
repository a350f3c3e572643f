// How long until a future instant, the way kubectl prints ages (`45m`, `6d23h`), for the
// FailoverSchedule's NEXT RUN column. kubectl shows a future `date` column as `<invalid>`, so
// the controller writes this string and refreshes it on every pass (at least once a minute):
// hence minute granularity at most.

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** `in 45m`, `in 3h20m`, `in 6d23h`, `in 30d`; `in <1m` for less than a minute (or the past). */
export function timeToGo(fromMs: number, toMs: number): string {
  const ms = toMs - fromMs;
  if (ms < MINUTE_MS) return 'in <1m';
  const minutes = Math.floor(ms / MINUTE_MS);
  const hours = Math.floor(ms / HOUR_MS);
  const days = Math.floor(ms / DAY_MS);
  if (hours < 3) return `in ${minutes}m`;
  if (hours < 8) return `in ${hours}h${minutes % 60 === 0 ? '' : `${minutes % 60}m`}`;
  if (hours < 48) return `in ${hours}h`;
  if (days < 8) return `in ${days}d${hours % 24 === 0 ? '' : `${hours % 24}h`}`;
  return `in ${days}d`;
}
