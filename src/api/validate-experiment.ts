// Runtime validation of a FailoverExperiment against the one schema (experiment-spec.ts):
// defaults applied, every bad field reported by path with a readable message.
import type { TSchema } from 'typebox';
import { Settings } from 'typebox/system';
import Value from 'typebox/value';
import { DURATION_PATTERN } from './duration.ts';
import {
  DB_USER_PATTERN,
  DNS_LABEL_PATTERN,
  ENV_NAME_PATTERN,
  EXPERIMENT_API_VERSION,
  EXPERIMENT_KIND,
  type FailoverExperimentSpec,
  FailoverExperimentSpecInputSchema,
  HOST_PATTERN,
  HOST_PORT_PATTERN,
  HTTP_URL_PATTERN,
  INSTANCE_CLASS_PATTERN,
  RDS_IDENTIFIER_PATTERN,
  SECRET_KEY_PATTERN,
  SQL_IDENTIFIER_PATTERN,
} from './experiment-spec.ts';
import { type FieldError, joinPath, pointerSegments } from './field-errors.ts';
import { DNS_SUBDOMAIN_PATTERN, LABEL_VALUE_PATTERN, QUANTITY_PATTERN } from './kube-patterns.ts';
import { sampleBudgetErrors } from './sample-budget.ts';
import { RULE_FIELD_SEPARATOR } from './schema-builders.ts';

const MAX_ERRORS = 200;

const PATTERN_MESSAGES: Record<string, string> = {
  [DURATION_PATTERN]: 'must be a duration like 100ms, 30s, 2m or 1h30m',
  [DNS_LABEL_PATTERN]:
    'must be a lowercase DNS label: a-z, 0-9 and -, starting and ending with a letter or digit',
  [RDS_IDENTIFIER_PATTERN]:
    'must be an RDS identifier: a letter, then letters, digits or hyphens (at most 63)',
  [SQL_IDENTIFIER_PATTERN]:
    'must be a plain SQL identifier: letters, digits and _, not starting with a digit',
  [HOST_PORT_PATTERN]: 'must be address:port, e.g. 127.0.0.53:53',
  [HOST_PATTERN]:
    'must be a host name (letters, digits, - and . between labels, e.g. db.example.com) or an IP address',
  [DNS_SUBDOMAIN_PATTERN]:
    "must be a Kubernetes object name: lowercase a-z, 0-9, '-' and '.', starting and ending with a letter or digit",
  [SECRET_KEY_PATTERN]: "must be a Secret key: letters, digits, '-', '_' and '.'",
  [DB_USER_PATTERN]: "must be a user name: a letter or _, then letters, digits, '_', '.', '@' or '-'",
  [HTTP_URL_PATTERN]: 'must be an http:// or https:// URL',
  [INSTANCE_CLASS_PATTERN]:
    'must be an RDS DB instance class, e.g. db.r6g.large, db.t4g.medium or db.serverless',
  [ENV_NAME_PATTERN]: 'must be an environment variable name, e.g. PGPASSWORD',
  [LABEL_VALUE_PATTERN]:
    "must be a label value, e.g. a zone such as us-east-1a: letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
  [QUANTITY_PATTERN]: 'must be a Kubernetes quantity, e.g. 50m, 1, 64Mi or 1Gi',
};

const TYPE_WORDS: Record<string, string> = {
  object: 'a map',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
};

export interface ExperimentManifest {
  apiVersion: typeof EXPERIMENT_API_VERSION;
  kind: typeof EXPERIMENT_KIND;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: FailoverExperimentSpec;
}

export type Validation<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

function show(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return `${typeof value} \`${show(value)}\``;
}

function valueAt(root: unknown, segments: readonly string[]): unknown {
  let current = root;
  for (const segment of segments) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

function schemaAt(root: TSchema, pointer: string): Record<string, unknown> | undefined {
  let current: unknown = root;
  for (const segment of pointerSegments(pointer)) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current as Record<string, unknown> | undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(
        row[j]! + 1,
        row[j - 1]! + 1,
        diagonal + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1),
      );
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function suggestion(unknownKey: string, known: readonly string[]): string {
  const best = known
    .map((key) => ({ key, distance: editDistance(unknownKey, key) }))
    .sort((a, b) => a.distance - b.distance)[0];
  return best && best.distance <= Math.max(2, Math.floor(unknownKey.length / 3))
    ? ` (did you mean \`${best.key}\`?)`
    : '';
}

interface RawError {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

function fieldErrors(schema: TSchema, raw: RawError, root: unknown, base: string[]): FieldError[] {
  const segments = [...base, ...pointerSegments(raw.instancePath)];
  const value = valueAt(root, pointerSegments(raw.instancePath));
  const at = (message: string, extra: string[] = []): FieldError => ({
    path: joinPath([...segments, ...extra]),
    message,
  });
  const params = raw.params;
  switch (raw.keyword) {
    case 'boolean':
      return []; // reported by additionalProperties with the field's name
    case 'required':
      return (params.requiredProperties as string[]).map((key) => at('is required', [key]));
    case 'additionalProperties': {
      const properties = Object.keys(
        (schemaAt(schema, raw.schemaPath)?.properties as object | undefined) ?? {},
      );
      return (params.additionalProperties as string[]).map((key) =>
        at(`is not a known field${suggestion(key, properties)}`, [key]),
      );
    }
    case 'enum':
      return [at(`must be one of ${(params.allowedValues as string[]).join(', ')} (got \`${show(value)}\`)`)];
    case 'pattern':
      return [at(`${PATTERN_MESSAGES[params.pattern as string] ?? raw.message} (got \`${show(value)}\`)`)];
    case 'type': {
      if (schemaAt(schema, raw.schemaPath)?.pattern === DURATION_PATTERN) {
        return [at(`${PATTERN_MESSAGES[DURATION_PATTERN]} (got ${describeType(value)}; add a unit)`)];
      }
      return [
        at(`must be ${TYPE_WORDS[params.type as string] ?? `a ${params.type}`} (got ${describeType(value)})`),
      ];
    }
    case 'uniqueItems':
      return [at('must not list the same value twice')];
    case 'minItems':
      return [at(params.limit === 1 ? 'must list at least one item' : raw.message)];
    case '~refine':
      return []; // rules are evaluated by ruleErrors, also where a child field failed
    default:
      return [at(typeof value === 'object' ? raw.message : `${raw.message} (got \`${show(value)}\`)`)];
  }
}

interface Refinement {
  check: (value: unknown) => boolean;
  error: (value: unknown) => string;
}

function ruleError(refinement: Refinement, value: unknown, segments: string[]): FieldError {
  const [fieldPath = '', message = ''] = refinement.error(value).split(RULE_FIELD_SEPARATOR);
  const extra = fieldPath.split('.').filter(Boolean);
  const got = extra.length === 0 && typeof value === 'string' ? ` (got \`${show(value)}\`)` : '';
  return { path: joinPath([...segments, ...extra]), message: `${message}${got}` };
}

/**
 * Cross-field rules (TypeBox refinements) of every object present, even where a child field is
 * bad, so one pass lists every problem (the apiserver evaluates CEL rules the same way).
 */
function hasSchemaType(schema: Record<string, unknown>, value: unknown): boolean {
  switch (schema.type) {
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    default:
      return true;
  }
}

function ruleErrors(schema: Record<string, unknown>, value: unknown, segments: string[]): FieldError[] {
  const errors: FieldError[] = [];
  if (!hasSchemaType(schema, value)) return errors; // the type error says it all
  for (const refinement of (schema['~refine'] as Refinement[] | undefined) ?? []) {
    if (!refinement.check(value)) errors.push(ruleError(refinement, value, segments));
  }
  const properties = schema.properties as Record<string, Record<string, unknown>> | undefined;
  if (properties && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(properties)) {
      const childValue = (value as Record<string, unknown>)[key];
      if (childValue !== undefined) errors.push(...ruleErrors(child, childValue, [...segments, key]));
    }
  }
  const items = schema.items as Record<string, unknown> | undefined;
  if (items && Array.isArray(value)) {
    value.forEach((item, index) => {
      errors.push(...ruleErrors(items, item, [...segments, String(index)]));
    });
  }
  return errors;
}

const byPath = (a: FieldError, b: FieldError) => a.path.localeCompare(b.path, 'en', { numeric: true });

function collectErrors(schema: TSchema, value: unknown, base: string[]): FieldError[] {
  const previous = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: MAX_ERRORS });
  try {
    const raw = Value.Errors(schema, value) as unknown as RawError[];
    const seen = new Set<string>();
    const errors: FieldError[] = [];
    const all = [
      ...raw.flatMap((entry) => fieldErrors(schema, entry, value, base)),
      ...ruleErrors(schema as unknown as Record<string, unknown>, value, base),
    ].sort(byPath);
    for (const error of all) {
      const key = `${error.path}\n${error.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      errors.push(error);
    }
    return errors;
  } finally {
    Settings.Set({ maxErrors: previous });
  }
}

/** Validates a spec (what users write) and returns it with defaults applied. */
export function validateExperimentSpec(
  input: unknown,
  basePath = 'spec',
): Validation<FailoverExperimentSpec> {
  const base = basePath ? basePath.split('.') : [];
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, errors: [{ path: basePath, message: `must be a map (got ${describeType(input)})` }] };
  }
  const withDefaults = Value.Default(FailoverExperimentSpecInputSchema, structuredClone(input));
  const errors = collectErrors(FailoverExperimentSpecInputSchema, withDefaults, base);
  if (errors.length > 0) return { ok: false, errors };
  // Not expressible as CEL within the apiserver's cost budget: the controller applies it and
  // reports it as an InvalidSpec condition.
  const budget = sampleBudgetErrors(withDefaults as FailoverExperimentSpec, basePath);
  if (budget.length > 0) return { ok: false, errors: budget };
  return { ok: true, value: withDefaults as FailoverExperimentSpec };
}

const METADATA_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Validates a whole manifest (apiVersion, kind, metadata, spec); every bad field is listed. */
export function validateExperimentManifest(input: unknown): Validation<ExperimentManifest> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return {
      ok: false,
      errors: [{ path: '', message: `the manifest must be a map (got ${describeType(input)})` }],
    };
  }
  const doc = input as Record<string, unknown>;
  const errors: FieldError[] = [];
  if (doc.apiVersion !== EXPERIMENT_API_VERSION) {
    errors.push({
      path: 'apiVersion',
      message: `must be ${EXPERIMENT_API_VERSION} (got \`${show(doc.apiVersion)}\`)`,
    });
  }
  if (doc.kind !== EXPERIMENT_KIND) {
    errors.push({ path: 'kind', message: `must be ${EXPERIMENT_KIND} (got \`${show(doc.kind)}\`)` });
  }
  const metadata = doc.metadata as Record<string, unknown> | undefined;
  if (metadata === null || typeof metadata !== 'object') {
    errors.push({ path: 'metadata', message: 'is required, with at least a name' });
  } else if (
    typeof metadata.name !== 'string' ||
    metadata.name.length > 253 ||
    !METADATA_NAME.test(metadata.name)
  ) {
    errors.push({
      path: 'metadata.name',
      message: `must be a lowercase DNS name like lab-failover (got \`${show(metadata.name)}\`)`,
    });
  }
  for (const key of Object.keys(doc)) {
    if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(key)) {
      errors.push({ path: key, message: 'is not a known field' });
    }
  }
  const spec = doc.spec === undefined ? null : validateExperimentSpec(doc.spec, 'spec');
  if (spec === null) errors.push({ path: 'spec', message: 'is required' });
  else if (!spec.ok) errors.push(...spec.errors);
  if (errors.length > 0 || !spec?.ok) return { ok: false, errors };
  const { name, namespace, labels, annotations } = metadata as ExperimentManifest['metadata'];
  return {
    ok: true,
    value: {
      apiVersion: EXPERIMENT_API_VERSION,
      kind: EXPERIMENT_KIND,
      metadata: {
        name,
        ...(namespace ? { namespace } : {}),
        ...(labels ? { labels } : {}),
        ...(annotations ? { annotations } : {}),
      },
      spec: spec.value,
    },
  };
}
