// The CRD's structural OpenAPI v3 schema, derived from the TypeBox definitions so the CRD, the
// TS types and `failwatch run`'s validation cannot drift. crds/*.yaml is generated from this.
import type { TSchema } from 'typebox';
import {
  API_GROUP,
  API_VERSION,
  EXPERIMENT_KIND,
  FailoverExperimentSpecInputSchema,
} from './experiment-spec.ts';
import { FailoverExperimentStatusSchema } from './experiment-status.ts';

type Json = Record<string, unknown>;

/** Keywords the apiextensions structural-schema rules forbid or we never emit. */
const DROPPED_KEYWORDS = ['$id', '$schema', 'examples', '$defs', 'definitions'];
const FORBIDDEN_KEYWORDS = [
  'anyOf',
  'oneOf',
  'allOf',
  'not',
  'patternProperties',
  'if',
  'then',
  'else',
  '$ref',
];

/**
 * Rewrites a JSON schema into the structural form apiextensions.k8s.io/v1 accepts:
 * no `additionalProperties: false` (unknown fields are pruned or rejected by field validation),
 * `uniqueItems` becomes `x-kubernetes-list-type: set`, `const` becomes a one-value enum.
 */
export function toStructuralSchema(schema: TSchema | Json, path = '#'): Json {
  const node: Json = JSON.parse(JSON.stringify(schema));
  for (const keyword of FORBIDDEN_KEYWORDS) {
    if (keyword in node) throw new Error(`${path}: \`${keyword}\` is not allowed in a structural schema`);
  }
  for (const keyword of DROPPED_KEYWORDS) delete node[keyword];
  if (node.additionalProperties === false) delete node.additionalProperties;
  if (node.uniqueItems === true) {
    delete node.uniqueItems;
    node['x-kubernetes-list-type'] = 'set';
  }
  if ('const' in node) {
    node.enum = [node.const];
    delete node.const;
  }
  const defaultText = describeDefault(node.default);
  if (defaultText && typeof node.description === 'string' && !node.description.includes('Default: '))
    node.description = `${node.description} Default: ${defaultText}.`;
  if (node.properties) {
    const properties: Json = {};
    for (const [key, child] of Object.entries(node.properties as Json)) {
      properties[key] = toStructuralSchema(child as Json, `${path}/properties/${key}`);
    }
    node.properties = properties;
    // A field with a default is never missing once the API server applied it: what users
    // write may leave it out, so `kubectl explain` must not call it required.
    if (Array.isArray(node.required)) {
      const required = (node.required as string[]).filter(
        (key) => !('default' in ((properties[key] as Json) ?? {})),
      );
      if (required.length > 0) node.required = required;
      else delete node.required;
    }
  }
  if (node.items) node.items = toStructuralSchema(node.items as Json, `${path}/items`);
  if (node.additionalProperties && typeof node.additionalProperties === 'object') {
    node.additionalProperties = toStructuralSchema(
      node.additionalProperties as Json,
      `${path}/additionalProperties`,
    );
  }
  return node;
}

/**
 * A default as the field descriptions state it (`Default: 100ms.`); undefined for an empty
 * object default, whose fields state their own.
 */
export function describeDefault(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return Object.keys(value).length === 0 ? undefined : JSON.stringify(value);
  }
  if (Array.isArray(value)) return value.map(String).join(', ');
  return String(value);
}

/** openAPIV3Schema of FailoverExperiment v1alpha1. */
export function experimentOpenApiSchema(): Json {
  return toStructuralSchema({
    type: 'object',
    description:
      'A FailoverExperiment fails a database over once and measures, per endpoint, how long it was really unavailable.',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this object: failwatch.io/v1alpha1.' },
      kind: { type: 'string', description: 'Kind of this object: FailoverExperiment.' },
      metadata: { type: 'object' },
      spec: FailoverExperimentSpecInputSchema,
      status: FailoverExperimentStatusSchema,
    },
  });
}

export interface CrdNames {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
}

/** A namespaced CRD of failwatch.io/v1alpha1 with a status subresource: the part all kinds share. */
export function namespacedCrd(names: CrdNames, printerColumns: Json[], openAPIV3Schema: Json): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: names.kind,
        listKind: `${names.kind}List`,
        plural: names.plural,
        singular: names.singular,
        shortNames: names.shortNames,
        categories: ['failwatch'],
      },
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: printerColumns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

/** The whole CustomResourceDefinition object for FailoverExperiment. */
export function failoverExperimentCrd(): Json {
  return namespacedCrd(
    {
      kind: EXPERIMENT_KIND,
      plural: 'failoverexperiments',
      singular: 'failoverexperiment',
      shortNames: ['fx'],
    },
    [
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      {
        name: 'Reason',
        type: 'string',
        jsonPath: '.status.reason',
        description: 'Why it waits (Pending) or failed (Failed)',
      },
      {
        name: 'Target',
        type: 'string',
        // From the spec, so it shows for runs that failed before they started.
        jsonPath: ".spec.target['clusterIdentifier','instanceIdentifier']",
        description: 'The DB cluster or instance that fails over',
      },
      {
        name: 'Worst downtime',
        type: 'string',
        jsonPath: '.status.worstDowntime',
        description: 'Largest write or read downtime of any endpoint',
      },
      { name: 'Verdict', type: 'string', jsonPath: '.status.verdict' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    experimentOpenApiSchema(),
  );
}
