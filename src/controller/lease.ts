// coordination.k8s.io/v1 Leases: the per-target lock that keeps two experiments (or
// schedules) from failing over one database at once, and the controller's leader election.
import { type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { isConflict, isNotFound, type Kube } from './kube.ts';

/** Lease names are DNS subdomains: `failwatch-target-<target>` lower-cased and cleaned. */
export function targetLeaseName(target: string): string {
  const clean = target
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '');
  return `failwatch-target-${clean}`.slice(0, 253);
}

export type LockResult = { held: true } | { held: false; holder: string };

/**
 * Takes the target lock for `holder` unless another holder still needs it
 * (`holderActive(holder)` false means it finished or was deleted: its lock is taken over).
 */
export async function acquireTargetLock(
  kube: Kube,
  namespace: string,
  name: string,
  holder: string,
  holderActive: (holder: string) => Promise<boolean>,
): Promise<LockResult> {
  const now = new V1MicroTime();
  let lease: V1Lease;
  try {
    lease = await kube.coordination.readNamespacedLease({ name, namespace });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      await kube.coordination.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'failwatch' } },
          spec: { holderIdentity: holder, acquireTime: now, renewTime: now, leaseTransitions: 0 },
        },
      });
      return { held: true };
    } catch (createErr) {
      if (isConflict(createErr)) return { held: false, holder: '(being taken)' };
      throw createErr;
    }
  }
  const current = lease.spec?.holderIdentity;
  if (current === holder) return { held: true };
  if (current && (await holderActive(current))) return { held: false, holder: current };
  lease.spec = {
    ...lease.spec,
    holderIdentity: holder,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1,
  };
  try {
    await kube.coordination.replaceNamespacedLease({ name, namespace, body: lease });
    return { held: true };
  } catch (err) {
    if (isConflict(err)) return { held: false, holder: current ?? '(being taken)' };
    throw err;
  }
}

/** Deletes the lock if `holder` holds it. */
export async function releaseTargetLock(
  kube: Kube,
  namespace: string,
  name: string,
  holder: string,
): Promise<void> {
  try {
    const lease = await kube.coordination.readNamespacedLease({ name, namespace });
    if (lease.spec?.holderIdentity !== holder) return;
    await kube.coordination.deleteNamespacedLease({
      name,
      namespace,
      body: { preconditions: { resourceVersion: lease.metadata?.resourceVersion } },
    });
  } catch (err) {
    if (!isNotFound(err) && !isConflict(err)) throw err;
  }
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  /** How often the leader renews and a candidate tries (client-go's retry period). */
  renewIntervalMs: number;
  /**
   * How long a leader keeps leading without a successful renewal (the API server away, a
   * conflict, a hung call), retrying every renewIntervalMs / 2; default two thirds of the lease
   * duration, and always below it. A lease taken by another identity ends leadership at once.
   */
  renewDeadlineMs?: number;
  /** Timeout of each API call; default half the renew deadline, and always below it. */
  callTimeoutMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** Monotonic clock in ms (default performance.now); expiry is measured on it only. */
  monotonicNow?: () => number;
  /** Wall clock for the Lease's acquireTime/renewTime, which are for people only (default Date). */
  wallNow?: () => Date;
}

class CallTimeout extends Error {}

function withTimeout<T>(call: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CallTimeout(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

/** What a candidate compares to see whether the record changed (client-go compares it whole). */
function recordKey(lease: V1Lease): string {
  const s = lease.spec ?? {};
  return JSON.stringify([
    lease.metadata?.resourceVersion,
    s.holderIdentity,
    String(s.renewTime ?? ''),
    String(s.acquireTime ?? ''),
    s.leaseTransitions,
    s.leaseDurationSeconds,
  ]);
}

/**
 * Leader election on a Lease as client-go does it: a candidate takes over only when the
 * record has not changed for the lease duration *as measured on its own monotonic clock since
 * it last saw the record change* — never by comparing the holder's renewTime with the local
 * clock, so clock skew between machines cannot give two leaders. The leader stops leading when
 * it has not renewed for the renew deadline (< lease duration) counted from the start of its
 * last successful renewal, even while a call hangs; every API call times out below the deadline.
 * Writes carry the resourceVersion read, so two candidates cannot both win one round.
 */
export class LeaderElector {
  private readonly kube: Kube;
  private readonly opts: LeaderElectionOptions;
  private readonly renewDeadlineMs: number;
  private readonly callTimeoutMs: number;
  private readonly mono: () => number;
  private readonly wall: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private leading = false;
  private stopped = false;
  /** The record as last seen, and when it was seen to change (monotonic ms). */
  private observedKey: string | undefined;
  private observedAtMs = 0;
  /** Start of the last successful acquire or renew (monotonic ms). */
  private lastRenewStartMs = 0;

  constructor(kube: Kube, opts: LeaderElectionOptions) {
    this.kube = kube;
    this.opts = opts;
    const leaseMs = opts.leaseDurationSeconds * 1000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? (leaseMs * 2) / 3;
    this.callTimeoutMs = opts.callTimeoutMs ?? this.renewDeadlineMs / 2;
    if (!(this.renewDeadlineMs < leaseMs))
      throw new RangeError(
        `leader election: the renew deadline (${this.renewDeadlineMs} ms) must be below the lease duration (${leaseMs} ms)`,
      );
    if (!(this.callTimeoutMs < this.renewDeadlineMs))
      throw new RangeError(
        `leader election: the call timeout (${this.callTimeoutMs} ms) must be below the renew deadline (${this.renewDeadlineMs} ms)`,
      );
    this.mono = opts.monotonicNow ?? (() => performance.now());
    this.wall = opts.wallNow ?? (() => new Date());
  }

  /** Leading, and renewed within the renew deadline (checked now, not at the next tick). */
  isLeader(): boolean {
    return this.leading && this.mono() - this.lastRenewStartMs <= this.renewDeadlineMs;
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      const startedMs = this.mono();
      let outcome: 'held' | 'taken' | 'error';
      try {
        outcome = (await this.tryAcquireOrRenew()) ? 'held' : 'taken';
      } catch {
        outcome = 'error';
      }
      if (this.stopped) return;
      if (outcome === 'held') {
        this.lastRenewStartMs = startedMs;
        // Leadership lapses at the deadline even if no tick comes (a call hanging).
        clearTimeout(this.deadlineTimer);
        this.deadlineTimer = setTimeout(
          () => this.lose(),
          Math.max(0, startedMs + this.renewDeadlineMs - this.mono()),
        );
        if (!this.leading) {
          this.leading = true;
          this.opts.onStartedLeading();
        }
      } else if (this.leading && (outcome === 'taken' || !this.isLeader())) this.lose();
      const retrying = this.leading && outcome === 'error';
      const delayMs = retrying ? this.opts.renewIntervalMs / 2 : this.opts.renewIntervalMs;
      if (!this.stopped) this.timer = setTimeout(tick, delayMs);
    };
    void tick();
  }

  private lose(): void {
    clearTimeout(this.deadlineTimer);
    if (!this.leading) return;
    this.leading = false;
    this.opts.onStoppedLeading();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadlineTimer);
    if (this.leading) {
      this.leading = false;
      await withTimeout(
        releaseTargetLock(this.kube, this.opts.namespace, this.opts.name, this.opts.identity),
        this.callTimeoutMs,
        'releasing the leader Lease',
      ).catch(() => {});
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.opts;
    const now = new V1MicroTime(this.wall().getTime());
    let lease: V1Lease;
    try {
      lease = await withTimeout(
        this.kube.coordination.readNamespacedLease({ name, namespace }),
        this.callTimeoutMs,
        'reading the leader Lease',
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const created = await withTimeout(
        this.kube.coordination.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        }),
        this.callTimeoutMs,
        'creating the leader Lease',
      );
      this.observe(created);
      return true;
    }
    this.observe(lease);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const durationMs = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    const expired = this.mono() >= this.observedAtMs + durationMs;
    if (holder && holder !== identity && !expired) return false;
    const transition = holder !== identity;
    const body: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        renewTime: now,
        ...(transition ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    // The body carries the resourceVersion read: a change since then is a 409, not a takeover.
    const written = await withTimeout(
      this.kube.coordination.replaceNamespacedLease({ name, namespace, body }),
      this.callTimeoutMs,
      'renewing the leader Lease',
    );
    this.observe(written);
    return true;
  }

  private observe(lease: V1Lease): void {
    const key = recordKey(lease);
    if (key !== this.observedKey) {
      this.observedKey = key;
      this.observedAtMs = this.mono();
    }
  }
}
