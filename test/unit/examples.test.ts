// Every example manifest is valid as shipped (the same files users copy).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { loadExperimentFile } from '../../src/api/load-experiment.ts';

const dir = new URL('../../examples/', import.meta.url);

test('every example manifest validates', async () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 4, `${files.length} examples`);
  for (const f of files) {
    const m = await loadExperimentFile(new URL(f, dir).pathname);
    assert.equal(m.kind, 'FailoverExperiment', f);
    assert.ok(m.spec.endpoints.length >= 2, `${f} probes at least two endpoints`);
  }
});
