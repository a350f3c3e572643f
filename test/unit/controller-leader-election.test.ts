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
