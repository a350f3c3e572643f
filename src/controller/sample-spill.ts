// The samples the controller pulled for one experiment, on local disk in compact records (27
// bytes a sample; repeated details interned in memory), one file per prober pod. The controller
// keeps no sample objects: the observe loop works from running per-lane state
// (prober-samples.ts), and the final analysis and report read one endpoint's lanes at a time
// from here (analyze-streamed.ts), so memory does not grow with the run's length. The pods
// hold every sample too; this copy keeps what a lost pod had sent. A new controller process
// starts the directory over and pulls again from 0.
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { CLASS_INDEX, DetailTable, LaneColumns } from '../analysis/lane-columns.ts';
import { PROBE_KINDS, type ProbeKind } from '../analysis/sample.ts';
import type { ProbeSample } from '../probe/types.ts';

/** f64 startMs, f64 endMs, u32 seq, u32 detail, u8 kind, u8 class, u8 flags (little-endian). */
export const SPILL_RECORD_BYTES = 27;
const READ_RECORDS = 40_000;
const KIND_INDEX = new Map<ProbeKind, number>(PROBE_KINDS.map((kind, i) => [kind, i]));

interface SpillFile {
  endpoint: string;
  path: string;
  records: number;
  /** Records per probe kind (PROBE_KINDS order), to size the lanes read back. */
  byKind: number[];
}

export class SampleSpill {
  readonly dir: string;
  readonly details = new DetailTable();
  /** By pod uid, in the order the pods were first pulled. */
  readonly #files = new Map<string, SpillFile>();
  #records = 0;

  /** Starts `dir` over (what an earlier process left there is pulled again). */
  constructor(dir: string) {
    this.dir = dir;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }

  /** Samples held. */
  get samples(): number {
    return this.#records;
  }

  /** Bytes on disk. */
  get bytes(): number {
    return this.#records * SPILL_RECORD_BYTES;
  }

  append(podUid: string, endpoint: string, samples: readonly ProbeSample[]): void {
    if (samples.length === 0) return;
    let file = this.#files.get(podUid);
    if (!file) {
      file = {
        endpoint,
        path: join(this.dir, `${podUid}.bin`),
        records: 0,
        byKind: PROBE_KINDS.map(() => 0),
      };
      this.#files.set(podUid, file);
    }
    const buffer = Buffer.allocUnsafe(samples.length * SPILL_RECORD_BYTES);
    let at = 0;
    for (const sample of samples) {
      const kind = KIND_INDEX.get(sample.kind);
      const errorClass = CLASS_INDEX.get(sample.class);
      if (kind === undefined || errorClass === undefined)
        throw new TypeError(`sample with unknown kind or class: ${sample.kind}/${sample.class}`);
      const { detail, flags } = this.details.internSample(sample);
      buffer.writeDoubleLE(sample.startMs, at);
      buffer.writeDoubleLE(sample.endMs, at + 8);
      buffer.writeUInt32LE(sample.seq >>> 0, at + 16);
      buffer.writeUInt32LE(detail, at + 20);
      buffer.writeUInt8(kind, at + 24);
      file.byKind[kind]!++;
      buffer.writeUInt8(errorClass, at + 25);
      buffer.writeUInt8(flags, at + 26);
      at += SPILL_RECORD_BYTES;
    }
    appendFileSync(file.path, buffer);
    file.records += samples.length;
    this.#records += samples.length;
  }

  /** The lanes of one endpoint (all of its pods, in pull order), read back from disk. */
  async lanesOf(endpoint: string): Promise<Map<ProbeKind, LaneColumns>> {
    const lanes = new Map<ProbeKind, LaneColumns>();
    const files = [...this.#files.values()].filter((file) => file.endpoint === endpoint);
    // Columns of the exact size: a long run's lanes are the controller's largest allocation.
    const sizeOf = (kind: number) => files.reduce((sum, file) => sum + file.byKind[kind]!, 0);
    for (const file of files) {
      await readRecords(file, (buffer, at) => {
        const kind = PROBE_KINDS[buffer.readUInt8(at + 24)]!;
        let lane = lanes.get(kind);
        if (!lane) {
          lane = new LaneColumns(endpoint, kind, this.details, sizeOf(PROBE_KINDS.indexOf(kind)));
          lanes.set(kind, lane);
        }
        lane.push(
          buffer.readDoubleLE(at),
          buffer.readDoubleLE(at + 8),
          buffer.readUInt32LE(at + 16),
          buffer.readUInt8(at + 25),
          buffer.readUInt8(at + 26),
          buffer.readUInt32LE(at + 20),
        );
      });
    }
    return lanes;
  }

  /** Every sample held, one at a time (to replay them into running state), in pull order per pod. */
  async forEach(visit: (sample: ProbeSample) => void): Promise<void> {
    for (const endpoint of new Set([...this.#files.values()].map((file) => file.endpoint))) {
      for (const lane of (await this.lanesOf(endpoint)).values())
        for (let i = 0; i < lane.size; i++) visit(sampleAt(lane, i));
    }
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
    this.#files.clear();
  }
}

/** A lane's sample as an object (for the running state; the analysis reads the columns). */
export function sampleAt(lane: LaneColumns, i: number): ProbeSample {
  const detail = lane.detailOf(i);
  const sample: ProbeSample = {
    endpoint: lane.endpoint,
    kind: lane.kind,
    seq: lane.seq[i]!,
    startMs: lane.startMs[i]!,
    endMs: lane.endMs[i]!,
    class: lane.classOf(i),
  };
  if (detail.code !== undefined) sample.code = detail.code;
  if (detail.message !== undefined) sample.message = detail.message;
  if (detail.server) sample.server = detail.server;
  if (detail.dnsAnswer) sample.dnsAnswer = detail.dnsAnswer;
  if (detail.connectAddr !== undefined) sample.connectAddr = detail.connectAddr;
  const writeKey = lane.writeKeyOf(i);
  if (writeKey !== undefined) sample.writeKey = writeKey;
  return sample;
}

async function readRecords(file: SpillFile, visit: (buffer: Buffer, at: number) => void): Promise<void> {
  const handle = await open(file.path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(READ_RECORDS * SPILL_RECORD_BYTES);
    let position = 0;
    const total = file.records * SPILL_RECORD_BYTES;
    while (position < total) {
      const length = Math.min(buffer.length, total - position);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      if (bytesRead < length) throw new Error(`${file.path}: short read (${bytesRead} of ${length} bytes)`);
      for (let at = 0; at < length; at += SPILL_RECORD_BYTES) visit(buffer, at);
      position += length;
    }
  } finally {
    await handle.close();
  }
}
