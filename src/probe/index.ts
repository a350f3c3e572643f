// The measuring instrument's public surface; see README.md in this folder.
export { classifyMysqlError } from './classify-mysql.ts';
export { classifyPgError } from './classify-pg.ts';
export { wallClockMs } from './clock.ts';
export { DeadlineError, withDeadline } from './deadline.ts';
export { DnsProbe } from './dns-probe.ts';
export { LagHistogram, type LagSummary } from './lag-histogram.ts';
export { defaultMaxInFlight, Prober, type ProberOptions } from './prober.ts';
export { type ReadBackOptions, readBackWrites } from './read-back.ts';
export {
  FixedRateScheduler,
  MIN_INTERVAL_MS,
  type SchedulerStats,
  type SkipReason,
  type Tick,
} from './scheduler.ts';
export { createProbeDriver, DEFAULT_POOL_SIZE, ProbeSetupError } from './sql-driver.ts';
export { TlsConfigError } from './tls-options.ts';
export type * from './types.ts';
export { DIALECTS } from './types.ts';
export { writeKeyOf } from './write-key.ts';
