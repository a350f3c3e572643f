// Schedule lag (actual start - scheduled start) as a fixed-resolution histogram, so a long
// run at 10 ms costs constant memory and p50/p99 stay cheap to read.
const RESOLUTION_MS = 0.05;
const MAX_MS = 1000;
const BUCKETS = Math.ceil(MAX_MS / RESOLUTION_MS);

export interface LagSummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export class LagHistogram {
  readonly #counts = new Uint32Array(BUCKETS + 1);
  #count = 0;
  #maxMs = 0;

  record(lagMs: number): void {
    const lag = Math.max(0, lagMs);
    this.#counts[Math.min(BUCKETS, Math.floor(lag / RESOLUTION_MS))]!++;
    this.#count++;
    if (lag > this.#maxMs) this.#maxMs = lag;
  }

  /** The lag at or below which `q` of the recorded values lie (bucket upper edge, capped at max). */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let i = 0; i <= BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(this.#maxMs, (i + 1) * RESOLUTION_MS);
    }
    return this.#maxMs;
  }

  merge(other: LagHistogram): void {
    for (let i = 0; i <= BUCKETS; i++) this.#counts[i]! += other.#counts[i]!;
    this.#count += other.#count;
    this.#maxMs = Math.max(this.#maxMs, other.#maxMs);
  }

  summary(): LagSummary {
    return { count: this.#count, p50Ms: this.quantile(0.5), p99Ms: this.quantile(0.99), maxMs: this.#maxMs };
  }
}
