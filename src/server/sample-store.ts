// Every sample of one prober pod, in order, in bounded memory. A pod keeps all of its run's
// samples so the controller can pull them incrementally and re-pull from 0 after its own
// restart. Stored column-wise in typed-array chunks of 65,536 samples (off the V8 heap, never
// copied when the store grows), repeated details interned: 25 bytes per sample instead of ~280
// as objects, so 2 million samples (2.8 h of write + read every 10 ms) take 50 MB. When full,
// new samples are counted as dropped and not stored, so the index of a stored sample never
// changes.
import { ERROR_CLASSES } from '../analysis/error-class.ts';
import { InternTable, type SampleDetail, sampleDetail } from '../analysis/lane-columns.ts';
import { PROBE_KINDS } from '../analysis/sample.ts';
import { PROBER_MAX_SAMPLES } from '../api/sample-budget.ts';
import type { ProbeSample } from '../probe/types.ts';
import { writeKeyOf } from '../probe/write-key.ts';

/** The validation's per-prober sample budget is this same number (src/api/sample-budget.ts). */
export const DEFAULT_MAX_SAMPLES = PROBER_MAX_SAMPLES;
/** Samples per chunk: columns grow a chunk at a time, never copied (no doubling, no spare half). */
const CHUNK = 65_536;
/** Packed byte: class in bits 0-3, kind in bits 4-5, DERIVED_WRITE_KEY in bit 6. */
const KIND_SHIFT = 4;
/** The write key is writeKeyOf(endpoint, seq) and is rebuilt, not stored. */
const DERIVED_WRITE_KEY = 0x40;
if (ERROR_CLASSES.length > 16 || PROBE_KINDS.length > 4)
  throw new Error('sample-store: the packed byte holds 16 error classes and 4 probe kinds; widen it');

/** What a sample carries besides its numbers, with its endpoint; the same few values repeat. */
interface Detail extends SampleDetail {
  endpoint: string;
}

/** One chunk's columns: 25 bytes per sample. */
interface Chunk {
  seq: Uint32Array;
  startMs: Float64Array;
  endMs: Float64Array;
  packed: Uint8Array;
  detail: Uint32Array;
}

function newChunk(): Chunk {
  return {
    seq: new Uint32Array(CHUNK),
    startMs: new Float64Array(CHUNK),
    endMs: new Float64Array(CHUNK),
    packed: new Uint8Array(CHUNK),
    detail: new Uint32Array(CHUNK),
  };
}

export class SampleStore {
  readonly maxSamples: number;
  #size = 0;
  #dropped = 0;
  readonly #chunks: Chunk[] = [];
  readonly #details = new InternTable<Detail>();

  constructor(maxSamples = DEFAULT_MAX_SAMPLES) {
    if (!(Number.isInteger(maxSamples) && maxSamples > 0))
      throw new RangeError(`maxSamples must be a positive integer, got ${maxSamples}`);
    this.maxSamples = maxSamples;
  }

  /** Bytes held by the sample columns (allocated chunks), for tests and the memory bench. */
  get columnBytes(): number {
    return this.#chunks.length * CHUNK * 25;
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
    if (this.#size === this.#chunks.length * CHUNK) this.#chunks.push(newChunk());
    const i = this.#size++;
    const c = this.#chunks[i >>> 16]!;
    const j = i & (CHUNK - 1);
    const derived =
      sample.writeKey !== undefined && sample.writeKey === writeKeyOf(sample.endpoint, sample.seq);
    c.seq[j] = sample.seq;
    c.startMs[j] = sample.startMs;
    c.endMs[j] = sample.endMs;
    c.packed[j] = errorClass | (kind << KIND_SHIFT) | (derived ? DERIVED_WRITE_KEY : 0);
    c.detail[j] = this.#intern(sample, derived);
    return true;
  }

  /** The sample at `index` (0 .. size-1), as a new object. */
  get(index: number): ProbeSample {
    if (!(Number.isInteger(index) && index >= 0 && index < this.#size))
      throw new RangeError(`no sample at index ${index} (size ${this.#size})`);
    const c = this.#chunks[index >>> 16]!;
    const j = index & (CHUNK - 1);
    const d = this.#details.get(c.detail[j]!);
    const packed = c.packed[j]!;
    const sample: ProbeSample = {
      endpoint: d.endpoint,
      kind: PROBE_KINDS[(packed >>> KIND_SHIFT) & 3]!,
      seq: c.seq[j]!,
      startMs: c.startMs[j]!,
      endMs: c.endMs[j]!,
      class: ERROR_CLASSES[packed & 0x0f]!,
    };
    if (d.code !== undefined) sample.code = d.code;
    if (d.message !== undefined) sample.message = d.message;
    if (d.server) sample.server = { ...d.server };
    if (d.dnsAnswer) sample.dnsAnswer = [...d.dnsAnswer];
    if (d.connectAddr !== undefined) sample.connectAddr = d.connectAddr;
    if (packed & DERIVED_WRITE_KEY) sample.writeKey = writeKeyOf(d.endpoint, sample.seq);
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
    return this.#details.intern({ endpoint: sample.endpoint, ...sampleDetail(sample, derivedWriteKey) });
  }
}
