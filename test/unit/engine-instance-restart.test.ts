// The observed rule of operations that restart one instance in place (reboot-db-instance,
// modify-db-instance-class): no new writer is expected, so the failover rule must not fire;
// the instance leaving and returning to `available`, a restart event, or the probes seeing the
// same server go away and come back count instead; nothing of that is OperationNotObserved.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Sample } from '../../src/analysis/sample.ts';
import { INCONCLUSIVE_REASONS } from '../../src/analysis/verdict.ts';
import { validateExperimentManifest } from '../../src/api/validate-experiment.ts';
import type { FailoverExperimentObject } from '../../src/controller/experiment-reconciler.ts';
import { type TriggerPhaseHost, TriggerPhases } from '../../src/controller/trigger-phases.ts';
import { notObserved, RoleFlipWatcher, TriggerObserver } from '../../src/engine/trigger-protocol.ts';
import type { TargetState, TriggerEvent } from '../../src/trigger/types.ts';

const T0 = 1_000_000;
const MAX_S = 60;

function cluster(instanceStatus: string, writerId = 'lab-pg-1'): TargetState {
  return {
    status: 'available',
    writerId,
    members: [
      { id: 'lab-pg-1', isWriter: writerId === 'lab-pg-1' },
      { id: 'lab-pg-2', isWriter: writerId === 'lab-pg-2' },
    ],
    instance: { id: 'lab-pg-1', status: instanceStatus, instanceClass: 'db.r6g.large' },
  };
}

interface Script {
  /** Instance status by second after T0 (the last entry at or before the second applies). */
  status?: [number, string][];
  events?: TriggerEvent[];
  /** Second at which the probes report a restart (its time: restartAtS). */
  restartSeenAtS?: number;
  restartAtS?: number;
  roleFlipAtS?: number;
  recoveredAtS?: number;
  outcome?: 'Succeeded' | 'Unknown';
}

/** One pass a second, RDS asked when the observer wants, until done. */
function observe(script: Script) {
  const observer = new TriggerObserver({
    t0Ms: T0,
    writerBefore: 'lab-pg-1',
    outcome: script.outcome ?? 'Succeeded',
    maxDurationMs: MAX_S * 1000,
    operation: 'instance-restart',
  });
  for (let s = 0; ; s++) {
    const now = T0 + s * 1000;
    const status = (script.status ?? [[0, 'available']]).filter(([at]) => at <= s).at(-1)?.[1] ?? 'available';
    const look = observer.wantsLook(now)
      ? { state: cluster(status), events: (script.events ?? []).filter((e) => e.atMs <= now) }
      : undefined;
    const decision = observer.step({
      nowMs: now,
      look,
      roleFlipMs:
        script.roleFlipAtS !== undefined && s >= script.roleFlipAtS
          ? T0 + script.roleFlipAtS * 1000
          : undefined,
      restartMs:
        script.restartSeenAtS !== undefined && s >= script.restartSeenAtS
          ? T0 + (script.restartAtS ?? script.restartSeenAtS) * 1000
          : undefined,
      recovered: script.recoveredAtS !== undefined && s >= script.recoveredAtS,
    });
    if (decision.done) return { decision, endS: s, happened: observer.happened };
  }
}

describe('observing a reboot or class change (operation instance-restart)', () => {
  it('the instance rebooting at 1 s and available at 9 s: happened (rds-status at 1 s), done once recovered', () => {
    const r = observe({
      status: [
        [1, 'rebooting'],
        [9, 'available'],
      ],
      recoveredAtS: 15,
    });
    assert.equal(r.decision.done && r.decision.inconclusive, undefined);
    assert.deepEqual(r.happened, { atMs: T0 + 1000, by: 'rds-status' });
    assert.equal(r.endS, 15);
  });

  it('recovered probes do not end the run while RDS still shows the instance modifying', () => {
    const r = observe({
      status: [
        [1, 'modifying'],
        [25, 'available'],
      ],
      recoveredAtS: 12,
    });
    assert.equal(r.endS, 25, 'settles when available again');
    assert.equal(r.happened?.by, 'rds-status');
  });

  it('no status change seen, but the probes saw the same server restart: happened (probes-restart)', () => {
    const r = observe({ restartSeenAtS: 6, restartAtS: 2, recoveredAtS: 12 });
    assert.equal(r.decision.done && r.decision.inconclusive, undefined);
    assert.deepEqual(r.happened, { atMs: T0 + 2000, by: 'probes-restart' });
    assert.equal(r.endS, 12, 'RDS shows the instance available after the probes saw it back: settled');
  });

  it('a restart event counts (rds-events) and "DB instance restarted" settles it', () => {
    const ev = (atS: number, message: string): TriggerEvent => ({
      sourceIdentifier: 'lab-pg-1',
      sourceType: 'db-instance',
      message,
      categories: ['availability'],
      atMs: T0 + atS * 1000,
    });
    const r = observe({
      events: [ev(2, 'DB instance shutdown'), ev(5, 'DB instance restarted')],
      recoveredAtS: 10,
    });
    assert.deepEqual(r.happened, { atMs: T0 + 2000, by: 'rds-events' });
    assert.equal(r.endS, 10);
  });

  it('nothing seen within maxDuration: Inconclusive OperationNotObserved, not FailoverNotObserved', () => {
    const r = observe({ recoveredAtS: 5 });
    assert.equal(r.endS, MAX_S);
    assert.ok(r.decision.done);
    assert.equal(r.decision.inconclusive?.reason, 'OperationNotObserved');
    assert.match(
      r.decision.inconclusive!.message,
      /reboot or class change within observe\.maxDuration \(60 s\)/,
    );
  });

  it('a role flip is not evidence of a reboot (it would be a failover)', () => {
    const r = observe({ roleFlipAtS: 3, recoveredAtS: 5 });
    assert.equal(r.happened, undefined);
    assert.ok(r.decision.done);
    assert.equal(r.decision.inconclusive?.reason, 'OperationNotObserved');
  });

  it('an unknown outcome with nothing seen stays TriggerOutcomeUnknown', () => {
    const r = observe({ outcome: 'Unknown', recoveredAtS: 5 });
    assert.ok(r.decision.done);
    assert.equal(r.decision.inconclusive?.reason, 'TriggerOutcomeUnknown');
  });

  it('the failover rule is unchanged: an unchanged writer is FailoverNotObserved there', () => {
    assert.equal(notObserved('Succeeded', 'lab-pg-1', 60_000).reason, 'FailoverNotObserved');
    assert.equal(
      notObserved('Succeeded', 'lab-pg-1', 60_000, 'instance-restart').reason,
      'OperationNotObserved',
    );
    assert.ok(INCONCLUSIVE_REASONS.includes('OperationNotObserved'));
  });
});

describe('the controller: a run nobody saw', () => {
  const manifest = (trigger: Record<string, unknown>) => {
    const r = validateExperimentManifest({
      apiVersion: 'failwatch.io/v1alpha1',
      kind: 'FailoverExperiment',
      metadata: { name: 'x', namespace: 'db' },
      spec: {
        target: { kind: 'aurora-cluster', clusterIdentifier: 'lab-pg' },
        trigger: { type: 'aws-rds', ...trigger },
        observe: { maxDuration: '90s' },
        endpoints: [
          {
            name: 'cluster',
            dialect: 'aurora-postgresql',
            host: 'cluster.lab.failwatch.local',
            database: 'app',
            credentials: { secretRef: { name: 'pg' } },
          },
        ],
      },
    });
    assert.ok(r.ok);
    return r.value;
  };
  const obj = (observedTime?: string) =>
    ({
      metadata: { name: 'x', namespace: 'db', uid: 'u1' },
      status: {
        trigger: {
          outcome: 'Succeeded',
          writerBefore: 'lab-pg-1',
          ...(observedTime ? { observedTime } : {}),
        },
      },
    }) as unknown as FailoverExperimentObject;
  const phases = new TriggerPhases({} as TriggerPhaseHost);

  it('is OperationNotObserved for a reboot or a class change, FailoverNotObserved for a failover', () => {
    const reasons = (trigger: Record<string, unknown>) =>
      phases.notObservedFindings(obj(), manifest(trigger)).map((f) => f.reason);
    assert.deepEqual(reasons({ action: 'reboot-db-instance' }), ['OperationNotObserved']);
    assert.deepEqual(reasons({ action: 'modify-db-instance-class', instanceClass: 'db.r6g.xlarge' }), [
      'OperationNotObserved',
    ]);
    assert.deepEqual(reasons({ action: 'failover-db-cluster' }), ['FailoverNotObserved']);
    const [f] = phases.notObservedFindings(obj(), manifest({ action: 'reboot-db-instance' }));
    assert.match(f!.message, /\(90 s\)/);
  });

  it('is nothing once the operation was seen', () => {
    assert.deepEqual(
      phases.notObservedFindings(obj('2026-01-01T00:00:00.000Z'), manifest({ action: 'reboot-db-instance' })),
      [],
    );
  });

  it('is the finding recorded when observing ended: a seen switchover that RDS rolled back', () => {
    const o = obj('2026-01-01T00:00:00.000Z');
    (o.status as Record<string, any>).trigger.observedEnd = {
      reason: 'SwitchoverRolledBack',
      message: 'RDS rolled the Blue/Green switchover back (SWITCHOVER_FAILED)',
    };
    const bg = manifest({
      action: 'switchover-blue-green-deployment',
      blueGreenDeploymentIdentifier: 'bgd-1',
    });
    assert.deepEqual(
      phases.notObservedFindings(o, bg).map((f) => f.reason),
      ['SwitchoverRolledBack'],
    );
  });
});

describe('RoleFlipWatcher: the same server going away and coming back', () => {
  const w = (endpoint: string, startMs: number, cls: Sample['class'], server?: string): Sample => ({
    endpoint,
    kind: 'write',
    seq: 0,
    startMs,
    endMs: startMs + 20,
    class: cls,
    ...(server ? { server: { id: server, role: 'writer' as const } } : {}),
  });

  it('refused writes after T0 then a write acknowledged by the same server: restart at the first refusal', () => {
    const f = new RoleFlipWatcher(1000);
    for (const s of [
      w('cluster', 900, 'ok', 'lab-pg-1'),
      w('cluster', 1100, 'ok', 'lab-pg-1'),
      w('cluster', 1400, 'connection_refused'),
      w('cluster', 1300, 'admin_shutdown'),
      w('cluster', 1500, 'starting_up'),
    ])
      f.add(s);
    assert.equal(f.firstRestartMs(), undefined, 'not back yet');
    f.add(w('cluster', 2600, 'ok', 'lab-pg-1'));
    assert.equal(f.firstRestartMs(), 1300);
    assert.equal(f.firstFlipMs(), undefined, 'no role flip');
  });

  it('samples out of order give the same answer', () => {
    const f = new RoleFlipWatcher(1000);
    for (const s of [
      w('cluster', 2600, 'ok', 'lab-pg-1'),
      w('cluster', 1400, 'connection_lost'),
      w('cluster', 900, 'ok', 'lab-pg-1'),
    ])
      f.add(s);
    assert.equal(f.firstRestartMs(), 1400);
  });

  it('no restart: errors before T0, slow answers, or the writes coming back from another server', () => {
    const f = new RoleFlipWatcher(1000);
    for (const s of [
      w('a', 800, 'ok', 'lab-pg-1'),
      w('a', 900, 'connection_refused'),
      w('a', 1200, 'ok', 'lab-pg-1'),
      w('b', 900, 'ok', 'lab-pg-1'),
      w('b', 1200, 'slow', 'lab-pg-1'),
      w('b', 1300, 'too_many_connections'),
      w('b', 1400, 'ok', 'lab-pg-1'),
      w('c', 900, 'ok', 'lab-pg-1'),
      w('c', 1200, 'connection_lost'),
      w('c', 1400, 'ok', 'lab-pg-2'),
    ])
      f.add(s);
    assert.equal(f.firstRestartMs(), undefined);
    assert.equal(f.firstFlipMs(), 1420, 'c flipped to another server instead');
  });
});

describe('observing a Blue/Green switchover (operation switchover)', () => {
  /** One pass a second: the deployment's status by second, the writer's name never changing. */
  function observeSwitchover(
    statuses: [number, string][],
    opts: { roleFlipAtS?: number; recoveredAtS?: number },
  ) {
    const observer = new TriggerObserver({
      t0Ms: T0,
      writerBefore: 'lab-pg-1',
      outcome: 'Succeeded',
      maxDurationMs: MAX_S * 1000,
      operation: 'switchover',
    });
    for (let s = 0; ; s++) {
      const now = T0 + s * 1000;
      const status = statuses.filter(([at]) => at <= s).at(-1)?.[1] ?? 'AVAILABLE';
      const state: TargetState = {
        ...cluster('available'),
        blueGreen: {
          id: 'bgd-1',
          status,
          ...(status === 'SWITCHOVER_FAILED' ? { statusDetails: 'timed out' } : {}),
        },
      };
      const look = observer.wantsLook(now) ? { state, events: [] } : undefined;
      const decision = observer.step({
        nowMs: now,
        look,
        roleFlipMs:
          opts.roleFlipAtS !== undefined && s >= opts.roleFlipAtS ? T0 + opts.roleFlipAtS * 1000 : undefined,
        recovered: opts.recoveredAtS !== undefined && s >= opts.recoveredAtS,
      });
      if (decision.done) return { decision, endS: s, happened: observer.happened };
    }
  }

  it('SWITCHOVER_IN_PROGRESS at 2 s, COMPLETED at 9 s: happened (rds-status at 2 s), done once recovered and completed', () => {
    const r = observeSwitchover(
      [
        [2, 'SWITCHOVER_IN_PROGRESS'],
        [9, 'SWITCHOVER_COMPLETED'],
      ],
      { roleFlipAtS: 6, recoveredAtS: 7 },
    );
    assert.equal(r.decision.done && r.decision.inconclusive, undefined);
    assert.deepEqual(r.happened, { atMs: T0 + 2000, by: 'rds-status' });
    assert.equal(r.endS, 9, 'recovered probes wait for SWITCHOVER_COMPLETED');
  });

  it("the same writer name before and after (green takes blue's names) is no evidence either way", () => {
    const r = observeSwitchover([], {});
    assert.equal(r.endS, MAX_S);
    assert.ok(r.decision.done);
    assert.equal(r.decision.done && r.decision.inconclusive?.reason, 'OperationNotObserved');
    assert.match(
      (r.decision.done && r.decision.inconclusive?.message) || '',
      /Blue\/Green deployment never left AVAILABLE/,
    );
  });

  it('AVAILABLE again after SWITCHOVER_IN_PROGRESS is a rollback too', () => {
    const r = observeSwitchover(
      [
        [1, 'SWITCHOVER_IN_PROGRESS'],
        [4, 'AVAILABLE'],
      ],
      { recoveredAtS: 6 },
    );
    assert.equal(r.decision.done && r.decision.inconclusive?.reason, 'SwitchoverRolledBack');
    assert.match(
      (r.decision.done && r.decision.inconclusive?.message) || '',
      /AVAILABLE again, not switched over/,
    );
  });

  it('in progress until observe.maxDuration, no role flip: OperationNotCompleted; with the role flip: no finding', () => {
    const stuck = observeSwitchover([[1, 'SWITCHOVER_IN_PROGRESS']], { recoveredAtS: 5 });
    assert.equal(stuck.endS, MAX_S);
    assert.equal(stuck.decision.done && stuck.decision.inconclusive?.reason, 'OperationNotCompleted');
    assert.match(
      (stuck.decision.done && stuck.decision.inconclusive?.message) || '',
      /start but not complete \(last status SWITCHOVER_IN_PROGRESS\)/,
    );
    const flipped = observeSwitchover([[1, 'SWITCHOVER_IN_PROGRESS']], { recoveredAtS: 5, roleFlipAtS: 3 });
    assert.equal(flipped.decision.done && flipped.decision.inconclusive, undefined);
  });

  it("a rolled-back switchover (SWITCHOVER_FAILED) ends Inconclusive SwitchoverRolledBack, with RDS's details", () => {
    const r = observeSwitchover(
      [
        [1, 'SWITCHOVER_IN_PROGRESS'],
        [5, 'SWITCHOVER_FAILED'],
      ],
      { recoveredAtS: 8 },
    );
    assert.ok(r.decision.done);
    assert.equal(r.endS, 8);
    const finding = r.decision.done ? r.decision.inconclusive : undefined;
    assert.equal(finding?.reason, 'SwitchoverRolledBack');
    assert.match(finding?.message ?? '', /SWITCHOVER_FAILED: timed out/);
    assert.ok(INCONCLUSIVE_REASONS.includes('SwitchoverRolledBack'));
  });
});

describe('observing a Global Database switchover or failover (operation global)', () => {
  const EAST = 'arn:aws:rds:us-east-1:1:cluster:lab-pg';
  const WEST = 'arn:aws:rds:us-west-2:1:cluster:lab-pg-west';
  function observeGlobal(script: [number, string, string][], recoveredAtS: number) {
    const observer = new TriggerObserver({
      t0Ms: T0,
      writerBefore: 'lab-pg-1',
      outcome: 'Succeeded',
      maxDurationMs: MAX_S * 1000,
      operation: 'global',
    });
    for (let s = 0; ; s++) {
      const now = T0 + s * 1000;
      const [, status, writer] = script.filter(([at]) => at <= s).at(-1) ?? [0, 'available', EAST];
      const state: TargetState = {
        ...cluster('available'),
        arn: EAST,
        globalCluster: {
          id: 'lab-pg-global',
          status,
          writerArn: writer,
          members: [EAST, WEST],
          ...(status !== 'available' ? { failoverStatus: status } : {}),
        },
      };
      const look = observer.wantsLook(now) ? { state, events: [] } : undefined;
      const decision = observer.step({ nowMs: now, look, recovered: s >= recoveredAtS });
      if (decision.done) return { decision, endS: s, happened: observer.happened };
    }
  }

  it('switching-over at 1 s, the secondary the writer at 6 s: happened at 1 s, done when available with the new primary', () => {
    const r = observeGlobal(
      [
        [1, 'switching-over', EAST],
        [6, 'switching-over', WEST],
        [9, 'available', WEST],
      ],
      4,
    );
    assert.equal(r.decision.done && r.decision.inconclusive, undefined);
    assert.deepEqual(r.happened, { atMs: T0 + 1000, by: 'rds-status' });
    assert.equal(r.endS, 9);
  });

  it('switching-over, then available with the same primary twice: rolled back (SwitchoverRolledBack)', () => {
    const r = observeGlobal(
      [
        [1, 'switching-over', EAST],
        [5, 'available', EAST],
      ],
      3,
    );
    assert.equal(r.decision.done && r.decision.inconclusive?.reason, 'SwitchoverRolledBack');
    assert.match(
      (r.decision.done && r.decision.inconclusive?.message) || '',
      /available again with the same primary/,
    );
    assert.equal(r.endS, 6, 'two looks in a row');
  });

  it('nothing changes: OperationNotObserved at observe.maxDuration', () => {
    const r = observeGlobal([], 0);
    assert.equal(r.endS, MAX_S);
    assert.equal(r.decision.done && r.decision.inconclusive?.reason, 'OperationNotObserved');
    assert.match(
      (r.decision.done && r.decision.inconclusive?.message) || '',
      /global cluster never switching over/,
    );
  });
});
