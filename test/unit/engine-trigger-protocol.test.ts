// The trigger protocol over a fake RDS on a fake clock: one call at most, an unknown outcome
// resolved by observation, transient RDS errors backed off without ending the run, refusals
// failing cleanly, and an eventually consistent Describe that shows the old state for 30 s.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Sample } from '../../src/analysis/sample.ts';
import {
  type CallResult,
  callOnce,
  eventsForResults,
  lookAtTarget,
  type ObserveDecision,
  RoleFlipWatcher,
  TriggerObserver,
} from '../../src/engine/trigger-protocol.ts';
import { classifyRdsError } from '../../src/trigger/aws-rds.ts';
import type { FailoverTrigger, FiredTrigger, TargetState, TriggerEvent } from '../../src/trigger/types.ts';
import { TriggerError } from '../../src/trigger/types.ts';

/** SDK-shaped errors, as @aws-sdk/client-rds throws them. */
const sdkError = (name: string, message: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { name, ...extra });
const THROTTLING = () => sdkError('Throttling', 'Rate exceeded', { $metadata: { httpStatusCode: 400 } });
const REFUSED_CONNECTION = () =>
  sdkError('Error', 'connect ECONNREFUSED 127.0.0.1:443', { code: 'ECONNREFUSED' });
const TIMEOUT = () => sdkError('TimeoutError', 'socket hang up', { code: 'ECONNRESET' });
const INVALID_STATE = () =>
  sdkError('InvalidDBClusterStateFault', 'DB cluster is not available', {
    $metadata: { httpStatusCode: 400 },
  });

interface FakeRdsScript {
  /** What FailoverDBCluster does: succeed, or throw this error (after applying it, or not). */
  fire?: { error?: () => Error; applied: boolean };
  /** Seconds after the call until Describe shows failing-over, and until available + new writer. */
  showsFailingOverAfterS?: number;
  settlesAfterS?: number;
  /** Describe fails with this error in [fromS, toS) seconds after T0. */
  describeErrors?: { fromS: number; toS: number; error: () => Error };
}

/** A fake RDS cluster on a fake clock; counts every call. */
function fakeRds(script: FakeRdsScript) {
  const clock = { nowMs: 1_000_000 };
  const calls = { fire: 0, state: 0, events: 0, stateErrors: 0 };
  let appliedAtMs: number | undefined;
  const since = () => (appliedAtMs === undefined ? -1 : (clock.nowMs - appliedAtMs) / 1000);
  const wrap = (what: string, fn: () => unknown) => {
    try {
      return fn();
    } catch (err) {
      throw classifyRdsError(err, what);
    }
  };
  const trigger: FailoverTrigger = {
    description: 'DB cluster lab-pg',
    preflight: async () => undefined,
    async fire(writerBefore?: string): Promise<FiredTrigger> {
      calls.fire++;
      const t0Ms = clock.nowMs;
      if (script.fire?.applied !== false) appliedAtMs = t0Ms;
      if (script.fire?.error)
        wrap('FailoverDBCluster lab-pg', () => {
          throw script.fire!.error!();
        });
      return { t0Ms, action: 'FailoverDBCluster lab-pg', writerBefore };
    },
    async state(): Promise<TargetState> {
      calls.state++;
      const s = since();
      const err = script.describeErrors;
      if (err && appliedAtMs !== undefined && s >= err.fromS && s < err.toS) {
        calls.stateErrors++;
        wrap('DescribeDBClusters lab-pg', () => {
          throw err.error();
        });
      }
      const failingOver = s >= (script.showsFailingOverAfterS ?? Number.POSITIVE_INFINITY);
      const settled = s >= (script.settlesAfterS ?? Number.POSITIVE_INFINITY);
      const writerId = settled ? 'lab-pg-2' : 'lab-pg-1';
      return {
        status: failingOver && !settled ? 'failing-over' : 'available',
        writerId,
        members: [
          { id: 'lab-pg-1', isWriter: writerId === 'lab-pg-1' },
          { id: 'lab-pg-2', isWriter: writerId === 'lab-pg-2' },
        ],
      };
    },
    async events(): Promise<TriggerEvent[]> {
      calls.events++;
      return [];
    },
  };
  return { trigger, clock, calls };
}

interface Probes {
  /** Seconds after T0 at which the probes see the role flip, and are recovered for recoveredFor. */
  roleFlipAtS?: number;
  recoveredAtS?: number;
}

/**
 * Runs the protocol the way the controller does: call once, then one observe pass a second
 * until done. Returns the call, the decision, when it ended (s after T0) and the passes.
 */
async function run(script: FakeRdsScript, probes: Probes, maxDurationS = 120) {
  const rds = fakeRds(script);
  const { trigger, clock, calls } = rds;
  const call: CallResult = await callOnce(trigger, 'lab-pg-1', () => clock.nowMs);
  if (call.kind === 'refused') return { call, calls };
  const t0Ms = call.fired.t0Ms;
  const observer = new TriggerObserver({
    t0Ms,
    writerBefore: 'lab-pg-1',
    outcome: call.outcome,
    maxDurationMs: maxDurationS * 1000,
  });
  const looks: number[] = [];
  for (;;) {
    const now = clock.nowMs;
    const s = (now - t0Ms) / 1000;
    let look: Parameters<TriggerObserver['step']>[0]['look'];
    if (observer.wantsLook(now)) {
      looks.push(s);
      look = await lookAtTarget(trigger, t0Ms, 'lab-pg-1', now).catch((err: TriggerError) => ({
        error: err,
      }));
    }
    const decision: ObserveDecision = observer.step({
      nowMs: now,
      look,
      roleFlipMs:
        probes.roleFlipAtS !== undefined && s >= probes.roleFlipAtS
          ? t0Ms + probes.roleFlipAtS * 1000
          : undefined,
      recovered: probes.recoveredAtS !== undefined && s >= probes.recoveredAtS,
    });
    if (decision.done) return { call, calls, decision, endS: s, looks, observer };
    clock.nowMs += 1000;
  }
}

describe('trigger protocol: the call', () => {
  it('a refusal (InvalidDBClusterStateFault) fails cleanly after 1 call, nothing observed', async () => {
    const r = await run({ fire: { error: INVALID_STATE, applied: false } }, {});
    assert.equal(r.calls.fire, 1);
    assert.equal(r.call.kind, 'refused');
    assert.equal(r.call.kind === 'refused' && r.call.reason, 'InvalidState');
    assert.equal(r.calls.state, 0, 'no observation of a refused call');
  });

  it('a throttled call is a refusal (RDS did not run it): Throttled after 1 call, never a retry', async () => {
    const r = await run({ fire: { error: THROTTLING, applied: false } }, {});
    assert.deepEqual(
      { kind: r.call.kind, reason: r.call.kind === 'refused' && r.call.reason, fire: r.calls.fire },
      { kind: 'refused', reason: 'Throttled', fire: 1 },
    );
  });

  it('an unreachable endpoint (connection refused) is a refusal: RdsUnreachable after 1 call', async () => {
    const r = await run({ fire: { error: REFUSED_CONNECTION, applied: false } }, {});
    assert.equal(r.call.kind === 'refused' && r.call.reason, 'RdsUnreachable');
    assert.equal(r.calls.fire, 1);
  });

  it('outcome unknown (the call timed out but RDS ran it): 1 call, observed via failing-over at 3 s, done at 12 s', async () => {
    const r = await run(
      { fire: { error: TIMEOUT, applied: true }, showsFailingOverAfterS: 3, settlesAfterS: 12 },
      { roleFlipAtS: 6, recoveredAtS: 9 },
    );
    assert.equal(r.call.kind === 'called' && r.call.outcome, 'Unknown');
    assert.equal(r.calls.fire, 1, 'never a second call');
    assert.deepEqual(r.observer!.happened, { atMs: 1_000_000 + 3000, by: 'rds-status' });
    assert.equal(r.endS, 12, 'ends when RDS settled and the probes recovered');
    assert.equal(r.decision!.done && r.decision!.inconclusive, undefined);
  });

  it('outcome unknown and nothing ever happens: 1 call, Inconclusive TriggerOutcomeUnknown at maxDuration', async () => {
    const r = await run({ fire: { error: TIMEOUT, applied: false } }, { recoveredAtS: 0 }, 60);
    assert.equal(r.calls.fire, 1);
    assert.equal(r.endS, 60);
    assert.equal(r.decision!.done && r.decision!.inconclusive?.reason, 'TriggerOutcomeUnknown');
    assert.equal(r.looks!.length, 61, 'RDS asked once a second for 60 s');
  });

  it('an unknown outcome seen only by the probes (RDS unreachable throughout) counts as happened', async () => {
    const r = await run(
      {
        fire: { error: TIMEOUT, applied: true },
        describeErrors: { fromS: 0, toS: 1000, error: REFUSED_CONNECTION },
      },
      { roleFlipAtS: 5, recoveredAtS: 9 },
    );
    assert.equal(r.calls.fire, 1);
    assert.equal(r.observer!.happened?.by, 'probes-role-flip');
    assert.equal(r.endS, 9, 'RDS cannot be asked: the probes end the run once recovered');
    assert.equal(r.decision!.done && r.decision!.inconclusive, undefined);
  });
});

describe('trigger protocol: observing', () => {
  it('a succeeded call with no failover anywhere: Inconclusive FailoverNotObserved at maxDuration', async () => {
    const r = await run({ fire: { applied: false } }, { recoveredAtS: 0 }, 30);
    assert.equal(r.call.kind === 'called' && r.call.outcome, 'Succeeded');
    assert.equal(r.endS, 30);
    assert.equal(r.decision!.done && r.decision!.inconclusive?.reason, 'FailoverNotObserved');
    assert.match(
      (r.decision!.done && r.decision!.inconclusive?.message) || '',
      /writer lab-pg-1 unchanged.*no role flip.*30 s/,
    );
  });

  it('Describe shows the old state for 30 s after a successful call: keeps observing, done at 40 s', async () => {
    // The probes flip at 5 s and recover at 9 s; RDS shows failing-over only from 30 s, and
    // available with the new writer from 40 s. The run waits for RDS: it can be asked.
    const r = await run(
      { fire: { applied: true }, showsFailingOverAfterS: 30, settlesAfterS: 40 },
      { roleFlipAtS: 5, recoveredAtS: 9 },
    );
    assert.equal(r.calls.fire, 1);
    assert.deepEqual(r.observer!.happened, { atMs: 1_000_000 + 5000, by: 'probes-role-flip' });
    assert.equal(r.endS, 40);
    assert.equal(r.decision!.done && r.decision!.inconclusive, undefined);
  });

  it('Describe stale for 30 s and no probe flip: the failover counts from RDS at 30 s, not Inconclusive', async () => {
    const r = await run(
      { fire: { applied: true }, showsFailingOverAfterS: 30, settlesAfterS: 40 },
      { recoveredAtS: 0 },
    );
    assert.deepEqual(r.observer!.happened, { atMs: 1_000_000 + 30_000, by: 'rds-status' });
    assert.equal(r.endS, 40);
  });

  it('throttled Describe for 20 s: backs off (1, 2, 4, 8 s), the probes end the run at 8 s, 1 call in all', async () => {
    const r = await run(
      {
        fire: { applied: true },
        showsFailingOverAfterS: 2,
        settlesAfterS: 12,
        describeErrors: { fromS: 1, toS: 21, error: THROTTLING },
      },
      { roleFlipAtS: 4, recoveredAtS: 8 },
    );
    assert.equal(r.calls.fire, 1);
    // Looks at 0 (ok), then errors at 1, 2, 4, 8 s (waiting 1, 2, 4, 8 s).
    assert.deepEqual(r.looks, [0, 1, 2, 4, 8]);
    assert.equal(r.calls.stateErrors, 4);
    assert.equal(r.observer!.rdsErrorsTotal, 4);
    assert.equal(r.observer!.lastRdsError?.reason, 'Throttled');
    // While RDS throttles it cannot be asked: the probes' flip and recovery end the run at 8 s.
    assert.equal(r.endS, 8);
    assert.equal(r.decision!.done && r.decision!.inconclusive, undefined);
  });

  it('throttled Describe with the probes still failing: waits out the errors, done once RDS answers with the new writer', async () => {
    const r = await run(
      {
        fire: { applied: true },
        showsFailingOverAfterS: 2,
        settlesAfterS: 12,
        describeErrors: { fromS: 1, toS: 21, error: THROTTLING },
      },
      { recoveredAtS: 25 },
    );
    assert.equal(r.calls.fire, 1);
    // Errors at 1, 2, 4, 8, 16 s; waits 1, 2, 4, 8, then 10 (the cap); the answer at 26 s shows
    // the new writer. Recovered at 25 s, but nothing had shown the failover yet: no end before.
    assert.deepEqual(r.looks, [0, 1, 2, 4, 8, 16, 26]);
    assert.deepEqual(r.observer!.happened, { atMs: 1_000_000 + 26_000, by: 'rds-writer' });
    assert.equal(r.endS, 26);
    assert.equal(r.decision!.done && r.decision!.inconclusive, undefined);
  });

  it('an RDS 5xx is transient and a timeout on Describe too: backoff capped at maxBackoffMs', () => {
    const o = new TriggerObserver({
      t0Ms: 0,
      outcome: 'Succeeded',
      maxDurationMs: 600_000,
      firstBackoffMs: 1000,
      maxBackoffMs: 10_000,
    });
    const e5xx = classifyRdsError(
      sdkError('InternalFailure', 'oops', { $metadata: { httpStatusCode: 503 } }),
      'x',
    );
    assert.equal(e5xx.reason, 'RdsServerError');
    assert.equal(e5xx.transient, true);
    assert.equal(classifyRdsError(TIMEOUT(), 'x').transient, true);
    let now = 0;
    const looks: number[] = [];
    while (now < 60_000) {
      if (o.wantsLook(now)) {
        looks.push(now / 1000);
        assert.deepEqual(o.step({ nowMs: now, look: { error: e5xx }, recovered: true }), { done: false });
      }
      now += 1000;
    }
    assert.deepEqual(looks, [0, 1, 3, 7, 15, 25, 35, 45, 55]);
  });
});

describe('trigger protocol: error classes', () => {
  it('says which errors may have run the call', () => {
    const cases: [Error, string, 'no' | 'maybe', boolean][] = [
      [INVALID_STATE(), 'InvalidState', 'no', false],
      [THROTTLING(), 'Throttled', 'no', true],
      [REFUSED_CONNECTION(), 'RdsUnreachable', 'no', true],
      [TIMEOUT(), 'RdsUnreachable', 'maybe', true],
      [
        sdkError('InternalFailure', 'x', { $metadata: { httpStatusCode: 500 } }),
        'RdsServerError',
        'maybe',
        true,
      ],
      [sdkError('Weird', 'x', { $metadata: { httpStatusCode: 400 } }), 'RdsError', 'no', false],
    ];
    for (const [err, reason, may, transient] of cases) {
      const e = classifyRdsError(err, 'call');
      assert.deepEqual([e.reason, e.mayHaveHappened, e.transient], [reason, may, transient], err.name);
    }
  });
});

describe('RoleFlipWatcher', () => {
  const w = (endpoint: string, endMs: number, server: string, cls: Sample['class'] = 'ok'): Sample => ({
    endpoint,
    kind: 'write',
    seq: 0,
    startMs: endMs - 5,
    endMs,
    class: cls,
    server: { id: server, role: 'writer' },
  });

  it('finds the first write acknowledged by another server after T0, per endpoint', () => {
    const f = new RoleFlipWatcher(1000);
    for (const s of [
      w('cluster', 900, 'a'),
      w('proxy', 950, 'a'),
      w('cluster', 1100, 'a'),
      w('cluster', 1500, 'b', 'connection_lost'),
      w('proxy', 1700, 'b'),
      w('cluster', 1600, 'b'),
    ])
      f.add(s);
    assert.equal(f.firstFlipMs(), 1600);
  });

  it('sees no flip without a server before T0', () => {
    const f = new RoleFlipWatcher(1000);
    f.add(w('cluster', 1600, 'b'));
    assert.equal(f.firstFlipMs(), undefined);
  });
});

it('TriggerError defaults to a refusal', () => {
  assert.equal(new TriggerError('InvalidState', 'x').mayHaveHappened, 'no');
});

describe('eventsForResults', () => {
  const event: TriggerEvent = {
    sourceIdentifier: 'lab-pg',
    sourceType: 'db-cluster',
    message: 'Completed failover',
    categories: [],
    atMs: 1,
  };
  it('retries throttling with backoff (1 s, 2 s) and returns the events on the 3rd call', async () => {
    let calls = 0;
    const waits: number[] = [];
    const events = await eventsForResults(
      {
        events: async () => {
          if (++calls < 3) throw classifyRdsError(THROTTLING(), 'DescribeEvents');
          return [event];
        },
      },
      0,
      1,
      30_000,
      async (ms) => waits.push(ms),
    );
    assert.deepEqual([events, calls, waits], [[event], 3, [1000, 2000]]);
  });

  it('gives up at once on an error that is not transient', async () => {
    let calls = 0;
    const events = await eventsForResults(
      {
        events: async () => {
          calls++;
          throw classifyRdsError(sdkError('AccessDenied', 'no', { $metadata: { httpStatusCode: 403 } }), 'x');
        },
      },
      0,
      1,
      30_000,
      async () => {},
    );
    assert.deepEqual([events, calls], [[], 1]);
  });
});

it('asks RDS at most once a second even when the observe loop runs every 100 ms', () => {
  const o = new TriggerObserver({ t0Ms: 0, writerBefore: 'a', outcome: 'Succeeded', maxDurationMs: 60_000 });
  const state: TargetState = { status: 'available', writerId: 'a', members: [] };
  let looks = 0;
  for (let now = 0; now < 10_000; now += 100)
    if (o.wantsLook(now)) {
      looks++;
      o.step({ nowMs: now, look: { state, events: [] }, recovered: false });
    } else o.step({ nowMs: now, recovered: false });
  assert.equal(looks, 10);
});
