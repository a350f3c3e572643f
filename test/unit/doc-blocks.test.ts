// Every shell block of README.md and docs/*.md is either run by an end-to-end suite or skipped
// with a reason (test/helpers/doc-blocks.ts has the convention), so a new doc cannot escape.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DOC_SUITES, docBlocks, parseDocBlocks, ROOT, where } from '../helpers/doc-blocks.ts';
import { withoutLogRecords } from '../helpers/doc-runner.ts';
import { parseArgs } from '../helpers/kubectl-node-shim.ts';

describe('doc-test markers', () => {
  const blocks = docBlocks();

  it('finds the documented shell blocks (README, install, lab, results, ...)', () => {
    assert.ok(blocks.length >= 15, `${blocks.length} blocks`);
    for (const f of ['README.md', 'docs/install.md', 'docs/lab.md', 'docs/results.md'])
      assert.ok(
        blocks.some((b) => b.file === f),
        f,
      );
  });

  it('every bash/sh/shell/console block has a doc-test marker', () => {
    const unmarked = blocks.filter((b) => !b.marker).map(where);
    assert.deepEqual(
      unmarked,
      [],
      'add <!-- doc-test: SUITE --> or <!-- doc-test: skip (why) --> above each',
    );
  });

  it('no marker comment is misspelt', () => {
    assert.deepEqual(
      blocks.flatMap((b) => b.unknownMarkers.map((m) => `${where(b)}: ${m}`)),
      [],
    );
  });

  it('every skip says why, every suite is one a test runs', () => {
    for (const b of blocks) {
      if (!b.marker) continue;
      if ('skip' in b.marker) assert.ok(b.marker.skip.length >= 10, `${where(b)}: skip needs a reason`);
      else {
        const file = DOC_SUITES[b.marker.suite];
        assert.ok(file, `${where(b)}: unknown suite ${b.marker.suite} (known: ${Object.keys(DOC_SUITES)})`);
        assert.ok(existsSync(join(ROOT, file)), `${file} runs suite ${b.marker.suite}`);
      }
    }
  });

  it('each suite runs at least one block, and most blocks run', () => {
    for (const suite of Object.keys(DOC_SUITES))
      assert.ok(
        blocks.some((b) => b.marker && 'suite' in b.marker && b.marker.suite === suite),
        suite,
      );
    const run = blocks.filter((b) => b.marker && 'suite' in b.marker).length;
    assert.ok(run * 2 >= blocks.length, `${run} of ${blocks.length} blocks run`);
  });

  it('parses markers, indentation and expectations', () => {
    const text = [
      '# t',
      '<!-- doc-test: lab -->',
      '<!-- doc-test-expect: ^verdict: PASS$ -->',
      '```sh',
      'npx failwatch lab up',
      '```',
      '',
      '1. step',
      '   <!-- doc-test: skip (needs AWS credentials) -->',
      '   ```bash',
      '   aws rds describe-db-clusters',
      '   ```',
      '```sh',
      'echo unmarked',
      '```',
      '```yaml',
      'not: a command',
      '```',
      '<!-- doc-test-untill: x -->',
      '```console',
      '$ x',
      '```',
    ].join('\n');
    const parsed = parseDocBlocks('t.md', text);
    assert.equal(parsed.length, 4);
    assert.deepEqual(parsed[0]!.marker, { suite: 'lab' });
    assert.equal(parsed[0]!.code, 'npx failwatch lab up');
    assert.equal(parsed[0]!.line, 4);
    assert.ok(parsed[0]!.expect[0]!.test('x\nverdict: PASS\n'));
    assert.deepEqual(parsed[1]!.marker, { skip: 'needs AWS credentials' });
    assert.equal(parsed[1]!.code, 'aws rds describe-db-clusters');
    assert.equal(parsed[2]!.marker, undefined);
    assert.deepEqual(parsed[3]!.unknownMarkers, ['<!-- doc-test-untill: x -->']);
  });
});

describe('the kubectl shim of the test node', () => {
  it('reads the documented logs and port-forward command lines', () => {
    assert.deepEqual(parseArgs(['-n', 'failwatch-system', 'logs', 'deploy/failwatch']), {
      verb: 'logs',
      namespace: 'failwatch-system',
      words: ['deploy/failwatch'],
      passThrough: [],
    });
    const forward = parseArgs([
      '--kubeconfig',
      'k',
      'port-forward',
      '--namespace=x',
      'svc/failwatch-metrics',
      '8080',
    ]);
    assert.equal(forward.verb, 'port-forward');
    assert.equal(forward.namespace, 'x');
    assert.deepEqual(forward.words, ['svc/failwatch-metrics', '8080']);
    assert.deepEqual(forward.passThrough, ['--kubeconfig', 'k']);
  });
});

describe('withoutLogRecords: the watch line a background process split', () => {
  it('removes JSON log records, joining the line one landed in', () => {
    const out =
      'NAME   PHASE\nrehearsal{"level":30,"time":1,"msg":"phase Completed"}\n   Completed   lab-pg   DryRun   6s\n';
    assert.equal(withoutLogRecords(out), 'NAME   PHASE\nrehearsal   Completed   lab-pg   DryRun   6s\n');
    assert.match(withoutLogRecords(out), /^\S+\s+(Completed|Failed)\s/m);
    assert.doesNotMatch(out, /^\S+\s+(Completed|Failed)\s/m);
    assert.equal(withoutLogRecords('a {"level" b\n'), 'a {"level" b\n', 'not a record: kept');
  });
});
