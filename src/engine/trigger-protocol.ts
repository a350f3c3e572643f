// The trigger protocol: one failover call per run at most, and what it did, found out by
// observation. Shared by the controller and `failwatch run`.
//
// - The intent is recorded (durably, by the caller) before the call; a restart that finds an
//   intent without a recorded result never calls again: it observes (outcome Unknown).
// - The call's error decides: RDS refused it (4xx, throttling, connection never made) ->
//   the run fails cleanly, nothing happened; anything else (timeout, reset, 5xx) -> outcome
//   Unknown, observe.
// - The failover counts as happened when RDS shows it (writer changed, failing-over seen, a
//   failover event) or the probes see the role flip.
// - Transient RDS errors while observing are retried with backoff and never end the run; only
//   observe.maxDuration does, or recovery once the failover happened and RDS has settled (or
//   cannot be asked).
// - A call that succeeded (or whose outcome is unknown) with no failover seen by
//   observe.maxDuration gives an Inconclusive verdict: FailoverNotObserved / TriggerOutcomeUnknown.
// - A reboot or instance class change (operation `instance-restart`) makes no new writer: it
//   counts as happened when RDS shows the instance leave `available` (rebooting, modifying) or
//   a restart/modification event, or the probes see the same server go away and come back;
//   settled when the instance is `available` again after that. Unseen: OperationNotObserved.
// - A Blue/Green switchover (operation `switchover`) counts as happened when RDS shows the
//   deployment SWITCHOVER_IN_PROGRESS (or past it), a switchover event, or the probes see the
//   role flip to green; settled at SWITCHOVER_COMPLETED or SWITCHOVER_FAILED. The writer's name
//   proves nothing: green takes blue's names. A rolled-back switchover is Inconclusive
//   (SwitchoverRolledBack); unseen: OperationNotObserved.
// - A Global Database switchover or failover (operation `global`) counts as happened when RDS
//   shows the global cluster switching-over / failing-over, a global switchover or failover
//   event, another member as the writer, or the probes' role flip; settled when it is
//   `available` with another primary than the target. Unseen: OperationNotObserved.

import type { ErrorClass } from '../analysis/error-class.ts';
import { isAcknowledgedClass } from '../analysis/error-class.ts';
import type { Sample } from '../analysis/sample.ts';
import type { InconclusiveFinding } from '../analysis/verdict.ts';
import type { TRIGGER_OBSERVED_BY } from '../api/experiment-status.ts';
import type {
  FailoverTrigger,
  FiredTrigger,
  TargetState,
  TriggerEvent,
  TriggerFailureReason,
} from '../trigger/types.ts';
import { TriggerError } from '../trigger/types.ts';

export type CallOutcome = 'Succeeded' | 'Unknown';

/** What the one call did, as far as the caller can tell. */
export type CallResult =
  | { kind: 'called'; outcome: 'Succeeded'; fired: FiredTrigger }
  | { kind: 'called'; outcome: 'Unknown'; fired: FiredTrigger; message: string }
  | { kind: 'refused'; reason: TriggerFailureReason; message: string };

/**
 * Makes the failover call once. `t0Ms` is taken before the call. Never throws for the call's
 * own error: a refusal and an unknown outcome are results.
 */
export async function callOnce(
  trigger: Pick<FailoverTrigger, 'fire' | 'description'>,
  writerBefore: string | undefined,
  now: () => number = Date.now,
): Promise<CallResult> {
  const t0Ms = now();
  try {
    const fired = await trigger.fire(writerBefore);
    return { kind: 'called', outcome: 'Succeeded', fired };
  } catch (err) {
    const e = err instanceof TriggerError ? err : undefined;
    if (e && e.mayHaveHappened === 'no') return { kind: 'refused', reason: e.reason, message: e.message };
    return {
      kind: 'called',
      outcome: 'Unknown',
      fired: { t0Ms, action: `failover of ${trigger.description} (outcome unknown)`, writerBefore },
      message: (err as Error).message,
    };
  }
}

/** What one look at the target showed: its state and the provider events since T0. */
export interface TargetLook {
  state?: TargetState;
  events: TriggerEvent[];
}

/** RDS event messages that show a failover or forced reboot started or happened. */
const FAILOVER_EVENT = /failover|Multi-AZ instance failover|DB instance restarted|reboot/i;
/** ... and those that show it finished. */
const COMPLETED_EVENT = /Completed failover|failover completed|DB instance restarted/i;
/** RDS event messages of a reboot or a class change (in progress or done). */
const RESTART_EVENT = /restart|reboot|shut ?down|modif/i;
/** ... and those that show it finished. */
const RESTART_COMPLETED_EVENT = /DB instance restarted|Finished applying modification/i;
/** Events of a Global Database switchover or failover. */
const GLOBAL_EVENT = /global (switchover|failover)/i;
/** Blue/Green deployment events of a switchover. */
const SWITCHOVER_EVENT = /switchover/i;
/** Deployment statuses that show a switchover started (or ended). */
const SWITCHOVER_SEEN = new Set(['SWITCHOVER_IN_PROGRESS', 'SWITCHOVER_COMPLETED', 'SWITCHOVER_FAILED']);

/**
 * What the trigger does: `failover` makes a new writer; `instance-restart` (reboot-db-instance,
 * modify-db-instance-class) restarts one instance in place.
 */
export type TriggerOperation = 'failover' | 'instance-restart' | 'switchover' | 'global';

/**
 * Asks the target: its state and, unless the writer already changed, its events since T0
 * (1 s of slack for clock differences). Throws the provider's TriggerError.
 */
export async function lookAtTarget(
  trigger: Pick<FailoverTrigger, 'state' | 'events'>,
  t0Ms: number,
  writerBefore: string | undefined,
  nowMs: number = Date.now(),
): Promise<TargetLook> {
  const state = await trigger.state();
  if (state && writerBefore && state.writerId && state.writerId !== writerBefore)
    return { state, events: [] };
  if (!state) return { events: [] };
  return { state, events: await trigger.events(t0Ms - 1000, nowMs + 1000) };
}

export type HappenedBy = (typeof TRIGGER_OBSERVED_BY)[number];

export interface ObserverOptions {
  t0Ms: number;
  writerBefore?: string;
  outcome: CallOutcome;
  maxDurationMs: number;
  /** The spec's trigger is `none`: the failover is someone else's; the probes decide. */
  observeOnly?: boolean;
  /** What is observed (default `failover`). */
  operation?: TriggerOperation;
  /** Known from an earlier pass (status): when and how the failover was seen. */
  happened?: { atMs: number; by: HappenedBy };
  /** At most one look at RDS per this many ms (default 1 s): Describe calls count against RDS's rate limits. */
  minLookIntervalMs?: number;
  /** First wait after an RDS error (default 1 s); doubles per error up to maxBackoffMs (10 s). */
  firstBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ObserveInput {
  nowMs: number;
  /** This pass's look at the target, or its error; absent when not asked (backoff). */
  look?: TargetLook | { error: TriggerError };
  /** When the probes first saw a write acknowledged by another server after T0. */
  roleFlipMs?: number;
  /** When the probes saw the writer go away after T0 (it came back since: RoleFlipWatcher.firstRestartMs). */
  restartMs?: number;
  /** The probes saw an outage since T0 (observe-only runs). */
  sawOutage?: boolean;
  /** Every lane has been good for observe.recoveredFor. */
  recovered: boolean;
}

/** A run-wide Inconclusive finding (analysis/verdict.ts) from the trigger protocol. */
export interface Inconclusive extends InconclusiveFinding {
  reason:
    | 'FailoverNotObserved'
    | 'OperationNotObserved'
    | 'TriggerOutcomeUnknown'
    | 'SwitchoverRolledBack'
    | 'OperationNotCompleted';
}

export type ObserveDecision = { done: false } | { done: true; inconclusive?: Inconclusive };

/** Why a run whose failover was never seen proves nothing, by what the call did. */
export function notObserved(
  outcome: CallOutcome,
  writerBefore: string | undefined,
  maxDurationMs: number,
  operation: TriggerOperation = 'failover',
): Inconclusive {
  const limit = `${Math.round(maxDurationMs / 1000)} s`;
  if (operation === 'global')
    return {
      reason: outcome === 'Succeeded' ? 'OperationNotObserved' : 'TriggerOutcomeUnknown',
      message: `the ${outcome === 'Succeeded' ? 'call succeeded' : "call's outcome is unknown (it was not called again)"} but neither RDS (the global cluster never switching over or failing over, the target still its primary) nor the probes (no role flip) showed it within observe.maxDuration (${limit})`,
    };
  if (operation === 'switchover')
    return {
      reason: outcome === 'Succeeded' ? 'OperationNotObserved' : 'TriggerOutcomeUnknown',
      message: `the ${outcome === 'Succeeded' ? 'call succeeded' : "call's outcome is unknown (it was not called again)"} but neither RDS (the Blue/Green deployment never left AVAILABLE, no switchover event) nor the probes (no role flip to green) showed the switchover within observe.maxDuration (${limit})`,
    };
  if (operation === 'instance-restart')
    return {
      reason: outcome === 'Succeeded' ? 'OperationNotObserved' : 'TriggerOutcomeUnknown',
      message: `the ${outcome === 'Succeeded' ? 'call succeeded' : "call's outcome is unknown (it was not called again)"} but neither RDS (the instance never left available, no restart or modification event) nor the probes (the server never went away and came back) showed the reboot or class change within observe.maxDuration (${limit})`,
    };
  return outcome === 'Succeeded'
    ? {
        reason: 'FailoverNotObserved',
        message: `the failover call succeeded but neither RDS (writer ${writerBefore ?? 'unknown'} unchanged, no failover status or event) nor the probes (no role flip) showed a failover within observe.maxDuration (${limit})`,
      }
    : {
        reason: 'TriggerOutcomeUnknown',
        message: `the failover call's outcome is unknown (it was not called again) and neither RDS nor the probes showed a failover within observe.maxDuration (${limit})`,
      };
}

/**
 * The observation of one run's failover: fed each pass with what RDS and the probes show,
 * it says whether the failover happened, when RDS may be asked next, and when to stop.
 * Pure: time comes in with the input.
 */
export class TriggerObserver {
  readonly options: ObserverOptions;
  happened: { atMs: number; by: HappenedBy } | undefined;
  /** RDS errors in a row, and the last one (for the status). */
  rdsErrors = 0;
  lastRdsError: TriggerError | undefined;
  /** RDS errors in all. */
  rdsErrorsTotal = 0;
  private nextLookMs = 0;
  private rdsSettled = false;
  /** The last look succeeded: RDS can be asked (else the probes alone may end the run). */
  private rdsAnswering = true;
  /** instance-restart: RDS showed the instance not available since T0. */
  private instanceLeftAvailable = false;
  /** instance-restart: the probes saw the same server go away and come back (an earlier pass). */
  private probesSawRestart = false;
  /** switchover, global: RDS rolled it back, in words (status details). */
  rolledBack: string | undefined;
  /** switchover, global: RDS showed it complete (SWITCHOVER_COMPLETED; another primary). */
  private completed = false;
  /** switchover, global: RDS showed it in progress (to tell a rollback from not started). */
  private sawInProgress = false;
  /** The last status RDS showed of the deployment or global cluster, for the finding. */
  private lastStatus: string | undefined;
  /** The probes saw a write acknowledged by another server: the switch took effect. */
  private probesSawRoleFlip = false;
  /** global: looks in a row showing it available with the same primary after it was in progress. */
  private sameAfterProgress = 0;

  constructor(options: ObserverOptions) {
    this.options = options;
    this.happened = options.happened;
  }

  /** Whether this pass should ask RDS (false while backing off after errors, or when settled). */
  wantsLook(nowMs: number): boolean {
    if (this.options.observeOnly || this.rdsSettled) return false;
    return nowMs >= this.nextLookMs;
  }

  step(input: ObserveInput): ObserveDecision {
    const { nowMs } = input;
    const o = this.options;
    const restart = o.operation === 'instance-restart';
    if (restart && input.restartMs !== undefined && input.restartMs >= o.t0Ms) this.probesSawRestart = true;
    if (input.look && 'error' in input.look) {
      this.rdsErrors++;
      this.rdsErrorsTotal++;
      this.lastRdsError = input.look.error;
      this.rdsAnswering = false;
      const first = o.firstBackoffMs ?? 1000;
      this.nextLookMs = nowMs + Math.min(o.maxBackoffMs ?? 10_000, first * 2 ** (this.rdsErrors - 1));
    } else if (input.look) {
      this.rdsErrors = 0;
      this.nextLookMs = nowMs + (o.minLookIntervalMs ?? 1000);
      // A trigger without a state (observe-only, a test's) cannot settle: the probes decide.
      this.rdsAnswering = input.look.state !== undefined;
      this.learn(input.look, nowMs);
    }
    // A reboot makes no new writer: a role flip is not its evidence, the same server's return is.
    if (!restart && input.roleFlipMs !== undefined && input.roleFlipMs >= o.t0Ms) {
      this.saw(input.roleFlipMs, 'probes-role-flip');
      this.probesSawRoleFlip = true;
    }
    if (restart && input.restartMs !== undefined && input.restartMs >= o.t0Ms)
      this.saw(input.restartMs, 'probes-restart');

    if (o.observeOnly) {
      if (nowMs - o.t0Ms >= o.maxDurationMs) return { done: true };
      return input.sawOutage && input.recovered ? { done: true } : { done: false };
    }
    if (this.happened && input.recovered && (this.rdsSettled || !this.rdsAnswering)) return this.end();
    if (nowMs - o.t0Ms < o.maxDurationMs) return { done: false };
    if (this.happened) return this.end();
    return {
      done: true,
      inconclusive: notObserved(o.outcome, o.writerBefore, o.maxDurationMs, o.operation),
    };
  }

  /**
   * Done. A Blue/Green or Global Database operation that RDS rolled back, or that neither RDS
   * (complete) nor the probes (a write acknowledged by the new writer) showed to have taken
   * effect, ends with a finding: the figures may show an attempt, not the operation.
   */
  private end(): ObserveDecision {
    const op = this.options.operation;
    if (op !== 'switchover' && op !== 'global') return { done: true };
    const what = op === 'switchover' ? 'Blue/Green switchover' : 'Global Database operation';
    if (this.rolledBack !== undefined)
      return {
        done: true,
        inconclusive: {
          reason: 'SwitchoverRolledBack',
          message: `RDS rolled the ${what} back (${this.rolledBack}): the figures show the attempt, the old writer still serves`,
        },
      };
    if (!this.completed && !this.probesSawRoleFlip)
      return {
        done: true,
        inconclusive: {
          reason: 'OperationNotCompleted',
          message: `RDS showed the ${what} start but not complete (last status ${this.lastStatus ?? 'unknown'}), and no probe saw a write acknowledged by the new writer, within observe.maxDuration (${Math.round(this.options.maxDurationMs / 1000)} s)`,
        },
      };
    return { done: true };
  }

  private learn(look: TargetLook, nowMs: number): void {
    if (this.options.operation === 'instance-restart') {
      this.learnRestart(look, nowMs);
      return;
    }
    if (this.options.operation === 'switchover') {
      this.learnSwitchover(look, nowMs);
      return;
    }
    if (this.options.operation === 'global') {
      this.learnGlobal(look, nowMs);
      return;
    }
    const { state } = look;
    const writerBefore = this.options.writerBefore;
    const writerChanged = !!(state && writerBefore && state.writerId && state.writerId !== writerBefore);
    if (writerChanged) this.saw(nowMs, 'rds-writer');
    if (state && (state.status === 'failing-over' || state.status === 'rebooting'))
      this.saw(nowMs, 'rds-status');
    const sinceT0 = look.events.filter((e) => e.atMs >= this.options.t0Ms - 1000);
    const failoverEvent = sinceT0.find((e) => FAILOVER_EVENT.test(e.message));
    if (failoverEvent) this.saw(Math.max(failoverEvent.atMs, this.options.t0Ms), 'rds-events');
    // Settled: available again AND showing that it failed over; an `available` seen before
    // RDS even started (Describe is eventually consistent) does not count.
    this.rdsSettled =
      state?.status === 'available' &&
      (writerChanged || sinceT0.some((e) => COMPLETED_EVENT.test(e.message)));
  }

  /** A reboot or class change: the instance's status and its events, never a writer change. */
  private learnRestart(look: TargetLook, nowMs: number): void {
    const instance = look.state?.instance;
    if (instance && instance.status !== 'available') {
      this.instanceLeftAvailable = true;
      this.saw(nowMs, 'rds-status');
    }
    const sinceT0 = look.events.filter((e) => e.atMs >= this.options.t0Ms - 1000);
    const event = sinceT0.find((e) => RESTART_EVENT.test(e.message));
    if (event) this.saw(Math.max(event.atMs, this.options.t0Ms), 'rds-events');
    // Settled: the instance is available again after RDS showed it away, said it is done, or
    // the probes saw the server come back (a reboot may fall between two Describe calls).
    this.rdsSettled =
      instance?.status === 'available' &&
      (this.instanceLeftAvailable ||
        this.probesSawRestart ||
        sinceT0.some((e) => RESTART_COMPLETED_EVENT.test(e.message)));
  }

  /** A Blue/Green switchover: the deployment's status and events, never the writer's name. */
  private learnSwitchover(look: TargetLook, nowMs: number): void {
    const bg = look.state?.blueGreen;
    if (bg) this.lastStatus = bg.status;
    if (bg && SWITCHOVER_SEEN.has(bg.status)) {
      this.saw(nowMs, 'rds-status');
      this.sawInProgress = true;
    }
    const sinceT0 = look.events.filter((e) => e.atMs >= this.options.t0Ms - 1000);
    const event = sinceT0.find((e) => SWITCHOVER_EVENT.test(e.message));
    if (event) this.saw(Math.max(event.atMs, this.options.t0Ms), 'rds-events');
    if (bg?.status === 'SWITCHOVER_COMPLETED') this.completed = true;
    // Rolled back: SWITCHOVER_FAILED, or AVAILABLE again after it was seen in progress.
    if (bg?.status === 'SWITCHOVER_FAILED')
      this.rolledBack = `SWITCHOVER_FAILED${bg.statusDetails ? `: ${bg.statusDetails}` : ''}`;
    else if (bg?.status === 'AVAILABLE' && this.sawInProgress)
      this.rolledBack = `the deployment is AVAILABLE again, not switched over${bg.statusDetails ? `: ${bg.statusDetails}` : ''}`;
    this.rdsSettled = this.completed || this.rolledBack !== undefined;
  }

  /** A Global Database switchover or failover: the global cluster's status and primary. */
  private learnGlobal(look: TargetLook, nowMs: number): void {
    const g = look.state?.globalCluster;
    if (g) this.lastStatus = g.failoverStatus ? `${g.status}, ${g.failoverStatus}` : g.status;
    const primaryMoved = !!(g?.writerArn && look.state?.arn && g.writerArn !== look.state.arn);
    const inProgress = !!g && (g.status !== 'available' || g.failoverStatus !== undefined);
    if (inProgress) {
      this.saw(nowMs, 'rds-status');
      this.sawInProgress = true;
    }
    if (primaryMoved) this.saw(nowMs, 'rds-writer');
    const sinceT0 = look.events.filter((e) => e.atMs >= this.options.t0Ms - 1000);
    const event = sinceT0.find((e) => GLOBAL_EVENT.test(e.message));
    if (event) this.saw(Math.max(event.atMs, this.options.t0Ms), 'rds-events');
    if (g?.status === 'available' && g.failoverStatus === undefined && primaryMoved) this.completed = true;
    // Available again with the same primary, twice in a row, after it was seen in progress:
    // cancelled or rolled back (once could be a Describe between two updates).
    this.sameAfterProgress =
      !this.completed && this.sawInProgress && g && !inProgress && !primaryMoved
        ? this.sameAfterProgress + 1
        : 0;
    if (this.sameAfterProgress >= 2)
      this.rolledBack = `global cluster ${g!.id} is available again with the same primary`;
    this.rdsSettled = this.completed || this.rolledBack !== undefined;
  }

  private saw(atMs: number, by: HappenedBy): void {
    if (!this.happened || atMs < this.happened.atMs) this.happened = { atMs, by };
  }
}

/** Classes that show a server going away or coming back (a restart), not a slow or busy one. */
const SERVER_GONE_CLASSES: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  'connection_refused',
  'connection_lost',
  'starting_up',
  'admin_shutdown',
  'crash_shutdown',
  'connect_timeout',
]);

interface WriteLane {
  before?: { endMs: number; id: string };
  firstBy: Map<string, number>;
  /** Start of the earliest write attempt after T0 that found the server gone. */
  firstGone?: { startMs: number; endMs: number };
  /** Per server, the latest end of a write it acknowledged after T0. */
  lastBy: Map<string, number>;
}

/**
 * The probes' evidence: per endpoint, the server that acknowledged writes last before T0 and
 * the first (and last) acknowledgement by each server after it (a handful of servers: small
 * and incremental). The role flip is the first write acknowledged by another server; a restart
 * is a write that found the server gone (refused, dropped, starting up, shut down) followed by
 * a write acknowledged by the same server as before T0.
 */
export class RoleFlipWatcher {
  private readonly t0Ms: number;
  private readonly lanes = new Map<string, WriteLane>();

  constructor(t0Ms: number) {
    this.t0Ms = t0Ms;
  }

  private lane(endpoint: string): WriteLane {
    let lane = this.lanes.get(endpoint);
    if (!lane) {
      lane = { firstBy: new Map(), lastBy: new Map() };
      this.lanes.set(endpoint, lane);
    }
    return lane;
  }

  add(s: Sample): void {
    if (s.kind !== 'write') return;
    if (SERVER_GONE_CLASSES.has(s.class) && s.startMs >= this.t0Ms) {
      const lane = this.lane(s.endpoint);
      if (!lane.firstGone || s.startMs < lane.firstGone.startMs)
        lane.firstGone = { startMs: s.startMs, endMs: s.endMs };
      return;
    }
    if (!s.server || !isAcknowledgedClass(s.class)) return;
    const lane = this.lane(s.endpoint);
    if (s.endMs <= this.t0Ms) {
      if (!lane.before || s.endMs >= lane.before.endMs) lane.before = { endMs: s.endMs, id: s.server.id };
      return;
    }
    const seen = lane.firstBy.get(s.server.id);
    if (seen === undefined || s.endMs < seen) lane.firstBy.set(s.server.id, s.endMs);
    const last = lane.lastBy.get(s.server.id);
    if (last === undefined || s.endMs > last) lane.lastBy.set(s.server.id, s.endMs);
  }

  /**
   * When any endpoint first found its writer gone after T0 (epoch ms), counted once the same
   * server (as before T0) acknowledged a write again after that attempt: the server restarted.
   */
  firstRestartMs(): number | undefined {
    let first: number | undefined;
    for (const lane of this.lanes.values()) {
      if (!lane.before || !lane.firstGone) continue;
      const back = lane.lastBy.get(lane.before.id);
      if (back === undefined || back <= lane.firstGone.endMs) continue;
      if (first === undefined || lane.firstGone.startMs < first) first = lane.firstGone.startMs;
    }
    return first;
  }

  /** When any endpoint first saw a write acknowledged by a new server (epoch ms). */
  firstFlipMs(): number | undefined {
    let first: number | undefined;
    for (const lane of this.lanes.values()) {
      if (!lane.before) continue;
      for (const [id, atMs] of lane.firstBy)
        if (id !== lane.before.id && (first === undefined || atMs < first)) first = atMs;
    }
    return first;
  }
}

/**
 * The provider's events for the results, retrying transient errors (throttling, unreachable,
 * 5xx) with backoff within `budgetMs`; none (an empty list) when they cannot be had.
 */
export async function eventsForResults(
  trigger: Pick<FailoverTrigger, 'events'>,
  fromMs: number,
  toMs: number,
  budgetMs = 30_000,
  sleep: (ms: number) => Promise<unknown> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<TriggerEvent[]> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await trigger.events(fromMs, toMs);
    } catch (err) {
      const waitMs = Math.min(10_000, 1000 * 2 ** attempt);
      if (!(err instanceof TriggerError && err.transient) || Date.now() + waitMs > deadline) return [];
      await sleep(waitMs);
    }
  }
}
