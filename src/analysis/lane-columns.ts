// One lane's samples (one endpoint's probe kind) in compact form: numbers in typed-array columns
// (26 bytes a sample), the few details that repeat (server, error message, DNS answer) interned
// in a table shared by the lanes of a run. The streamed analysis (analyze-streamed.ts) reads a
// lane from here in start order instead of holding ~280-byte sample objects.
import { ERROR_CLASSES, type ErrorClass } from './error-class.ts';
import type { ProbeKind, Sample, ServerIdentity } from './sample.ts';

/** What a sample carries besides its numbers. */
export interface SampleDetail {
  code?: string;
  message?: string;
  server?: ServerIdentity;
  dnsAnswer?: string[];
  connectAddr?: string;
  /** Only when it is not `${endpoint}#${seq}` (that one is rebuilt, see DERIVED_WRITE_KEY). */
  writeKey?: string;
}

/** flags bit: the write key is `${endpoint}#${seq}` (the prober's key) and is not stored. */
export const DERIVED_WRITE_KEY = 1;
export const CLASS_INDEX: ReadonlyMap<ErrorClass, number> = new Map(ERROR_CLASSES.map((c, i) => [c, i]));
const INITIAL_CAPACITY = 1024;

/** A sample's detail: what it carries besides its numbers (the write key only when not derived). */
export function sampleDetail(
  sample: Pick<Sample, 'code' | 'message' | 'server' | 'dnsAnswer' | 'writeKey'> & { connectAddr?: string },
  derivedWriteKey: boolean,
): SampleDetail {
  const detail: SampleDetail = {};
  if (sample.code !== undefined) detail.code = sample.code;
  if (sample.message !== undefined) detail.message = sample.message;
  if (sample.server) {
    const server: ServerIdentity = { id: sample.server.id, role: sample.server.role };
    if (sample.server.addr !== undefined) server.addr = sample.server.addr;
    detail.server = server;
  }
  if (sample.dnsAnswer) detail.dnsAnswer = [...sample.dnsAnswer];
  if (sample.connectAddr !== undefined) detail.connectAddr = sample.connectAddr;
  if (sample.writeKey !== undefined && !derivedWriteKey) detail.writeKey = sample.writeKey;
  return detail;
}

/** Values that repeat, each kept once and named by its index (equal as JSON, equal here). */
export class InternTable<T> {
  readonly #values: T[] = [];
  readonly #index = new Map<string, number>();

  get size(): number {
    return this.#values.length;
  }

  get(index: number): T {
    return this.#values[index]!;
  }

  /** The value's index, adding it when new. */
  intern(value: T): number {
    const key = JSON.stringify(value);
    const known = this.#index.get(key);
    if (known !== undefined) return known;
    this.#values.push(value);
    this.#index.set(key, this.#values.length - 1);
    return this.#values.length - 1;
  }
}

/** Interned details: the same few values repeat for almost every sample. */
export class DetailTable extends InternTable<SampleDetail> {
  /** A sample's detail and flags (see DERIVED_WRITE_KEY). */
  internSample(sample: Sample & { connectAddr?: string }): { detail: number; flags: number } {
    const derived = sample.writeKey !== undefined && sample.writeKey === `${sample.endpoint}#${sample.seq}`;
    return { detail: this.intern(sampleDetail(sample, derived)), flags: derived ? DERIVED_WRITE_KEY : 0 };
  }
}

/** The samples of one lane, in arrival order. */
export class LaneColumns {
  readonly endpoint: string;
  readonly kind: ProbeKind;
  readonly details: DetailTable;
  #size = 0;
  startMs = new Float64Array(0);
  endMs = new Float64Array(0);
  seq = new Uint32Array(0);
  classIndex = new Uint8Array(0);
  flags = new Uint8Array(0);
  detail = new Uint32Array(0);

  /** `capacity`: samples expected (the columns grow beyond it if needed). */
  constructor(endpoint: string, kind: ProbeKind, details: DetailTable, capacity = 0) {
    this.endpoint = endpoint;
    this.kind = kind;
    this.details = details;
    if (capacity > 0) this.#resize(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Appends one sample of this lane (the caller routes samples to their lane). */
  add(sample: Sample & { connectAddr?: string }): void {
    const { detail, flags } = this.details.internSample(sample);
    this.push(sample.startMs, sample.endMs, sample.seq, CLASS_INDEX.get(sample.class)!, flags, detail);
  }

  /** Appends one sample given as its columns (decoded from a compact record). */
  push(startMs: number, endMs: number, seq: number, classIndex: number, flags: number, detail: number): void {
    if (this.#size === this.startMs.length) this.#grow();
    const i = this.#size++;
    this.startMs[i] = startMs;
    this.endMs[i] = endMs;
    this.seq[i] = seq;
    this.classIndex[i] = classIndex;
    this.flags[i] = flags;
    this.detail[i] = detail;
  }

  classOf(i: number): ErrorClass {
    return ERROR_CLASSES[this.classIndex[i]!]!;
  }

  detailOf(i: number): SampleDetail {
    return this.details.get(this.detail[i]!);
  }

  writeKeyOf(i: number): string | undefined {
    if (this.flags[i]! & DERIVED_WRITE_KEY) return `${this.endpoint}#${this.seq[i]}`;
    return this.detailOf(i).writeKey;
  }

  /**
   * Indices in start order (then seq, then arrival: the order of a stable sort by byStart).
   * Samples mostly arrive in start order; then no sort is needed.
   */
  startOrder(): Uint32Array {
    const order = new Uint32Array(this.#size);
    let sorted = true;
    for (let i = 0; i < this.#size; i++) {
      order[i] = i;
      if (i > 0 && this.#before(i, i - 1)) sorted = false;
    }
    if (!sorted)
      order.sort((a, b) => this.startMs[a]! - this.startMs[b]! || this.seq[a]! - this.seq[b]! || a - b);
    return order;
  }

  #before(a: number, b: number): boolean {
    const d = this.startMs[a]! - this.startMs[b]!;
    return d < 0 || (d === 0 && this.seq[a]! < this.seq[b]!);
  }

  #grow(): void {
    this.#resize(Math.max(INITIAL_CAPACITY, this.startMs.length * 2));
  }

  #resize(capacity: number): void {
    const grow = <T extends Uint8Array | Uint32Array | Float64Array>(old: T, next: T): T => {
      next.set(old);
      return next;
    };
    this.startMs = grow(this.startMs, new Float64Array(capacity));
    this.endMs = grow(this.endMs, new Float64Array(capacity));
    this.seq = grow(this.seq, new Uint32Array(capacity));
    this.classIndex = grow(this.classIndex, new Uint8Array(capacity));
    this.flags = grow(this.flags, new Uint8Array(capacity));
    this.detail = grow(this.detail, new Uint32Array(capacity));
  }
}

/** Routes samples to the lanes of their endpoint, by kind (one endpoint's lanes). */
export function lanesOf(
  endpoint: string,
  samples: Iterable<Sample>,
  details = new DetailTable(),
): Map<ProbeKind, LaneColumns> {
  const lanes = new Map<ProbeKind, LaneColumns>();
  for (const sample of samples) {
    if (sample.endpoint !== endpoint) continue;
    let lane = lanes.get(sample.kind);
    if (!lane) {
      lane = new LaneColumns(endpoint, sample.kind, details);
      lanes.set(sample.kind, lane);
    }
    lane.add(sample);
  }
  return lanes;
}
