import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { analyzeRun } from '../../src/analysis/analyze-run.ts';
import { ERROR_CLASSES } from '../../src/analysis/error-class.ts';
import { syntheticRun } from './analysis-synthetic-run.ts';

const doc = readFileSync(new URL('../../docs/results.md', import.meta.url), 'utf8');

function fieldNames(value: unknown, names = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) fieldNames(item, names);
  else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (!(ERROR_CLASSES as readonly string[]).includes(key)) names.add(key);
      fieldNames(child, names);
    }
  }
  return names;
}

describe('docs/results.md', () => {
  it('documents every field analyzeRun produces', () => {
    const documented = (name: string) =>
      [`\`${name}\``, `.${name}\``, `\`${name}.`, `\`${name}[]`, `.${name}[]`].some((form) =>
        doc.includes(form),
      );
    const missing = [...fieldNames(analyzeRun(syntheticRun()))].filter((name) => !documented(name));
    assert.deepEqual(missing, []);
  });

  it('lists every error class and the definitions of the design', () => {
    for (const name of ERROR_CLASSES)
      assert.ok(
        doc.includes(`| \`${name}\``) || doc.includes(`\`${name}\` /`) || doc.includes(`/ \`${name}\``),
        name,
      );
    for (const definition of [
      '**outage window**',
      '**downtime**',
      '**stall**',
      '**role flip**',
      '**DNS flip**',
      '**lost write**',
      '**ambiguous write**',
      '**server-side gap**',
    ]) {
      assert.ok(doc.includes(definition), definition);
    }
  });
});
