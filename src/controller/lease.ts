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
  renewIntervalMs: number;
  /**
   * How long a leader keeps leading while renewals fail with errors (the API server away, a
   * conflict), retrying every renewIntervalMs / 2; default two thirds of the lease duration.
   * A lease taken by another identity ends leadership at once.
   */
  renewDeadlineMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

/** Leader election on a Lease: 15 s lease, renewed every 5 s, released on stop(). */
export class LeaderElector {
  private readonly kube: Kube;
  private readonly opts: LeaderElectionOptions;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;
  private stopped = false;

  constructor(kube: Kube, opts: LeaderElectionOptions) {
    this.kube = kube;
    this.opts = opts;
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    const renewDeadlineMs = this.opts.renewDeadlineMs ?? (this.opts.leaseDurationSeconds * 1000 * 2) / 3;
    let lastRenewMs = 0;
    const tick = async () => {
      if (this.stopped) return;
      let outcome: 'held' | 'taken' | 'error';
      try {
        outcome = (await this.tryAcquireOrRenew()) ? 'held' : 'taken';
      } catch {
        outcome = 'error';
      }
      if (this.stopped) return;
      if (outcome === 'held') {
        lastRenewMs = Date.now();
        if (!this.leading) {
          this.leading = true;
          this.opts.onStartedLeading();
        }
      } else if (this.leading && (outcome === 'taken' || Date.now() - lastRenewMs > renewDeadlineMs)) {
        this.leading = false;
        this.opts.onStoppedLeading();
      }
      const retrying = this.leading && outcome === 'error';
      const delayMs = retrying ? this.opts.renewIntervalMs / 2 : this.opts.renewIntervalMs;
      if (!this.stopped) this.timer = setTimeout(tick, delayMs);
    };
    void tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.leading) {
      this.leading = false;
      await releaseTargetLock(this.kube, this.opts.namespace, this.opts.name, this.opts.identity).catch(
        () => {},
      );
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.opts;
    const now = new V1MicroTime();
    let lease: V1Lease;
    try {
      lease = await this.kube.coordination.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.kube.coordination.createNamespacedLease({
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
      });
      return true;
    }
    const spec = lease.spec ?? {};
    const renewedMs = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = Date.now() > renewedMs + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (spec.holderIdentity && spec.holderIdentity !== identity && !expired) return false;
    const transition = spec.holderIdentity !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds,
      renewTime: now,
      ...(transition ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
    };
    await this.kube.coordination.replaceNamespacedLease({ name, namespace, body: lease });
    return true;
  }
}
