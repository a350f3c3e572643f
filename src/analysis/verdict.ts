/** Service-level objectives of one endpoint. Absent limits are not checked. */
export interface Slo {
  maxWriteDowntimeSeconds?: number;
  maxReadDowntimeSeconds?: number;
  maxLostWrites?: number;
}

/**
 * Pass: every SLO held on data that covers the run. Fail: an SLO was violated on measured data.
 * Inconclusive: nothing measured violates an SLO, but the measurement cannot show that they held
 * (a lane's samples do not cover the run, the failover was never observed, the trigger's outcome
 * stayed unknown). SLO gates treat Inconclusive as not passed.
 */
export const VERDICT_RESULTS = ['Pass', 'Fail', 'Inconclusive'] as const;
export type VerdictResult = (typeof VERDICT_RESULTS)[number];

/**
 * Why a run is Inconclusive:
 * - `CoverageGap`: a lane's samples do not cover baseline start to observation end (a gap longer
 *   than the coverage limit, dropped samples, a lost prober);
 * - `FailoverNotObserved`: the trigger call succeeded but neither RDS nor the probes showed a new
 *   writer within the observe limit;
 * - `OperationNotObserved`: a reboot or instance class change was called but neither RDS (the
 *   instance leaving and returning to available) nor the probes (the same server going away and
 *   coming back) showed it within the observe limit;
 * - `TriggerOutcomeUnknown`: whether the failover call took effect stayed unknown;
 * - `SwitchoverRolledBack`: RDS rolled a Blue/Green switchover (or a Global Database switchover
 *   or failover) back: the figures show an attempt, not a switchover;
 * - `OperationNotCompleted`: RDS showed such an operation start but never complete, and no
 *   probe saw a write acknowledged by the new writer.
 */
export const INCONCLUSIVE_REASONS = [
  'CoverageGap',
  'FailoverNotObserved',
  'OperationNotObserved',
  'TriggerOutcomeUnknown',
  'SwitchoverRolledBack',
  'OperationNotCompleted',
] as const;
export type InconclusiveReason = (typeof INCONCLUSIVE_REASONS)[number];

/** One reason the measurement cannot decide the verdict. */
export interface InconclusiveFinding {
  reason: InconclusiveReason;
  /** The endpoint concerned; absent when the finding is about the whole run. */
  endpoint?: string;
  /** One sentence for people, with the details (e.g. the gaps, the writer seen). */
  message: string;
}

export interface SloCheck {
  endpoint: string;
  objective: 'maxWriteDowntime' | 'maxReadDowntime' | 'maxLostWrites' | 'recovered';
  limit: number | null;
  measured: number | null;
  passed: boolean;
  /**
   * The check passed on the data present, but that data does not cover the run (the endpoint
   * has an Inconclusive finding): it does not show the SLO held.
   */
  unproven?: boolean;
  /** Why the check failed, for people (only on failed checks). */
  reason?: string;
}

export interface Verdict {
  result: VerdictResult;
  /** One sentence per failed check, then one per Inconclusive finding, for people. */
  reasons: string[];
  checks: SloCheck[];
  /**
   * Why the measurement cannot decide (empty when it can). Kept on a Fail too: a violation
   * measured on the data present outranks missing data, but the gaps are still reported.
   */
  inconclusive: InconclusiveFinding[];
}

/** What the verdict needs to know of one endpoint's measurement. */
export interface EndpointMeasurement {
  name: string;
  writeDowntimeSeconds: number | null;
  readDowntimeSeconds: number | null;
  /** Kinds whose outage was still open when observation ended. */
  unrecoveredKinds: string[];
  /** The endpoint has write probes (lost writes are checked only then). */
  writes: boolean;
  /** Null when no read-back audit ran. */
  lostWrites: number | null;
}

function seconds(value: number): string {
  return `${Number(value.toFixed(3))}s`;
}

function downtimeCheck(
  endpoint: string,
  objective: 'maxWriteDowntime' | 'maxReadDowntime',
  limit: number | undefined,
  measured: number | null,
): SloCheck | null {
  if (limit === undefined || measured === null) return null;
  return { endpoint, objective, limit, measured, passed: measured <= limit };
}

/** Checks one endpoint against its SLOs; an outage still open at the end always fails. */
export function endpointChecks(measurement: EndpointMeasurement, slo: Slo): SloCheck[] {
  const { name } = measurement;
  const checks: SloCheck[] = [];
  for (const check of [
    downtimeCheck(name, 'maxWriteDowntime', slo.maxWriteDowntimeSeconds, measurement.writeDowntimeSeconds),
    downtimeCheck(name, 'maxReadDowntime', slo.maxReadDowntimeSeconds, measurement.readDowntimeSeconds),
  ]) {
    if (check) checks.push(check);
  }
  if (slo.maxLostWrites !== undefined && measurement.writes) {
    const measured = measurement.lostWrites;
    // An audit that did not run cannot show the SLO was met.
    checks.push({
      endpoint: name,
      objective: 'maxLostWrites',
      limit: slo.maxLostWrites,
      measured,
      passed: measured !== null && measured <= slo.maxLostWrites,
    });
  }
  checks.push({
    endpoint: name,
    objective: 'recovered',
    limit: null,
    measured: measurement.unrecoveredKinds.length,
    passed: measurement.unrecoveredKinds.length === 0,
  });
  return checks;
}

export function describeFailedCheck(check: SloCheck, measurement?: EndpointMeasurement): string {
  const where = `endpoint \`${check.endpoint}\``;
  switch (check.objective) {
    case 'maxWriteDowntime':
      return `${where}: write downtime ${seconds(check.measured!)} exceeds maxWriteDowntime ${seconds(check.limit!)}`;
    case 'maxReadDowntime':
      return `${where}: read downtime ${seconds(check.measured!)} exceeds maxReadDowntime ${seconds(check.limit!)}`;
    case 'maxLostWrites':
      return check.measured === null
        ? `${where}: lost writes unknown (no read-back audit), maxLostWrites is ${check.limit}`
        : `${where}: ${check.measured} lost writes exceed maxLostWrites ${check.limit}`;
    case 'recovered':
      return `${where}: ${measurement?.unrecoveredKinds.join(' and ') ?? 'probes'} had not recovered when observation ended`;
  }
}

/** Fail when a check failed; otherwise Inconclusive when a finding says the data cannot decide. */
export function resultOf(anyFailed: boolean, findings: readonly InconclusiveFinding[]): VerdictResult {
  if (anyFailed) return 'Fail';
  return findings.length > 0 ? 'Inconclusive' : 'Pass';
}

/** The findings that concern one endpoint: its own and those about the whole run. */
export function findingsOf(
  findings: readonly InconclusiveFinding[],
  endpoint: string,
): InconclusiveFinding[] {
  return findings.filter((finding) => finding.endpoint === undefined || finding.endpoint === endpoint);
}

/**
 * Verdict against the SLOs: Fail when a check fails on the data measured; otherwise
 * Inconclusive when `findings` say the data cannot show the SLOs held; otherwise Pass. Callers
 * must not let missing data fail a check (a lost prober is not downtime): checks of an endpoint
 * with a finding that pass are marked `unproven`.
 */
export function verdict(
  measurements: readonly EndpointMeasurement[],
  sloOf: (endpoint: string) => Slo,
  findings: readonly InconclusiveFinding[] = [],
): Verdict {
  const checks: SloCheck[] = [];
  const reasons: string[] = [];
  for (const measurement of measurements) {
    const unproven = findingsOf(findings, measurement.name).length > 0;
    for (const check of endpointChecks(measurement, sloOf(measurement.name))) {
      // An audit that could not run because data is missing proves nothing either way.
      if (unproven && check.objective === 'maxLostWrites' && check.measured === null) check.passed = true;
      if (!check.passed) {
        check.reason = describeFailedCheck(check, measurement);
        reasons.push(check.reason);
      } else if (unproven) {
        check.unproven = true;
      }
      checks.push(check);
    }
  }
  const anyFailed = reasons.length > 0;
  for (const finding of findings) reasons.push(finding.message);
  return { result: resultOf(anyFailed, findings), reasons, checks, inconclusive: [...findings] };
}
