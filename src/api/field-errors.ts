/** One bad field of a manifest: where it is and what is wrong, in words a user can act on. */
export interface FieldError {
  /** Dotted path with indexes, e.g. `spec.endpoints[1].interval`. */
  path: string;
  message: string;
}

/** A manifest that failed validation; `errors` lists every bad field. */
export class ExperimentValidationError extends Error {
  readonly code = 'INVALID_EXPERIMENT';
  readonly errors: FieldError[];
  readonly source: string | undefined;

  constructor(errors: FieldError[], source?: string) {
    super(`${source ? `${source}: ` : ''}invalid FailoverExperiment:\n${formatFieldErrors(errors)}`);
    this.name = 'ExperimentValidationError';
    this.errors = errors;
    this.source = source;
  }
}

export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((error) => `  - ${error.path}: ${error.message}`).join('\n');
}

/** `['spec', 'endpoints', '0', 'name']` -> `spec.endpoints[0].name`. */
export function joinPath(segments: readonly string[]): string {
  let path = '';
  for (const segment of segments) {
    if (/^[0-9]+$/.test(segment)) path += `[${segment}]`;
    else path += path === '' ? segment : `.${segment}`;
  }
  return path;
}

/** JSON pointer (`/endpoints/0/name`) to segments. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '#') return [];
  return pointer
    .replace(/^#?\//, '')
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}
