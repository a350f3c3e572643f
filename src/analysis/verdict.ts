/** Service-level objectives of one endpoint. Absent limits are not checked. */
export interface Slo {
  maxWriteDowntimeSeconds?: number;
  maxReadDowntimeSeconds?: number;
  maxLostWrites?: number;
}

export type VerdictResult = 'Pass' | 'Fail';

export interface SloCheck {
  endpoint: string;
  objective: 'maxWriteDowntime' | 'maxReadDowntime' | 'maxLostWrites' | 'recovered';
  limit: number | null;
  measured: number | null;
  passed: boolean;
  /** Why the check failed, for people (only on failed checks). */
  reason?: string;
}

export interface Verdict {
  result: VerdictResult;
  /** One sentence per failed check, for people. */
  reasons: string[];
  checks: SloCheck[];
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

/** Verdict against the SLOs: Pass only when every check of every endpoint passes. */
export function verdict(
  measurements: readonly EndpointMeasurement[],
  sloOf: (endpoint: string) => Slo,
): Verdict {
  const checks: SloCheck[] = [];
  const reasons: string[] = [];
  for (const measurement of measurements) {
    for (const check of endpointChecks(measurement, sloOf(measurement.name))) {
      if (!check.passed) {
        check.reason = describeFailedCheck(check, measurement);
        reasons.push(check.reason);
      }
      checks.push(check);
    }
  }
  return { result: reasons.length === 0 ? 'Pass' : 'Fail', reasons, checks };
}
