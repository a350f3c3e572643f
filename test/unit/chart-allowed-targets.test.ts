// The allowlist the chart's `allowedTargets` turns into `--allowed-targets`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAllowedTargets } from '../../src/cli/operator.ts';
import { isTargetAllowed } from '../../src/controller/experiment-reconciler.ts';

describe('allowed targets', () => {
  it('admits any target when the list is empty', () => {
    assert.equal(isTargetAllowed('orders-prod-pg', []), true);
  });

  it('admits listed identifiers exactly and prefix* entries by prefix', () => {
    const allowed = ['orders-staging-pg', 'lab-*'];
    assert.equal(isTargetAllowed('orders-staging-pg', allowed), true);
    assert.equal(isTargetAllowed('lab-aurora-1', allowed), true);
    assert.equal(isTargetAllowed('orders-staging-pg-2', allowed), false);
    assert.equal(isTargetAllowed('orders-prod-pg', allowed), false);
    assert.equal(isTargetAllowed('xlab-1', allowed), false);
  });

  it('reads the comma list of --allowed-targets / FAILWATCH_ALLOWED_TARGETS', () => {
    assert.deepEqual(parseAllowedTargets(' a, b ,,c '), ['a', 'b', 'c']);
    assert.deepEqual(parseAllowedTargets(''), []);
    assert.deepEqual(parseAllowedTargets(undefined), []);
  });
});
