// Every sample of one prober pod, in order, in bounded memory. A pod keeps all of its run's
// samples so the controller can pull them incrementally and re-pull from 0 after its own
// restart. Stored column-wise (typed arrays, repeated details interned): about 30 bytes per
// sample instead of ~280 as objects, so 2 million samples fit in a small pod. When full, new
// samples are counted as dropped and not stored, so the index of a stored sample never changes.
import { ERROR_CLASSES } from '../analysis/error-class.ts';
import { PROBE_KINDS, type ServerIdentity } from '../analysis/sample.ts';
import type { ProbeSample } from '../probe/types.ts';
import { writeKeyOf } from '../probe/write-key.ts';

export const DEFAULT_MAX_SAMPLES = 2_000_000;
const INITIAL_CAPACITY = 4096;
/** flags bit: the write key is writeKeyOf(endpoint, seq) and is rebuilt, not stored. */
const DERIVED_WRITE_KEY = 1;

/** What a sample carries besides its numbers; the same few values repeat for most samples. */
interface Detail {
  endpoint: string;
  code?: string;
  message?: string;
  server?: ServerIdentity;
  dnsAnswer?: string[];
  connectAddr?: string;
  writeKey?: string;
}

export class SampleStore {
  readonly maxSamples: number;
  #size = 0;
  #dropped = 0;
  #seq = new Uint32Array(0);
  #startMs = new Float64Array(0);
  #endMs = new Float64Array(0);
  #kind = new Uint8Array(0);
  #class = new Uint8Array(0);
  #flags = new Uint8Array(0);
  #detail = new Uint32Array(0);
  readonly #details: Detail[] = [];
  readonly #detailIndex = new Map<string, number>();

  constructor(maxSamples = DEFAULT_MAX_SAMPLES) {
    if (!(Number.isInteger(maxSamples) && maxSamples > 0))
      throw new RangeError(`maxSamples must be a positive integer, got ${maxSamples}`);
    this.maxSamples = maxSamples;
  }

  /** Samples held. */
  get size(): number {
    return this.#size;
  }

  /** Samples not stored because the store was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Stores the sample; false (and counted as dropped) when the store is full. */
  add(sample: ProbeSample): boolean {
    if (this.#size >= this.maxSamples) {
      this.#dropped++;
      return false;
    }
    const kind = PROBE_KINDS.indexOf(sample.kind);
    const errorClass = ERROR_CLASSES.indexOf(sample.class);
    if (kind < 0 || errorClass < 0)
      throw new TypeError(`sample with unknown kind or class: ${sample.kind}/${sample.class}`);
    if (!Number.isInteger(sample.seq) || sample.seq < 0 || sample.seq > 0xffffffff)
      throw new RangeError(`sample seq out of range: ${sample.seq}`);
    if (this.#size === this.#seq.length) this.#grow();
    const i = this.#size++;
    const derived =
      sample.writeKey !== undefined && sample.writeKey === writeKeyOf(sample.endpoint, sample.seq);
    this.#seq[i] = sample.seq;
    this.#startMs[i] = sample.startMs;
    this.#endMs[i] = sample.endMs;
    this.#kind[i] = kind;
    this.#class[i] = errorClass;
    this.#flags[i] = derived ? DERIVED_WRITE_KEY : 0;
    this.#detail[i] = this.#intern(sample, derived);
    return true;
  }

  /** The sample at `index` (0 .. size-1), as a new object. */
  get(index: number): ProbeSample {
    if (!(Number.isInteger(index) && index >= 0 && index < this.#size))
      throw new RangeError(`no sample at index ${index} (size ${this.#size})`);
    const d = this.#details[this.#detail[index]!]!;
    const sample: ProbeSample = {
      endpoint: d.endpoint,
      kind: PROBE_KINDS[this.#kind[index]!]!,
      seq: this.#seq[index]!,
      startMs: this.#startMs[index]!,
      endMs: this.#endMs[index]!,
      class: ERROR_CLASSES[this.#class[index]!]!,
    };
    if (d.code !== undefined) sample.code = d.code;
    if (d.message !== undefined) sample.message = d.message;
    if (d.server) sample.server = { ...d.server };
    if (d.dnsAnswer) sample.dnsAnswer = [...d.dnsAnswer];
    if (d.connectAddr !== undefined) sample.connectAddr = d.connectAddr;
    if (this.#flags[index]! & DERIVED_WRITE_KEY) sample.writeKey = writeKeyOf(d.endpoint, sample.seq);
    else if (d.writeKey !== undefined) sample.writeKey = d.writeKey;
    return sample;
  }

  /** Samples `from` .. `from + limit - 1` (fewer at the end). */
  slice(from: number, limit: number): ProbeSample[] {
    const end = Math.min(this.#size, from + Math.max(0, limit));
    const out: ProbeSample[] = [];
    for (let i = Math.max(0, from); i < end; i++) out.push(this.get(i));
    return out;
  }

  #intern(sample: ProbeSample, derivedWriteKey: boolean): number {
    const detail: Detail = { endpoint: sample.endpoint };
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
    const key = JSON.stringify(detail);
    const known = this.#detailIndex.get(key);
    if (known !== undefined) return known;
    const index = this.#details.length;
    this.#details.push(detail);
    this.#detailIndex.set(key, index);
    return index;
  }

  #grow(): void {
    const capacity = Math.min(this.maxSamples, Math.max(INITIAL_CAPACITY, this.#seq.length * 2));
    const grow = <T extends Uint8Array | Uint32Array | Float64Array>(old: T, next: T): T => {
      next.set(old);
      return next;
    };
    this.#seq = grow(this.#seq, new Uint32Array(capacity));
    this.#startMs = grow(this.#startMs, new Float64Array(capacity));
    this.#endMs = grow(this.#endMs, new Float64Array(capacity));
    this.#kind = grow(this.#kind, new Uint8Array(capacity));
    this.#class = grow(this.#class, new Uint8Array(capacity));
    this.#flags = grow(this.#flags, new Uint8Array(capacity));
    this.#detail = grow(this.#detail, new Uint32Array(capacity));
  }
}
