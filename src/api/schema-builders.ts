// Small builders over TypeBox so that one definition yields the TS type, the runtime check and
// the CRD's structural OpenAPI schema (including CEL `x-kubernetes-validations`).
import Type, { type Static, type TOptional, type TSchema } from 'typebox';
import { DURATION_PATTERN, isDuration, parseDurationMs } from './duration.ts';

/**
 * A cross-field rule, written twice side by side: as CEL for the apiserver and as a TS check for
 * `failwatch run`. `self` is the object the rule is attached to. Keep the two equivalent.
 */
export interface Rule<Self> {
  /** CEL expression, `self` = this object (Kubernetes x-kubernetes-validations). */
  cel: string;
  message: string;
  /** Field the error is about, relative to this object, e.g. `.target` (CEL fieldPath). */
  fieldPath?: string;
  check: (self: Self) => boolean;
}

/** Separates a rule's fieldPath from its message in refine errors (see validate-experiment.ts). */
export const RULE_FIELD_SEPARATOR = '\u001f';

type Mutable = Record<string, unknown>;

/** Attaches rules: the CEL for the CRD, the TS check for local validation. */
export function withRules<S extends TSchema, Self = Static<S>>(schema: S, rules: Rule<Self>[]): S {
  const target = schema as unknown as Mutable;
  const existing = (target['x-kubernetes-validations'] as unknown[] | undefined) ?? [];
  target['x-kubernetes-validations'] = [
    ...existing,
    ...rules.map((rule) => ({
      rule: rule.cel,
      message: rule.message,
      ...(rule.fieldPath ? { fieldPath: rule.fieldPath } : {}),
    })),
  ];
  let refined: TSchema = schema;
  for (const rule of rules) {
    refined = Type.Refine(
      refined,
      (value) => safeCheck(rule, value as Self),
      () => `${rule.fieldPath ?? ''}${RULE_FIELD_SEPARATOR}${rule.message}`,
    );
  }
  return refined as S;
}

function safeCheck<Self>(rule: Rule<Self>, value: Self): boolean {
  try {
    return rule.check(value);
  } catch {
    // A malformed value is reported by the structural checks; the rule has nothing to add.
    return true;
  }
}

export type Defaulted<Resolved extends boolean, T extends TSchema> = Resolved extends true ? T : TOptional<T>;

/**
 * A field with a default: optional in what users write (`Resolved = false`), present in the
 * spec after defaults were applied (`Resolved = true`). The schema is the same.
 */
export function defaulted<Resolved extends boolean, T extends TSchema>(
  resolved: Resolved,
  schema: T,
): Defaulted<Resolved, T> {
  return (resolved ? schema : Type.Optional(schema)) as Defaulted<Resolved, T>;
}

/** A string enum, structural for Kubernetes (`type: string` + `enum`). */
export function stringEnum<const Values extends string[]>(
  values: readonly [...Values],
  options: { description: string; default?: Values[number] },
) {
  return Type.Enum(values, { type: 'string', ...options });
}

/** CEL: true when `expr` (a string) is a duration we accept, so duration(expr) cannot fail. */
export function celIsDuration(expr: string): string {
  return `${expr}.matches('${DURATION_PATTERN.replaceAll('\\.', '[.]')}')`;
}

export interface DurationOptions {
  description: string;
  default?: string;
  min?: string;
  max?: string;
}

/** A Kubernetes-style duration string (`100ms`, `30s`, `2m`) with optional bounds. */
export function durationString(options: DurationOptions) {
  const { min, max, ...annotations } = options;
  const bounds = [min ? `at least ${min}` : '', max ? `at most ${max}` : ''].filter(Boolean).join(' and ');
  const description = `${annotations.description} A duration like 100ms, 30s or 2m${bounds ? `, ${bounds}` : ''}.`;
  const schema = Type.String({ ...annotations, description, pattern: DURATION_PATTERN, maxLength: 32 });
  if (!min && !max) return schema;
  const cel = [
    min ? `duration(self) >= duration('${min}')` : '',
    max ? `duration(self) <= duration('${max}')` : '',
  ]
    .filter(Boolean)
    .join(' && ');
  const minMs = min ? parseDurationMs(min) : 0;
  const maxMs = max ? parseDurationMs(max) : Number.POSITIVE_INFINITY;
  return withRules<typeof schema, string>(schema, [
    {
      cel: `!${celIsDuration('self')} || (${cel})`,
      message: `must be ${bounds}`,
      check: (value) =>
        !isDuration(value) || (parseDurationMs(value) >= minMs && parseDurationMs(value) <= maxMs),
    },
  ]);
}
