// Which targets the controller agrees to touch, checked before any lock, pod or AWS call:
// - the allowlist: `region/identifier` glob patterns (`eu-west-1/orders-staging-*`,
//   `*/lab-*`); an entry without a region means the controller's default region (AWS_REGION),
//   so a same-named cluster in another region does not pass. A target without
//   `spec.target.region` is in the default region. An entry may also name the AWS account,
//   `account/region/identifier` or ARN-shaped `arn:aws:rds:region:account:cluster:identifier`:
//   the account is not in the spec, so it is checked once the trigger has described the
//   target (its DBClusterArn / DBInstanceArn), during preflight, before any failover call.
// - `spec.target.rdsEndpoint` sends the controller's SigV4-signed AWS requests to a URL of the
//   spec's choosing: honoured only with --allow-rds-endpoint-override (the lab and tests).

import type { FailoverExperimentSpec } from '../api/experiment-spec.ts';
import { targetIdentifier } from '../api/spec-accessors.ts';

export interface TargetPolicy {
  /** Allowlist entries as given (`[[account/]region/]identifier` or an RDS ARN, globs `*` and `?`); empty: any. */
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

interface AllowEntry {
  account?: string;
  region: string;
  identifier: string;
}

const ARN_ENTRY = /^arn:aws[a-z-]*:rds:([^:]+):([^:]+):(?:cluster|db):([^:]+)$/;

/** An entry's parts: `[account/][region/]identifier` or an RDS ARN; globs stay globs. */
function parseEntry(entry: string, defaultRegion: string): AllowEntry {
  const arn = ARN_ENTRY.exec(entry);
  if (arn) return { region: arn[1]!, account: arn[2]!, identifier: arn[3]! };
  const parts = entry.split('/');
  if (parts.length === 3) return { account: parts[0]!, region: parts[1]!, identifier: parts[2]! };
  if (parts.length === 2) return { region: parts[0]!, identifier: parts[1]! };
  return { region: defaultRegion, identifier: entry };
}

/** Whether an allowlist entry admits `[account/]region/identifier` (account unknown: not checked). */
function entryAdmits(
  entry: string,
  target: { region: string; identifier: string; account?: string },
  defaultRegion: string,
): boolean {
  const e = parseEntry(entry, defaultRegion);
  if (target.account !== undefined && e.account !== undefined && !globRegExp(e.account).test(target.account))
    return false;
  return globRegExp(e.region).test(target.region) && globRegExp(e.identifier).test(target.identifier);
}

/**
 * Whether the allowlist admits a target (region '' = the default region); empty admits all.
 * Without `account` an entry's account part is not checked (see targetArnProblem).
 */
export function isTargetAllowed(
  target: { region?: string; identifier: string; account?: string },
  allowed: readonly string[],
  defaultRegion = '',
): boolean {
  if (allowed.length === 0) return true;
  const region = target.region || defaultRegion;
  return allowed.some((entry) => entryAdmits(entry, { ...target, region }, defaultRegion));
}

/** A problem with an allowlist entry (for the operator's start-up), or undefined. */
export function allowedTargetProblem(entry: string): string | undefined {
  const glob = /^[A-Za-z0-9*?-]+$/;
  const arn = ARN_ENTRY.exec(entry);
  const parts = arn ? arn.slice(1) : entry.split('/');
  if (parts.length > 3 || parts.some((p) => p === '' || !glob.test(p!)))
    return `allowed target \`${entry}\` must be identifier, region/identifier, account/region/identifier or arn:aws:rds:region:account:cluster:identifier (letters, digits, '-', globs * and ?), e.g. eu-west-1/orders-staging-*`;
  return undefined;
}

/**
 * The account check, once the target's ARN is known (the trigger's DescribeDBClusters): a
 * TargetNotAllowed problem when no entry admits the ARN's account, region and identifier.
 */
export function targetArnProblem(arn: string, policy: TargetPolicy): PolicyProblem | undefined {
  const allowed = policy.allowedTargets ?? [];
  const m = /^arn:aws[a-z-]*:rds:([^:]+):([^:]+):(?:cluster|db):([^:]+)$/.exec(arn);
  if (allowed.length === 0 || !m) return undefined;
  const [, region, account, identifier] = m as unknown as [string, string, string, string];
  if (isTargetAllowed({ region, identifier, account }, allowed, policy.defaultRegion ?? '')) return undefined;
  return {
    reason: 'TargetNotAllowed',
    message: `target ${arn} (account ${account}) is not in the controller's allowed targets (${allowed.join(', ')}): add it to the chart's allowedTargets (--allowed-targets) if failing it over is intended`,
  };
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
  // A Global Database action promotes a secondary cluster, named by its ARN: it must be allowed too.
  const promoted = spec.trigger.type === 'aws-rds' ? spec.trigger.targetDbClusterIdentifier : undefined;
  const promotedProblem = promoted ? targetArnProblem(promoted, policy) : undefined;
  if (promotedProblem)
    return {
      ...promotedProblem,
      message: `the secondary cluster to promote (trigger.targetDbClusterIdentifier): ${promotedProblem.message}`,
    };
  if (identifier === null || isTargetAllowed({ region: target.region, identifier }, allowed, defaultRegion))
    return undefined;
  const region = target.region || defaultRegion || '(default region)';
  return {
    reason: 'TargetNotAllowed',
    message: `target ${region}/${identifier} is not in the controller's allowed targets (${allowed.join(', ')}): add it to the chart's allowedTargets (--allowed-targets) if failing it over is intended`,
  };
}
