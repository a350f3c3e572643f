// The controller's work queue: one key at a time, a key added while it runs comes back once,
// and work that just happened (lane `now`) goes before background work (the start-up listing,
// delayed polls and retries), so a new experiment never waits behind hundreds of old ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReconcileResult } from '../../src/controller/workqueue.ts';
import { WorkQueue } from '../../src/controller/workqueue.ts';

/** A queue with one worker whose reconciles wait for `release()` while `hold` is set. */
function harness(result: (key: string) => ReconcileResult | undefined = () => undefined) {
  const order: string[] = [];
  let gate: { promise: Promise<void>; resolve: () => void } | undefined;
  const hold = () => {
    gate = Promise.withResolvers<void>() as { promise: Promise<void>; resolve: () => void };
  };
  const queue = new WorkQueue(
    async (key) => {
      order.push(key);
      if (gate) await gate.promise;
      return result(key);
    },
    { concurrency: 1, baseDelayMs: 10, maxDelayMs: 100 },
  );
  const release = () => {
    const g = gate;
    gate = undefined;
    g?.resolve();
  };
  return { queue, order, hold, release };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

describe('WorkQueue', () => {
  it('runs keys added now before background keys queued earlier, each in order', async () => {
    const { queue, order, hold, release } = harness();
    hold();
    queue.add('busy');
    await until(() => order.length === 1, 'the first reconcile');
    for (let i = 0; i < 5; i++) queue.add(`old-${i}`, 'background');
    queue.add('new-a');
    queue.add('new-b', 'now');
    assert.equal(queue.depth(), 7);
    release();
    await queue.idle();
    assert.deepEqual(order, ['busy', 'new-a', 'new-b', 'old-0', 'old-1', 'old-2', 'old-3', 'old-4']);
  });

  it('moves a waiting background key up when it is added now, and never queues a key twice', async () => {
    const { queue, order, hold, release } = harness();
    hold();
    queue.add('busy');
    await until(() => order.length === 1, 'the first reconcile');
    queue.add('a', 'background');
    queue.add('b', 'background');
    queue.add('b', 'background');
    queue.add('b');
    queue.add('b', 'background'); // stays in the now lane
    assert.equal(queue.depth(), 2);
    release();
    await queue.idle();
    assert.deepEqual(order, ['busy', 'b', 'a']);
  });

  it('processes a key added while it runs once more afterwards, in the lane it was added with', async () => {
    const { queue, order, hold, release } = harness();
    hold();
    queue.add('k');
    await until(() => order.length === 1, 'the first reconcile');
    queue.add('k', 'background');
    queue.add('k');
    queue.add('other', 'background');
    assert.equal(queue.depth(), 1, 'k is not queued while it runs');
    release();
    await queue.idle();
    assert.deepEqual(order, ['k', 'k', 'other']);
  });

  it('brings delayed keys back in the background lane', async () => {
    const { queue, order, hold, release } = harness();
    hold();
    queue.add('busy');
    await until(() => order.length === 1, 'the first reconcile');
    queue.addAfter('poll', 5);
    await until(() => queue.depth() === 1, 'the delayed key to come back');
    queue.add('event');
    release();
    await queue.idle();
    assert.deepEqual(order, ['busy', 'event', 'poll']);
  });

  it('calls again after requeueAfterMs, and retries a failing key with backoff', async () => {
    let failures = 2;
    const outcomes: string[] = [];
    const order: string[] = [];
    const queue = new WorkQueue(
      async (key) => {
        order.push(key);
        if (key === 'flaky' && failures-- > 0) throw new Error('API down');
        if (key === 'poll' && order.filter((k) => k === 'poll').length === 1) return { requeueAfterMs: 5 };
        return undefined;
      },
      {
        concurrency: 2,
        baseDelayMs: 5,
        maxDelayMs: 50,
        onResult: (key, outcome) => outcomes.push(`${key}:${outcome}`),
      },
    );
    queue.add('flaky');
    queue.add('poll');
    await until(() => outcomes.length === 5, 'five results');
    assert.deepEqual(
      outcomes.filter((o) => o.startsWith('flaky')),
      ['flaky:error', 'flaky:error', 'flaky:success'],
    );
    assert.deepEqual(
      outcomes.filter((o) => o.startsWith('poll')),
      ['poll:requeue', 'poll:success'],
    );
    queue.stop();
  });
});
