// Numeric command-line options, checked: a malformed value is a UsageError (exit 2), never a
// NaN that silently breaks what it configures.
import { UsageError } from './usage.ts';

/** `--name N`: an integer from min to max, or `fallback` when absent. */
export function intOption(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max} (got "${value}")`);
  return n;
}

/** `--name a,b`: each item one of `allowed`, or `fallback` when absent. */
export function listOption<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: readonly T[],
): T[] {
  if (value === undefined) return [...fallback];
  const items = value.split(',').map((s) => s.trim());
  for (const item of items)
    if (!allowed.includes(item as T))
      throw new UsageError(`--${name}: unknown value "${item}" (use ${allowed.join(',')})`);
  return items as T[];
}
