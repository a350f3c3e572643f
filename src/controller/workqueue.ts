// A rate-limited work queue keyed by `namespace/name`, in the manner of client-go's: a key
// is queued at most once, one key is never processed by two workers at once (a key added
// while it is processed is processed again afterwards), failures come back with per-key
// exponential backoff, and a reconcile can ask to be called again after a delay.
// Two lanes: keys added for something that just happened (a watch event, a run's next step)
// go before background work (the objects listed at start-up, polls and retries that come
// back after a delay), so a new experiment never waits behind hundreds of old ones.

export interface ReconcileResult {
  /** Call again after this many ms (polling what Kubernetes does not notify). */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | undefined>;

export interface WorkQueueOptions {
  concurrency: number;
  baseDelayMs: number;
  maxDelayMs: number;
  onResult?: (
    key: string,
    outcome: 'success' | 'error' | 'requeue',
    durationMs: number,
    err?: unknown,
  ) => void;
}

/** `now`: something just happened; `background`: start-up listing, delayed polls and retries. */
export type Lane = 'now' | 'background';

export class WorkQueue {
  private readonly reconcile: Reconcile;
  private readonly options: WorkQueueOptions;
  /** Insertion-ordered sets as FIFOs: O(1) push, pop, and moving a key to the `now` lane. */
  private readonly lanes = { now: new Set<string>(), background: new Set<string>() };
  private readonly processing = new Set<string>();
  private readonly dirty = new Map<string, Lane>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; dueMs: number }>();
  private active = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(reconcile: Reconcile, options: WorkQueueOptions) {
    this.reconcile = reconcile;
    this.options = options;
  }

  depth(): number {
    return this.lanes.now.size + this.lanes.background.size;
  }

  /** Queues the key (once); a key waiting in the background lane moves up when added `now`. */
  add(key: string, lane: Lane = 'now'): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      if (lane === 'now' || !this.dirty.has(key)) this.dirty.set(key, lane);
      return;
    }
    if (this.lanes.now.has(key)) return;
    if (this.lanes.background.has(key)) {
      if (lane === 'background') return;
      this.lanes.background.delete(key);
    }
    this.lanes[lane].add(key);
    this.pump();
  }

  /** Adds the key (background lane) after a delay; of two pending delays for a key the sooner wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const dueMs = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending) {
      if (pending.dueMs <= dueMs) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key, 'background');
    }, delayMs);
    timer.unref();
    this.timers.set(key, { timer, dueMs });
  }

  /** Resolves when nothing is queued or running (tests). */
  idle(): Promise<void> {
    if (this.active === 0 && this.depth() === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
  }

  private pump(): void {
    while (!this.stopped && this.active < this.options.concurrency && this.depth() > 0) {
      const lane = this.lanes.now.size > 0 ? this.lanes.now : this.lanes.background;
      const key = lane.values().next().value!;
      lane.delete(key);
      this.processing.add(key);
      this.active++;
      void this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    const started = performance.now();
    try {
      const result = await this.reconcile(key);
      this.failures.delete(key);
      const after = result?.requeueAfterMs;
      this.options.onResult?.(key, after === undefined ? 'success' : 'requeue', performance.now() - started);
      if (after !== undefined) this.addAfter(key, after);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      this.options.onResult?.(key, 'error', performance.now() - started, err);
      this.addAfter(key, Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (n - 1)));
    } finally {
      this.processing.delete(key);
      this.active--;
      const again = this.dirty.get(key);
      if (again) {
        this.dirty.delete(key);
        this.add(key, again);
      }
      this.pump();
      if (this.active === 0 && this.depth() === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }
}
