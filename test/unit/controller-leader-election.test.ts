// Leader election keeps leading through renewal errors shorter than the renew deadline, gives
// up after it, and stops at once when another identity holds the Lease.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Lease } from '@kubernetes/client-node';
import type { Kube } from '../../src/controller/kube.ts';
import { LeaderElector } from '../../src/controller/lease.ts';

/** An in-memory Lease store standing in for the coordination API; `failing` makes calls throw. */
function fakeKube() {
  const state: { lease?: V1Lease; failing: boolean; calls: number } = { failing: false, calls: 0 };
  const guard = () => {
    state.calls++;
    if (state.failing) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  };
  const coordination = {
    async readNamespacedLease() {
      guard();
      if (!state.lease) throw Object.assign(new Error('not found'), { code: 404 });
      return structuredClone(state.lease);
    },
    async createNamespacedLease({ body }: { body: V1Lease }) {
      guard();
      state.lease = structuredClone(body);
      return body;
    },
    async replaceNamespacedLease({ body }: { body: V1Lease }) {
      guard();
      state.lease = structuredClone(body);
      return body;
    },
    async deleteNamespacedLease() {
      guard();
      state.lease = undefined;
      return {};
    },
  };
  return { kube: { coordination } as unknown as Kube, state };
}

function elector(kube: Kube, events: string[], renewDeadlineMs: number) {
  return new LeaderElector(kube, {
    namespace: 'ns',
    name: 'leader',
    identity: 'me',
    leaseDurationSeconds: 15,
    renewIntervalMs: 20,
    renewDeadlineMs,
    onStartedLeading: () => events.push('started'),
    onStoppedLeading: () => events.push('stopped'),
  });
}

describe('LeaderElector', () => {
  it('keeps leading through renewal errors shorter than the renew deadline', async () => {
    const { kube, state } = fakeKube();
    const events: string[] = [];
    const e = elector(kube, events, 1000);
    e.start();
    await sleep(60);
    assert.deepEqual(events, ['started']);
    state.failing = true;
    const callsBefore = state.calls;
    await sleep(200);
    assert.ok(state.calls - callsBefore >= 5, `retried (${state.calls - callsBefore} calls)`);
    assert.equal(e.isLeader(), true, 'still the leader 200 ms into a 1 s deadline');
    state.failing = false;
    await sleep(60);
    assert.deepEqual(events, ['started']);
    await e.stop();
  });

  it('stops leading once renewals have failed for longer than the deadline', async () => {
    const { kube, state } = fakeKube();
    const events: string[] = [];
    const e = elector(kube, events, 150);
    e.start();
    await sleep(60);
    state.failing = true;
    await sleep(400);
    assert.deepEqual(events, ['started', 'stopped']);
    assert.equal(e.isLeader(), false);
    state.failing = false;
    await e.stop();
  });

  it('stops at once when another identity holds an unexpired Lease', async () => {
    const { kube, state } = fakeKube();
    const events: string[] = [];
    const e = elector(kube, events, 10_000);
    e.start();
    await sleep(60);
    state.lease!.spec!.holderIdentity = 'someone-else';
    state.lease!.spec!.renewTime = new Date() as never;
    await sleep(80);
    assert.deepEqual(events, ['started', 'stopped']);
    await e.stop();
  });
});

/**
 * A Lease store shared by several candidates, enforcing what the API server enforces: create
 * conflicts when the Lease exists, replace conflicts unless the body carries the current
 * resourceVersion. Each candidate gets its own client, which can be made to hang.
 */
function leaseStore() {
  const store: { lease?: V1Lease; version: number; writes: { by: string; holder?: string }[] } = {
    version: 0,
    writes: [],
  };
  const conflict = () => Object.assign(new Error('Conflict'), { code: 409 });
  const client = (who: string) => {
    const ctl = { hang: false, calls: 0 };
    const guard = async () => {
      ctl.calls++;
      if (ctl.hang) await new Promise(() => {}); // never answers
    };
    const coordination = {
      async readNamespacedLease() {
        await guard();
        if (!store.lease) throw Object.assign(new Error('not found'), { code: 404 });
        return structuredClone(store.lease);
      },
      async createNamespacedLease({ body }: { body: V1Lease }) {
        await guard();
        if (store.lease) throw conflict();
        store.lease = structuredClone(body);
        store.lease.metadata = { ...body.metadata, resourceVersion: String(++store.version) };
        store.writes.push({ by: who, holder: body.spec?.holderIdentity });
        return structuredClone(store.lease);
      },
      async replaceNamespacedLease({ body }: { body: V1Lease }) {
        await guard();
        if (!store.lease) throw Object.assign(new Error('not found'), { code: 404 });
        if (body.metadata?.resourceVersion !== store.lease.metadata?.resourceVersion) throw conflict();
        store.lease = structuredClone(body);
        store.lease.metadata = { ...body.metadata, resourceVersion: String(++store.version) };
        store.writes.push({ by: who, holder: body.spec?.holderIdentity });
        return structuredClone(store.lease);
      },
      async deleteNamespacedLease({ body }: { body?: { preconditions?: { resourceVersion?: string } } }) {
        await guard();
        const rv = body?.preconditions?.resourceVersion;
        if (rv && rv !== store.lease?.metadata?.resourceVersion) throw conflict();
        store.lease = undefined;
        return {};
      },
    };
    return { kube: { coordination } as unknown as Kube, ctl };
  };
  return { store, client };
}

/** A candidate whose wall clock is `skewMs` off; expiry uses the (shared) monotonic clock. */
function candidate(kube: Kube, identity: string, skewMs: number, log: string[]) {
  return new LeaderElector(kube, {
    namespace: 'ns',
    name: 'leader',
    identity,
    leaseDurationSeconds: 1,
    renewIntervalMs: 100,
    renewDeadlineMs: 600,
    callTimeoutMs: 250,
    wallNow: () => new Date(Date.now() + skewMs),
    onStartedLeading: () => {
      log.push(`${identity} started`);
      at[`${identity} started`] = performance.now();
    },
    onStoppedLeading: () => {
      log.push(`${identity} stopped`);
      at[`${identity} stopped`] = performance.now();
    },
  });
}

/** When each candidate started and stopped leading (monotonic ms). */
const at: Record<string, number> = {};

/** Samples isLeader() of both every 5 ms; counts the samples where both lead. */
async function watchBoth(a: LeaderElector, b: LeaderElector, ms: number) {
  const seen = { a: 0, b: 0, both: 0, samples: 0 };
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const la = a.isLeader();
    const lb = b.isLeader();
    seen.samples++;
    if (la) seen.a++;
    if (lb) seen.b++;
    if (la && lb) seen.both++;
    await sleep(5);
  }
  return seen;
}

describe('LeaderElector as client-go: expiry on the local monotonic clock', () => {
  for (const skewMs of [30_000, -30_000]) {
    it(`a candidate whose clock is ${skewMs > 0 ? '+' : ''}${skewMs / 1000} s off never takes a renewed Lease`, async () => {
      const { store, client } = leaseStore();
      const log: string[] = [];
      const a = candidate(client('a').kube, 'a', 0, log);
      a.start();
      await sleep(150);
      const b = candidate(client('b').kube, 'b', skewMs, log);
      b.start();
      // Five lease durations: with renewTime compared to B's skewed clock, B took over at once.
      const seen = await watchBoth(a, b, 5000);
      assert.equal(seen.both, 0, `two leaders in ${seen.both} of ${seen.samples} samples`);
      assert.equal(seen.b, 0, 'b never led');
      assert.deepEqual(log, ['a started']);
      assert.ok(store.writes.filter((w) => w.by === 'a').length >= 40, 'a renewed every 100 ms');
      assert.equal(store.writes.filter((w) => w.by === 'b').length, 0, 'b never wrote');
      await a.stop();
      await b.stop();
    });
  }

  it('a leader whose renew hangs stops leading at the renew deadline; the other takes over after the lease, never both', async () => {
    const { store, client } = leaseStore();
    const log: string[] = [];
    const ca = client('a');
    const a = candidate(ca.kube, 'a', 30_000, log);
    a.start();
    await sleep(150);
    const b = candidate(client('b').kube, 'b', -30_000, log);
    b.start();
    await sleep(300);
    const hungAt = performance.now();
    ca.ctl.hang = true;
    const seen = await watchBoth(a, b, 3000);
    assert.equal(seen.both, 0, `two leaders in ${seen.both} of ${seen.samples} samples`);
    assert.equal(a.isLeader(), false);
    assert.equal(b.isLeader(), true, 'b took over');
    assert.deepEqual(log, ['a started', 'a stopped', 'b started']);
    assert.equal(store.lease?.spec?.holderIdentity, 'b');
    assert.equal(store.lease?.spec?.leaseTransitions, 1);
    // a stopped within the deadline (600 ms) of its last renewal start (at most 100 ms before
    // the hang); b waited a full lease (1 s) after it last saw a's record change.
    const stoppedAfter = at['a stopped']! - hungAt;
    const takenAfter = at['b started']! - hungAt;
    console.log(
      `renew hung: a stopped leading ${Math.round(stoppedAfter)} ms later, b started ${Math.round(takenAfter)} ms later (gap ${Math.round(takenAfter - stoppedAfter)} ms)`,
    );
    assert.ok(stoppedAfter <= 600 + 20, 'a stopped by the renew deadline');
    assert.ok(takenAfter - stoppedAfter >= 300, 'no overlap, with a margin');
    await a.stop();
    await b.stop();
  });

  it('two candidates racing for a free Lease: one wins, the other gets a conflict', async () => {
    const { store, client } = leaseStore();
    const log: string[] = [];
    const a = candidate(client('a').kube, 'a', 30_000, log);
    const b = candidate(client('b').kube, 'b', -30_000, log);
    a.start();
    b.start();
    const seen = await watchBoth(a, b, 1500);
    assert.equal(seen.both, 0);
    assert.equal(log.length, 1, `exactly one started: ${log}`);
    assert.equal(new Set(store.writes.map((w) => w.holder)).size, 1, 'every write names one holder');
    await a.stop();
    await b.stop();
  });

  it('refuses options where a call could outlast the renew deadline, or the deadline the lease', () => {
    const base = {
      namespace: 'ns',
      name: 'x',
      identity: 'i',
      leaseDurationSeconds: 1,
      renewIntervalMs: 100,
      onStartedLeading() {},
      onStoppedLeading() {},
    };
    const { kube } = fakeKube();
    assert.throws(
      () => new LeaderElector(kube, { ...base, renewDeadlineMs: 1000 }),
      /below the lease duration/,
    );
    assert.throws(
      () => new LeaderElector(kube, { ...base, renewDeadlineMs: 500, callTimeoutMs: 500 }),
      /below the renew deadline/,
    );
  });
});
