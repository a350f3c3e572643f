import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ProbeSample } from '../../src/probe/types.ts';
import { SampleStore } from '../../src/server/sample-store.ts';

function sample(seq: number, extra: Partial<ProbeSample> = {}): ProbeSample {
  return {
    endpoint: 'cluster',
    kind: 'write',
    seq,
    startMs: 1_790_000_000_000.25 + seq * 100,
    endMs: 1_790_000_000_003.5 + seq * 100,
    class: 'ok',
    server: { id: 'pg-1', addr: '127.0.74.11', role: 'writer' },
    connectAddr: '127.0.74.11',
    writeKey: `cluster#${seq}`,
    ...extra,
  };
}

describe('SampleStore', () => {
  it('gives back exactly what was stored, in order', () => {
    const store = new SampleStore(100);
    const samples: ProbeSample[] = [
      sample(0),
      sample(1, {
        class: 'read_only',
        code: '25006',
        message: 'cannot execute INSERT in a read-only transaction',
      }),
      sample(2, {
        class: 'connection_refused',
        code: 'ECONNREFUSED',
        server: undefined,
        connectAddr: undefined,
      }),
      { endpoint: 'cluster', kind: 'read', seq: 0, startMs: 1.5, endMs: 2.75, class: 'slow' },
      {
        endpoint: 'cluster',
        kind: 'dns',
        seq: 7,
        startMs: 10,
        endMs: 11,
        class: 'ok',
        dnsAnswer: ['lab-pg.cluster.local', 'pg-2.lab.local', '127.0.74.12'],
      },
      sample(3, { writeKey: 'some-other-key' }),
      sample(4, { server: { id: 'pg-2', role: 'reader' } }),
    ];
    for (const s of samples) {
      for (const key of Object.keys(s) as (keyof ProbeSample)[]) if (s[key] === undefined) delete s[key];
      assert.equal(store.add(structuredClone(s)), true);
    }
    assert.equal(store.size, samples.length);
    assert.deepEqual(store.slice(0, 100), samples);
    assert.deepEqual(store.get(4), samples[4]);
  });

  it('pages by index and never returns past the end', () => {
    const store = new SampleStore(50_000);
    for (let i = 0; i < 12_345; i++) store.add(sample(i));
    assert.deepEqual(
      store.slice(5000, 5000).map((s) => s.seq),
      Array.from({ length: 5000 }, (_, i) => 5000 + i),
    );
    assert.equal(store.slice(12_000, 5000).length, 345);
    assert.equal(store.slice(12_345, 5000).length, 0);
    assert.equal(store.get(12_344).writeKey, 'cluster#12344');
    assert.throws(() => store.get(12_345), RangeError);
  });

  it('when full, keeps the first samples and counts the rest as dropped', () => {
    const store = new SampleStore(5000);
    let kept = 0;
    for (let i = 0; i < 7000; i++) if (store.add(sample(i))) kept++;
    assert.equal(kept, 5000);
    assert.equal(store.size, 5000);
    assert.equal(store.dropped, 2000);
    assert.equal(store.get(4999).seq, 4999);
  });

  it('holds 300,000 samples in under 30 bytes each, across chunk boundaries', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage();
    const store = new SampleStore(300_000);
    for (let i = 0; i < 300_000; i++)
      store.add(
        sample(i, {
          kind: i % 2 ? 'write' : 'read',
          server: { id: i % 3 ? 'pg-1' : 'pg-2', addr: '127.0.74.11', role: 'writer' },
        }),
      );
    gc();
    const after = process.memoryUsage();
    const bytes = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    assert.equal(store.size, 300_000);
    for (const i of [65_535, 65_536, 131_072, 299_999]) {
      const s = store.get(i);
      assert.deepEqual(
        [s.seq, s.kind, s.writeKey, s.server?.id],
        [i, i % 2 ? 'write' : 'read', `cluster#${i}`, i % 3 ? 'pg-1' : 'pg-2'],
      );
    }
    assert.ok(bytes / 300_000 < 30, `${(bytes / 300_000).toFixed(1)} bytes per sample`);
  });

  it('refuses samples it cannot store faithfully', () => {
    const store = new SampleStore(10);
    assert.throws(() => store.add(sample(-1)), RangeError);
    assert.throws(() => store.add(sample(1, { class: 'weird' as never })), TypeError);
    assert.throws(() => new SampleStore(0), RangeError);
  });
});
