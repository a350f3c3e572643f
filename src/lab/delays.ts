// Step delays of a lab failover. The default profile is close to what the field reports saw
// on Aurora (cluster endpoint errors ~11 s, endpoint DNS update ~12-14 s after the call);
// the fast profile runs a whole failover in about 3 s for tests.

export interface FailoverDelays {
  /** From the API call (T0) to the old writer going away. */
  stopOldWriterMs: number;
  /** From the old writer going away to the target's restart as writer. */
  promoteMs: number;
  /** From the new writer accepting writes to the old writer's restart as a reader. */
  demoteMs: number;
  /** From T0 to the cluster endpoint's DNS record moving to the new writer. */
  clusterEndpointMs: number;
  /**
   * At least this long from the old writer's restart as a reader to the cluster endpoint's
   * move: clients of the cluster endpoint meet the demoted writer (`read_only`) as on Aurora,
   * where DNS moves seconds after it, even when the demotion itself ran late.
   */
  staleEndpointMinMs: number;
  /** From the cluster endpoint update to the reader endpoint update. */
  readerEndpointMs: number;
  /** From the reader endpoint update to "Completed failover" and Status available. */
  completeMs: number;
  /** RebootDBInstance (no failover) or a class change: how long the instance stays stopped. */
  instanceDownMs: number;
  /** ModifyDBInstance with ApplyImmediately: from the call (status modifying) to the restart. */
  modifyStartMs: number;
  /** Blue/Green switchover: from the call to blue refusing writes (RDS's guardrail checks). */
  switchoverFenceMs: number;
  /** ... from green having caught up to the endpoints and instances changing names. */
  switchoverRenameMs: number;
  /** ... from the renaming to green accepting writes. */
  switchoverWritableMs: number;
  /** ... from green accepting writes to Status SWITCHOVER_COMPLETED. */
  switchoverCompleteMs: number;
}

export const DELAY_PROFILES: Record<'default' | 'fast', FailoverDelays> = {
  default: {
    stopOldWriterMs: 1000,
    promoteMs: 3000,
    demoteMs: 2000,
    clusterEndpointMs: 12_000,
    staleEndpointMinMs: 1000,
    readerEndpointMs: 2000,
    completeMs: 1000,
    instanceDownMs: 8000,
    modifyStartMs: 3000,
    switchoverFenceMs: 2000,
    switchoverRenameMs: 3000,
    switchoverWritableMs: 1000,
    switchoverCompleteMs: 2000,
  },
  fast: {
    stopOldWriterMs: 200,
    promoteMs: 400,
    demoteMs: 300,
    clusterEndpointMs: 2000,
    staleEndpointMinMs: 700,
    readerEndpointMs: 300,
    completeMs: 200,
    instanceDownMs: 1500,
    modifyStartMs: 500,
    switchoverFenceMs: 300,
    switchoverRenameMs: 400,
    switchoverWritableMs: 200,
    switchoverCompleteMs: 300,
  },
};

export type DelayProfile = keyof typeof DELAY_PROFILES;

/**
 * What the lab does with an accepted FailoverDBCluster (or forced-failover reboot): `aurora`
 * performs the Aurora-like sequence; `noop` answers like RDS and does nothing at all (no
 * status change, no event, no new writer), the case a run must report as FailoverNotObserved.
 * `noop` also ignores RebootDBInstance and ModifyDBInstance (OperationNotObserved).
 */
export const FAILOVER_PROFILES = ['aurora', 'noop'] as const;
export type FailoverProfile = (typeof FAILOVER_PROFILES)[number];
