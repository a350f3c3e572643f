// Which targets the controller agrees to touch, checked before any lock, pod or AWS call:
// - the allowlist: `region/identifier` glob patterns (`eu-west-1/orders-staging-*`,
//   `*/lab-*`); an entry without a region means the controller's default region (AWS_REGION),
//   so a same-named cluster in another region does not pass. A target without
//   `spec.target.region` is in the default region.
// - `spec.target.rdsEndpoint` sends the controller's SigV4-signed AWS requests to a URL of the
//   spec's choosing: honoured only with --allow-rds-endpoint-override (the lab and tests).

import type { FailoverExperimentSpec } from '../api/experiment-spec.ts';
import { targetIdentifier } from '../api/spec-accessors.ts';

export interface TargetPolicy {
  /** Allowlist entries as given (`[region/]identifier`, globs `*` and `?`); empty: any. */
  allowedTargets?: readonly string[];
  /** Region of targets without one, and of entries without one (AWS_REGION); '' when unset. */
  defaultRegion?: string;
  /** Honour spec.target.rdsEndpoint (--allow-rds-endpoint-override). */
  allowRdsEndpointOverride?: boolean;
}

export interface PolicyProblem {
  reason: 'TargetNotAllowed' | 'RdsEndpointNotAllowed';
  message: string;
}

/** A glob (`*` any run, `?` one character; nothing else special) as an anchored RegExp. */
function globRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${body}$`);
}

/** Whether an allowlist entry admits `region/identifier`. */
function entryAdmits(entry: string, region: string, identifier: string, defaultRegion: string): boolean {
  const slash = entry.lastIndexOf('/');
  const regionGlob = slash < 0 ? defaultRegion : entry.slice(0, slash);
  const idGlob = slash < 0 ? entry : entry.slice(slash + 1);
  // A legacy `prefix*` entry stays a prefix match of the identifier.
  return globRegExp(regionGlob).test(region) && globRegExp(idGlob).test(identifier);
}

/** Whether the allowlist admits a target (region '' = the default region); empty admits all. */
export function isTargetAllowed(
  target: { region?: string; identifier: string },
  allowed: readonly string[],
  defaultRegion = '',
): boolean {
  if (allowed.length === 0) return true;
  const region = target.region || defaultRegion;
  return allowed.some((entry) => entryAdmits(entry, region, target.identifier, defaultRegion));
}

/** A problem with an allowlist entry (for the operator's start-up), or undefined. */
export function allowedTargetProblem(entry: string): string | undefined {
  const parts = entry.split('/');
  if (parts.length > 2 || parts.some((p) => p === '' || !/^[A-Za-z0-9*?-]+$/.test(p)))
    return `allowed target \`${entry}\` must be identifier or region/identifier (letters, digits, '-', globs * and ?), e.g. eu-west-1/orders-staging-*`;
  return undefined;
}

/** Why the controller refuses this spec's target, or undefined when it may go ahead. */
export function targetPolicyProblem(
  spec: FailoverExperimentSpec,
  policy: TargetPolicy,
): PolicyProblem | undefined {
  const target = spec.target;
  if (!target) return undefined;
  if (target.rdsEndpoint !== undefined && spec.trigger.type !== 'none' && !policy.allowRdsEndpointOverride)
    return {
      reason: 'RdsEndpointNotAllowed',
      message: `spec.target.rdsEndpoint is set, but this controller sends its AWS requests only to AWS: remove rdsEndpoint, or start the controller with --allow-rds-endpoint-override (for a lab or test cluster only; the chart leaves it off)`,
    };
  const identifier = targetIdentifier(spec);
  const allowed = policy.allowedTargets ?? [];
  const defaultRegion = policy.defaultRegion ?? '';
  if (identifier === null || isTargetAllowed({ region: target.region, identifier }, allowed, defaultRegion))
    return undefined;
  const region = target.region || defaultRegion || '(default region)';
  return {
    reason: 'TargetNotAllowed',
    message: `target ${region}/${identifier} is not in the controller's allowed targets (${allowed.join(', ')}): add it to the chart's allowedTargets (--allowed-targets) if failing it over is intended`,
  };
}
