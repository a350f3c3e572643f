// The shell blocks of README.md and docs/*.md, with their doc-test markers, so that tests can
// run every documented command (docs are code). The convention, an HTML comment right above
// the fence (invisible on GitHub):
//   <!-- doc-test: SUITE -->             test/e2e runs the block in suite SUITE, in document order
//   <!-- doc-test: skip (REASON) -->     the block cannot run here; REASON says why
//   <!-- doc-test-expect: REGEX -->      the block's stdout must match REGEX (multiline)
//   <!-- doc-test-until: REGEX -->       the block keeps running (a watch): it is done once its
//                                        stdout matches REGEX, and is stopped when its suite ends
// test/unit/doc-blocks.test.ts fails when a block has no marker, so no new doc escapes.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The fence languages that are commands for a user to run. */
export const SHELL_LANGS = ['bash', 'sh', 'shell', 'console'];

/** Suites and the end-to-end test file that runs each. */
export const DOC_SUITES: Record<string, string> = {
  lab: 'test/e2e/docs-lab.test.ts',
  'dev-cluster': 'test/e2e/readme-operator.test.ts',
  helm: 'test/e2e/helm-install.test.ts',
};

export type DocMarker = { suite: string } | { skip: string };

export interface DocBlock {
  /** Path relative to the checkout, e.g. docs/lab.md. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  /** The block's text, its indentation removed. */
  code: string;
  marker?: DocMarker;
  expect: RegExp[];
  until?: RegExp;
  /** Marker comments that are not understood (a typo must not silently skip a block). */
  unknownMarkers: string[];
}

/** README.md, then docs/*.md in name order: the order the suites run them in. */
export function docFiles(root = ROOT): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort();
  return ['README.md', ...docs.map((f) => `docs/${f}`)];
}

/** Every shell block of one markdown text, with the markers in the comment lines above it. */
export function parseDocBlocks(file: string, text: string): DocBlock[] {
  const lines = text.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!;
    const lang = open[2]!;
    let end = i + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end++;
    const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l));
    const start = i;
    i = end;
    if (!SHELL_LANGS.includes(lang)) continue;
    const block: DocBlock = {
      file,
      line: start + 1,
      lang,
      code: body.join('\n'),
      expect: [],
      unknownMarkers: [],
    };
    for (let j = start - 1; j >= 0; j--) {
      const comment = /^\s*<!--\s*(doc-test[\w-]*):\s*(.*?)\s*-->\s*$/.exec(lines[j]!);
      if (!comment) break;
      const [, kind, value] = comment as unknown as [string, string, string];
      if (kind === 'doc-test') {
        const skip = /^skip\s*\((.+)\)$/.exec(value);
        block.marker = skip ? { skip: skip[1]!.trim() } : { suite: value };
      } else if (kind === 'doc-test-expect') block.expect.unshift(new RegExp(value, 'm'));
      else if (kind === 'doc-test-until') block.until = new RegExp(value, 'm');
      else block.unknownMarkers.push(lines[j]!.trim());
    }
    blocks.push(block);
  }
  return blocks;
}

export function docBlocks(root = ROOT): DocBlock[] {
  return docFiles(root).flatMap((f) => parseDocBlocks(f, readFileSync(join(root, f), 'utf8')));
}

/** The blocks of one suite, in document order. */
export function suiteBlocks(suite: string, root = ROOT): DocBlock[] {
  return docBlocks(root).filter((b) => b.marker && 'suite' in b.marker && b.marker.suite === suite);
}

export function where(b: DocBlock): string {
  return `${b.file}:${b.line}`;
}
