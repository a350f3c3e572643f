// Every example manifest is valid as shipped (the same files users copy).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
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

test('every example is run end to end by an e2e test (named in test/e2e or its helpers)', () => {
  const sources = ['../e2e/', '../helpers/']
    .flatMap((sub) => {
      const d = new URL(sub, import.meta.url);
      return readdirSync(d)
        .filter((f) => f.endsWith('.ts'))
        .map((f) => readFileSync(new URL(f, d), 'utf8'));
    })
    .join('\n');
  const unreferenced = readdirSync(dir).filter((f) => !sources.includes(f));
  assert.deepEqual(unreferenced, [], 'examples no e2e test runs: add them to test/e2e/examples.test.ts');
});
