import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { analyzeRun } from '../../src/analysis/analyze-run.ts';
import { ERROR_CLASSES } from '../../src/analysis/error-class.ts';
import { fixedRateLane, syntheticRun, T0_MS } from './analysis-synthetic-run.ts';

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
    // With a topology probe on the cluster endpoint (no writer 5-8 s), for the phase fields too.
    const withTopology = syntheticRun();
    withTopology.endpoints.find((e) => e.name === 'cluster')!.probes.push('topology');
    withTopology.samples = [
      ...withTopology.samples,
      ...fixedRateLane({
        endpoint: 'cluster',
        kind: 'topology',
        fromMs: T0_MS - 10_000,
        toMs: T0_MS + 30_000,
        intervalMs: 100,
        outcomeAt: (startMs) =>
          startMs < T0_MS + 5000
            ? { class: 'ok', server: 'pg-1' }
            : startMs < T0_MS + 8000
              ? { class: 'read_only', code: 'NO_WRITER' }
              : { class: 'ok', server: 'pg-2' },
      }),
    ];
    const results = analyzeRun(withTopology);
    assert.ok(results.endpoints.find((e) => e.name === 'cluster')!.phases);
    const names = new Set([...fieldNames(analyzeRun(syntheticRun())), ...fieldNames(results)]);
    const missing = [...names].filter((name) => !documented(name));
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
