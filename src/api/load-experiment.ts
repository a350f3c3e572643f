import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { ExperimentValidationError } from './field-errors.ts';
import { type ExperimentManifest, validateExperimentManifest } from './validate-experiment.ts';

/**
 * Parses one FailoverExperiment manifest from YAML (or JSON) text; returns it with defaults
 * applied, or throws an ExperimentValidationError listing every bad field by path.
 */
export function parseExperimentManifest(text: string, source = 'experiment'): ExperimentManifest {
  const documents = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(documents) ? documents : [documents];
  const syntaxErrors = list.flatMap((doc) => doc.errors);
  if (syntaxErrors.length > 0) {
    throw new ExperimentValidationError(
      syntaxErrors.map((error) => {
        const position = error.linePos?.[0];
        return {
          path: position ? `line ${position.line}, column ${position.col}` : '(yaml)',
          message: error.message.split('\n')[0]!,
        };
      }),
      source,
    );
  }
  const contents = list.filter((doc) => doc.contents !== null);
  if (contents.length !== 1) {
    throw new ExperimentValidationError(
      [{ path: '(file)', message: `must hold exactly one YAML document, found ${contents.length}` }],
      source,
    );
  }
  const result = validateExperimentManifest(contents[0]!.toJS());
  if (!result.ok) throw new ExperimentValidationError(result.errors, source);
  return result.value;
}

/** Reads and validates an experiment file (`failwatch run experiment.yaml`). */
export async function loadExperimentFile(path: string): Promise<ExperimentManifest> {
  return parseExperimentManifest(await readFile(path, 'utf8'), path);
}
