import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  experimentOpenApiSchema,
  failoverExperimentCrd,
  toStructuralSchema,
} from '../../src/api/openapi-schema.ts';
import { failoverScheduleCrd } from '../../src/api/schedule-spec.ts';

type Json = Record<string, any>;

/** Visits every schema node with its path. */
function walk(node: Json, path: string, visit: (node: Json, path: string) => void): void {
  visit(node, path);
  for (const [key, child] of Object.entries(node.properties ?? {}))
    walk(child as Json, `${path}.${key}`, visit);
  if (node.items) walk(node.items, `${path}[]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    walk(node.additionalProperties, `${path}{}`, visit);
  }
}

describe('experimentOpenApiSchema', () => {
  const schema = experimentOpenApiSchema() as Json;
  const spec = schema.properties.spec as Json;

  it('gives every property under spec and status a description (kubectl explain)', () => {
    const missing: string[] = [];
    for (const root of ['spec', 'status']) {
      walk(schema.properties[root] as Json, root, (node, path) => {
        if (typeof node.description !== 'string' || node.description.length < 3) missing.push(path);
      });
    }
    assert.deepEqual(missing, []);
  });

  it('is structural: a type on every node, no forbidden keywords, no additionalProperties false', () => {
    const problems: string[] = [];
    walk(schema, '', (node, path) => {
      if (path !== '' && path !== '.metadata' && typeof node.type !== 'string')
        problems.push(`${path}: no type`);
      for (const keyword of [
        'anyOf',
        'oneOf',
        'allOf',
        'not',
        'patternProperties',
        '$ref',
        '$id',
        '$schema',
        'const',
        'uniqueItems',
      ]) {
        if (keyword in node) problems.push(`${path}: ${keyword}`);
      }
      if (node.additionalProperties === false) problems.push(`${path}: additionalProperties false`);
      if (node.properties && node.additionalProperties !== undefined)
        problems.push(`${path}: properties with additionalProperties`);
      if (node.enum && node.type !== 'string') problems.push(`${path}: enum without type string`);
      for (const key of Object.keys(node)) if (key.startsWith('~')) problems.push(`${path}: ${key}`);
    });
    assert.deepEqual(problems, []);
  });

  it('never lists a defaulted field as required', () => {
    const problems: string[] = [];
    walk(schema, '', (node, path) => {
      for (const key of node.required ?? []) {
        if (node.properties?.[key]?.default !== undefined) problems.push(`${path}.${key}`);
      }
    });
    assert.deepEqual(problems, []);
  });

  it('carries the defaults, enums and bounds of the spec', () => {
    const endpoint = spec.properties.endpoints.items as Json;
    assert.equal(endpoint.properties.interval.default, '100ms');
    assert.deepEqual(endpoint.properties.dialect.enum, [
      'aurora-postgresql',
      'postgresql',
      'aurora-mysql',
      'mysql',
    ]);
    assert.equal(endpoint.properties.port.maximum, 65535);
    assert.equal(spec.properties.endpoints.maxItems, 16);
    assert.equal(endpoint.properties.probes['x-kubernetes-list-type'], 'set');
    assert.deepEqual(spec.properties.baseline.default, {});
  });

  it('has CEL rules for the cross-field constraints', () => {
    const rules = (node: Json) =>
      (node['x-kubernetes-validations'] ?? []).map((rule: Json) => rule.rule as string);
    assert.ok(rules(spec.properties.endpoints).some((rule: string) => rule.includes('f.name == e.name')));
    assert.ok(
      rules(spec).some((rule: string) => rule === "self.trigger.type != 'aws-rds' || has(self.target)"),
    );
    const interval = spec.properties.endpoints.items.properties.interval as Json;
    assert.match(rules(interval)[0], /duration\(self\) >= duration\('10ms'\)/);
    walk(schema, '', (node, path) => {
      for (const rule of node['x-kubernetes-validations'] ?? []) {
        assert.equal(typeof rule.message, 'string', path);
        if (rule.fieldPath) assert.match(rule.fieldPath, /^(\.[a-zA-Z]+)+$/, path);
      }
    });
  });

  it('is plain JSON (round-trips unchanged)', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(schema)), schema);
  });

  it('rewrites or rejects non-structural keywords', () => {
    assert.deepEqual(toStructuralSchema({ type: 'string', const: 'x' }), { type: 'string', enum: ['x'] });
    assert.throws(() => toStructuralSchema({ anyOf: [{ type: 'string' }] }), /anyOf/);
  });
});

describe('failoverExperimentCrd', () => {
  const crd = failoverExperimentCrd() as Json;
  const version = crd.spec.versions[0];

  it('is failwatch.io/v1alpha1 FailoverExperiment with the status subresource', () => {
    assert.equal(crd.metadata.name, 'failoverexperiments.failwatch.io');
    assert.equal(version.name, 'v1alpha1');
    assert.deepEqual(version.subresources, { status: {} });
  });

  it('has printer columns that point at fields of the schema', () => {
    const status = version.schema.openAPIV3Schema.properties.status.properties;
    assert.deepEqual(
      version.additionalPrinterColumns.map((column: Json) => column.name),
      ['Phase', 'Reason', 'Target', 'Worst downtime', 'Verdict', 'Age'],
    );
    const target = version.schema.openAPIV3Schema.properties.spec.properties.target.properties;
    for (const column of version.additionalPrinterColumns) {
      const match = /^\.status\.(\w+)$/.exec(column.jsonPath);
      if (match) assert.ok(status[match[1]!], column.jsonPath);
      for (const field of column.jsonPath.match(/'(\w+)'/g) ?? [])
        assert.ok(target[field.slice(1, -1)], column.jsonPath);
    }
  });

  it('marks no defaulted field required and states every default in its description', () => {
    const check = (node: Json, path: string): void => {
      for (const [key, child] of Object.entries((node.properties ?? {}) as Record<string, Json>)) {
        if ('default' in child) {
          assert.ok(!(node.required ?? []).includes(key), `${path}.${key} is defaulted but required`);
          const empty = typeof child.default === 'object' && Object.keys(child.default ?? {}).length === 0;
          if (!empty) assert.match(child.description, / Default: .+\.$/, `${path}.${key}`);
        }
        check(child, `${path}.${key}`);
      }
      if (node.items) check(node.items, `${path}[]`);
    };
    check(version.schema.openAPIV3Schema, 'FailoverExperiment');
    const schedule = (failoverScheduleCrd() as Json).spec.versions[0].schema.openAPIV3Schema;
    check(schedule, 'FailoverSchedule');
    assert.deepEqual(schedule.properties.spec.required, ['schedule', 'experimentTemplate']);
    assert.match(schedule.properties.spec.properties.timeZone.description, /Default: UTC\.$/);
  });
});
