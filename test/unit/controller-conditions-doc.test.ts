// The condition types and reasons the controller can write are exactly the documented ones:
// docs/troubleshooting.md names each in backticks, and every failure reason has a table row.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CLASSES } from '../../src/analysis/error-class.ts';
import {
  CONDITION_REASONS,
  CONDITION_TYPES,
  endpointMessage,
  RUN_FAILURE_REASONS,
  SETUP_FAILURE_REASONS,
  TRIGGER_FAILURE_REASONS,
} from '../../src/controller/conditions.ts';
import { setupReason } from '../../src/engine/run-experiment.ts';

const doc = readFileSync(new URL('../../docs/troubleshooting.md', import.meta.url), 'utf8');
const tableRows = new Set([...doc.matchAll(/^\| `([A-Za-z]+)`/gm)].map((m) => m[1]));

describe('docs/troubleshooting.md and the controller agree', () => {
  it('documents every condition type in the Condition types table', () => {
    const missing = CONDITION_TYPES.filter((t) => !tableRows.has(t));
    assert.deepEqual(missing, [], `condition types missing from the table: ${missing.join(', ')}`);
  });

  it('names every reason the controller can write', () => {
    assert.ok(CONDITION_REASONS.length >= 35, `${CONDITION_REASONS.length} reasons`);
    const missing = CONDITION_REASONS.filter((r) => !doc.includes(`\`${r}\``));
    assert.deepEqual(missing, [], `reasons missing from the doc: ${missing.join(', ')}`);
  });

  it('has a table row (meaning, what to do) for every failure reason', () => {
    const failures = [...RUN_FAILURE_REASONS, ...SETUP_FAILURE_REASONS, ...TRIGGER_FAILURE_REASONS];
    const missing = failures.filter((r) => !tableRows.has(r));
    assert.deepEqual(missing, [], `failure reasons without a row: ${missing.join(', ')}`);
  });

  it('lists every reason setupReason() can return', () => {
    const returned = new Set(ERROR_CLASSES.map((c) => setupReason(c)));
    for (const reason of returned)
      assert.ok((SETUP_FAILURE_REASONS as readonly string[]).includes(reason), reason);
  });
});

describe('endpointMessage', () => {
  it('prefixes a message once', () => {
    assert.equal(endpointMessage('cluster', 'refused'), 'endpoint `cluster`: refused');
    assert.equal(endpointMessage('cluster', 'endpoint `cluster`: refused'), 'endpoint `cluster`: refused');
  });
});
