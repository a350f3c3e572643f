// The allowlist the chart's `allowedTargets` turns into `--allowed-targets`, and the
// rdsEndpoint override the controller honours only with --allow-rds-endpoint-override.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FailoverExperimentSpec } from '../../src/api/experiment-spec.ts';
import { parseAllowedTargets, parseProberNetworkPolicy } from '../../src/cli/operator.ts';
import {
  isTargetAllowed,
  targetArnProblem,
  targetPolicyProblem,
} from '../../src/controller/target-policy.ts';

const spec = (target: Record<string, unknown>, trigger = 'aws-rds') =>
  ({
    target: { kind: 'aurora-cluster', ...target },
    trigger: { type: trigger },
  }) as unknown as FailoverExperimentSpec;

describe('allowed targets', () => {
  it('admits any target when the list is empty', () => {
    assert.equal(isTargetAllowed({ identifier: 'orders-prod-pg' }, []), true);
  });

  it('admits listed identifiers exactly and prefix* entries by prefix, in the default region', () => {
    const allowed = ['orders-staging-pg', 'lab-*'];
    const ok = (identifier: string, region?: string) =>
      isTargetAllowed({ identifier, region }, allowed, 'eu-west-1');
    assert.equal(ok('orders-staging-pg'), true);
    assert.equal(ok('orders-staging-pg', 'eu-west-1'), true);
    assert.equal(ok('lab-aurora-1'), true);
    assert.equal(ok('orders-staging-pg-2'), false);
    assert.equal(ok('orders-prod-pg'), false);
    assert.equal(ok('xlab-1'), false);
    // The same name in another region is another cluster.
    assert.equal(ok('orders-staging-pg', 'us-east-1'), false);
  });

  it('matches region/identifier globs', () => {
    const allowed = ['eu-west-1/orders-staging-*', '*/lab-?', 'us-*-2/cat'];
    const ok = (region: string, identifier: string) => isTargetAllowed({ region, identifier }, allowed, '');
    assert.equal(ok('eu-west-1', 'orders-staging-pg'), true);
    assert.equal(ok('eu-west-2', 'orders-staging-pg'), false);
    assert.equal(ok('ap-northeast-1', 'lab-1'), true);
    assert.equal(ok('ap-northeast-1', 'lab-12'), false);
    assert.equal(ok('us-west-2', 'cat'), true);
    assert.equal(ok('us-west-1', 'cat'), false);
    // Dots and other RegExp characters are literal.
    assert.equal(isTargetAllowed({ region: 'eu-west-1', identifier: 'ab' }, ['eu-west-1/a.'], ''), false);
  });

  it('checks the account of account/region/identifier and ARN entries once the ARN is known', () => {
    const allowed = ['111122223333/eu-west-1/orders-*', 'arn:aws:rds:us-east-1:4444*:cluster:lab-?'];
    const policy = { allowedTargets: allowed, defaultRegion: 'eu-west-1' };
    // Before the ARN is known (the spec has no account): region and identifier only.
    assert.equal(isTargetAllowed({ region: 'eu-west-1', identifier: 'orders-pg' }, allowed), true);
    assert.equal(isTargetAllowed({ region: 'us-east-1', identifier: 'lab-1' }, allowed), true);
    assert.equal(isTargetAllowed({ region: 'us-east-1', identifier: 'orders-pg' }, allowed), false);
    // With the ARN of DescribeDBClusters: the account too.
    assert.equal(targetArnProblem('arn:aws:rds:eu-west-1:111122223333:cluster:orders-pg', policy), undefined);
    assert.equal(targetArnProblem('arn:aws:rds:us-east-1:444455556666:cluster:lab-1', policy), undefined);
    const other = targetArnProblem('arn:aws:rds:eu-west-1:999999999999:cluster:orders-pg', policy);
    assert.equal(other?.reason, 'TargetNotAllowed');
    assert.match(other!.message, /account 999999999999/);
    assert.equal(
      targetArnProblem('arn:aws:rds:us-east-1:555555555555:cluster:lab-1', policy)?.reason,
      'TargetNotAllowed',
    );
    // Entries without an account admit any account; no allowlist admits everything.
    assert.equal(
      targetArnProblem('arn:aws:rds:eu-west-1:9:cluster:x', { allowedTargets: ['eu-west-1/x'] }),
      undefined,
    );
    assert.equal(targetArnProblem('arn:aws:rds:eu-west-1:9:cluster:x', {}), undefined);
    assert.deepEqual(parseAllowedTargets('1234/eu-west-1/a,arn:aws:rds:eu-west-1:1234:cluster:b*'), [
      '1234/eu-west-1/a',
      'arn:aws:rds:eu-west-1:1234:cluster:b*',
    ]);
  });

  it('reads the comma list of --allowed-targets / FAILWATCH_ALLOWED_TARGETS and refuses malformed entries', () => {
    assert.deepEqual(parseAllowedTargets(' a, b ,,eu-west-1/c* '), ['a', 'b', 'eu-west-1/c*']);
    assert.deepEqual(parseAllowedTargets(''), []);
    assert.deepEqual(parseAllowedTargets(undefined), []);
    assert.throws(
      () => parseAllowedTargets('a/b/c/d'),
      /must be identifier, region\/identifier, account\/region\/identifier or arn:/,
    );
    assert.throws(
      () => parseAllowedTargets('eu-west-1/'),
      /must be identifier, region\/identifier, account\/region\/identifier or arn:/,
    );
    assert.throws(
      () => parseAllowedTargets('(.*)'),
      /must be identifier, region\/identifier, account\/region\/identifier or arn:/,
    );
  });

  it('a Global Database action: the secondary it promotes must be allowed too, by its ARN', () => {
    const s = {
      target: { kind: 'aurora-cluster', clusterIdentifier: 'orders-east', region: 'us-east-1' },
      trigger: {
        type: 'aws-rds',
        action: 'switchover-global-cluster',
        globalClusterIdentifier: 'orders-global',
        targetDbClusterIdentifier: 'arn:aws:rds:us-west-2:123456789012:cluster:orders-west',
      },
    } as unknown as FailoverExperimentSpec;
    assert.equal(targetPolicyProblem(s, { allowedTargets: ['*/orders-*'] }), undefined);
    const refused = targetPolicyProblem(s, { allowedTargets: ['us-east-1/orders-*'] });
    assert.equal(refused?.reason, 'TargetNotAllowed');
    assert.match(
      refused!.message,
      /^the secondary cluster to promote \(trigger\.targetDbClusterIdentifier\): target arn:aws:rds:us-west-2:123456789012:cluster:orders-west/,
    );
  });

  it('refuses rdsEndpoint without --allow-rds-endpoint-override, with the flag in the message', () => {
    const s = spec({ clusterIdentifier: 'lab-pg', rdsEndpoint: 'http://203.0.113.9/' });
    const refused = targetPolicyProblem(s, {});
    assert.equal(refused?.reason, 'RdsEndpointNotAllowed');
    assert.match(refused!.message, /--allow-rds-endpoint-override/);
    assert.equal(targetPolicyProblem(s, { allowRdsEndpointOverride: true }), undefined);
    // The allowlist still applies with the override.
    assert.equal(
      targetPolicyProblem(s, { allowRdsEndpointOverride: true, allowedTargets: ['other'] })?.reason,
      'TargetNotAllowed',
    );
    // trigger none makes no AWS call.
    assert.equal(
      targetPolicyProblem(spec({ clusterIdentifier: 'x', rdsEndpoint: 'http://x/' }, 'none'), {}),
      undefined,
    );
  });

  it('names region and identifier when refusing a target', () => {
    const refused = targetPolicyProblem(spec({ clusterIdentifier: 'orders-prod-pg', region: 'us-east-1' }), {
      allowedTargets: ['eu-west-1/orders-*'],
    });
    assert.equal(refused?.reason, 'TargetNotAllowed');
    assert.match(
      refused!.message,
      /target us-east-1\/orders-prod-pg is not in the controller's allowed targets \(eu-west-1\/orders-\*\)/,
    );
  });

  it('reads --prober-network-policy, refusing anything but label selectors', () => {
    const p = parseProberNetworkPolicy(
      '{"controllerPodSelector":{"matchLabels":{"app":"fw"}},"scraperNamespaceSelector":{"matchLabels":{"n":"mon"}}}',
      'failwatch-system',
    );
    assert.deepEqual(p, {
      controllerNamespace: 'failwatch-system',
      controllerPodSelector: { matchLabels: { app: 'fw' } },
      scraperNamespaceSelector: { matchLabels: { n: 'mon' } },
    });
    assert.throws(() => parseProberNetworkPolicy('{', 'x'), /not JSON/);
    assert.throws(() => parseProberNetworkPolicy('{}', 'x'), /controllerPodSelector/);
    assert.throws(
      () => parseProberNetworkPolicy('{"controllerPodSelector":{"matchLabels":{}},"ingress":[]}', 'x'),
      /unknown key ingress/,
    );
  });
});
