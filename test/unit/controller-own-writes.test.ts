// The stale-cache rule of the experiment controller: after its own write, a reconcile acts on
// the object the write returned while the informer's cache still shows a version that write
// (or an earlier one of ours) replaced, and on the cache's object as soon as it shows any
// other version (ours arrived, or someone wrote after us).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OwnWrites } from '../../src/controller/kube.ts';

interface Obj {
  metadata: { uid?: string; resourceVersion?: string; namespace?: string; name?: string };
  status?: { phase?: string };
}

const version = (rv: string, phase: string, uid = 'u1', name = 'exp'): Obj => ({
  metadata: { uid, resourceVersion: rv, namespace: 'team', name },
  status: { phase },
});

describe('OwnWrites', () => {
  it('returns the cached object when this controller wrote nothing', () => {
    const writes = new OwnWrites<Obj>();
    const cached = version('10', 'Pending');
    assert.equal(writes.freshest(cached), cached);
  });

  it('returns our written object while the cache shows the version it replaced, then the cache', () => {
    const writes = new OwnWrites<Obj>();
    const seen = version('10', 'Pending');
    const written = version('11', 'Preflight');
    writes.wrote(seen, written);
    assert.equal(writes.freshest(seen), written, 'cache behind: ours');
    assert.equal(writes.freshest(version('10', 'Pending')).status?.phase, 'Preflight');
    const arrived = version('11', 'Preflight');
    assert.equal(writes.freshest(arrived), arrived, 'cache caught up: the cache');
    assert.equal(writes.size(), 0, 'nothing kept once the cache caught up');
  });

  it('prefers a version someone else wrote after us', () => {
    const writes = new OwnWrites<Obj>();
    writes.wrote(version('10', 'Pending'), version('11', 'Preflight'));
    const theirs = version('12', 'Preflight');
    assert.equal(writes.freshest(theirs), theirs);
    assert.equal(writes.size(), 0);
    // And an older cached version after that is the cache's again (nothing of ours is known).
    const old = version('10', 'Pending');
    assert.equal(writes.freshest(old), old);
  });

  it('keeps every version a chain of writes replaced (intent, then the call recorded)', () => {
    const writes = new OwnWrites<Obj>();
    const triggering = version('20', 'Triggering');
    const intent = version('21', 'Triggering');
    const observing = version('22', 'Observing');
    writes.wrote(triggering, intent);
    writes.wrote(intent, observing);
    // The cache may still show the version before the intent: acting on it would call again.
    assert.equal(writes.freshest(version('20', 'Triggering')), observing);
    assert.equal(writes.freshest(version('21', 'Triggering')), observing);
    assert.equal(writes.freshest(version('22', 'Observing')).metadata.resourceVersion, '22');
    assert.equal(writes.size(), 0);
  });

  it('keeps objects apart by uid, and forgets by uid or by name', () => {
    const writes = new OwnWrites<Obj>();
    writes.wrote(version('1', 'Pending', 'a', 'one'), version('2', 'Preflight', 'a', 'one'));
    writes.wrote(version('5', 'Pending', 'b', 'two'), version('6', 'Preflight', 'b', 'two'));
    assert.equal(writes.freshest(version('1', 'Pending', 'a', 'one')).metadata.resourceVersion, '2');
    assert.equal(writes.freshest(version('5', 'Pending', 'b', 'two')).metadata.resourceVersion, '6');
    // A new object under an old name (deleted and created again) is not confused with it.
    const reborn = version('1', 'Pending', 'c', 'one');
    assert.equal(writes.freshest(reborn), reborn);
    writes.forget('a');
    writes.forgetNamed('team', 'two');
    assert.equal(writes.size(), 0);
    const stale = version('1', 'Pending', 'a', 'one');
    assert.equal(writes.freshest(stale), stale);
  });

  it('ignores a write result without uid or resourceVersion', () => {
    const writes = new OwnWrites<Obj>();
    writes.wrote(version('1', 'Pending'), { metadata: { uid: 'u1' } });
    writes.wrote(version('1', 'Pending'), { metadata: { resourceVersion: '2' } });
    assert.equal(writes.size(), 0);
  });
});
