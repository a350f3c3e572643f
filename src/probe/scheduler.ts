// Fixed-rate scheduling: tick n is due at t0 + n * interval on the monotonic clock, whatever
// earlier attempts are doing, so a hung attempt never hides the ones after it. Attempts
// overlap up to a cap; a tick that finds the cap reached, or that the event loop woke up for
// more than one interval late, is skipped and counted (its seq is used up, so gaps in seq
// show where).
import { type MonotonicNow, monotonicNow } from './clock.ts';
import { LagHistogram, type LagSummary } from './lag-histogram.ts';

export interface Tick {
  seq: number;
  /** Monotonic ms the tick was due. */
  scheduledMs: number;
  /** Monotonic ms the attempt actually started. */
  startedMs: number;
}

export type SkipReason = 'in-flight-cap' | 'late';

export interface FixedRateOptions {
  intervalMs: number;
  /** Cap on attempts in flight at once (>= 1). */
  maxInFlight: number;
  /** Monotonic time of tick 0; default: the time of start(). Shared t0 aligns an endpoint's probes. */
  startAtMs?: number;
  now?: MonotonicNow;
  onSkip?: (seq: number, reason: SkipReason) => void;
}

export interface SchedulerStats {
  /** Attempts started. */
  started: number;
  skippedInFlightCap: number;
  skippedLate: number;
  inFlight: number;
  maxInFlightSeen: number;
  lag: LagSummary;
}

export const MIN_INTERVAL_MS = 10;

export class FixedRateScheduler {
  readonly #intervalMs: number;
  readonly #maxInFlight: number;
  readonly #now: MonotonicNow;
  readonly #onSkip: FixedRateOptions['onSkip'];
  readonly #task: (tick: Tick) => unknown;
  readonly #startAtMs: number | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #lag = new LagHistogram();
  #t0 = 0;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #started = 0;
  #skippedCap = 0;
  #skippedLate = 0;
  #maxInFlightSeen = 0;

  constructor(options: FixedRateOptions, task: (tick: Tick) => unknown) {
    if (!(options.intervalMs >= 1))
      throw new RangeError(`intervalMs must be >= 1, got ${options.intervalMs}`);
    this.#intervalMs = options.intervalMs;
    this.#maxInFlight = Math.max(1, Math.floor(options.maxInFlight));
    this.#now = options.now ?? monotonicNow;
    this.#onSkip = options.onSkip;
    this.#startAtMs = options.startAtMs;
    this.#task = task;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#t0 = this.#startAtMs ?? this.#now();
    this.#next = 0;
    this.#arm();
  }

  /** No new attempts; resolves when the ones in flight have ended (each has its own deadline). */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.all([...this.#inFlight]);
  }

  stats(): SchedulerStats {
    return {
      started: this.#started,
      skippedInFlightCap: this.#skippedCap,
      skippedLate: this.#skippedLate,
      inFlight: this.#inFlight.size,
      maxInFlightSeen: this.#maxInFlightSeen,
      lag: this.#lag.summary(),
    };
  }

  get lagHistogram(): LagHistogram {
    return this.#lag;
  }

  #arm(): void {
    if (!this.#running) return;
    const delay = this.#t0 + this.#next * this.#intervalMs - this.#now();
    // Timers have whole-millisecond resolution on a cached loop clock and fire up to ~1.5 ms
    // early for fractional delays; rounding up makes early wake-ups rare and small.
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, Math.ceil(delay)));
  }

  #fire(): void {
    if (!this.#running) return;
    const now = this.#now();
    const due = this.#t0 + this.#next * this.#intervalMs;
    // Never start before the tick is due. A sub-2 ms early wake-up waits 1 ms more (a timer,
    // not a setImmediate poll: polling would burn CPU for up to 2 ms on every early tick).
    if (now < due) {
      if (due - now <= 2) this.#timer = setTimeout(() => this.#fire(), 1);
      else this.#arm();
      return;
    }
    const latest = Math.floor((now - this.#t0) / this.#intervalMs);
    while (this.#next < latest) this.#skip(this.#next++, 'late');
    const seq = this.#next++;
    if (this.#inFlight.size >= this.#maxInFlight) {
      this.#skip(seq, 'in-flight-cap');
    } else {
      const scheduledMs = this.#t0 + seq * this.#intervalMs;
      this.#lag.record(now - scheduledMs);
      this.#run({ seq, scheduledMs, startedMs: now });
    }
    this.#arm();
  }

  #skip(seq: number, reason: SkipReason): void {
    if (reason === 'late') this.#skippedLate++;
    else this.#skippedCap++;
    this.#onSkip?.(seq, reason);
  }

  #run(tick: Tick): void {
    this.#started++;
    const attempt = (async () => {
      try {
        await this.#task(tick);
      } catch {
        // The task reports its own failures as samples; a throwing sink must not stop the clock.
      }
    })();
    this.#inFlight.add(attempt);
    if (this.#inFlight.size > this.#maxInFlightSeen) this.#maxInFlightSeen = this.#inFlight.size;
    void attempt.finally(() => this.#inFlight.delete(attempt));
  }
}
