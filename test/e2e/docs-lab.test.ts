// Suite `lab` of the documented commands (test/helpers/doc-blocks.ts): every block of README.md
// and docs/*.md marked `<!-- doc-test: lab -->`, in document order, as written, against the
// default lab (/tmp/failwatch-lab, 127.0.10.x: the addresses the docs and examples name), with
// their documented output checked. Between blocks the lab is as a reader who followed the docs
// would have it: down before a block that starts it, up before any other. `experiment.yaml`, the
// docs' name for "your experiment", is the lab example (for docs/lab.md's IAM block: the same
// with the IAM user and the connectTimeout docs/lab.md asks for, as a dry run).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { failwatch } from '../helpers/cli.ts';
import { type DocBlock, ROOT, suiteBlocks, where } from '../helpers/doc-blocks.ts';
import { DocShell, userCheckout } from '../helpers/doc-runner.ts';

const LAB_DIR = '/tmp/failwatch-lab';
const EXAMPLE = readFileSync(join(ROOT, 'examples/lab-aurora-postgresql.yaml'), 'utf8');
const blocks = suiteBlocks('lab');
let shell: DocShell;

const labIsUp = () => existsSync(join(LAB_DIR, 'lab.json'));
async function lab(verb: 'up' | 'down'): Promise<void> {
  const r = await failwatch(['lab', verb]);
  assert.equal(r.code, 0, `failwatch lab ${verb}: ${r.stderr}`);
}

/** docs/lab.md's IAM block: an endpoint with `credentials: { iam: ... }`, rehearsed. */
function iamExperiment(): string {
  const doc = parse(EXAMPLE);
  doc.metadata.name = 'lab-iam';
  doc.spec.dryRun = true;
  doc.spec.endpoints = [
    {
      ...doc.spec.endpoints[0],
      probes: ['write', 'read'],
      connectionMode: 'pooled',
      interval: '200ms',
      connectTimeout: '5s',
      credentials: { iam: { username: 'failwatch_iam', region: 'us-east-1' } },
    },
  ];
  return stringify(doc);
}

async function prepare(block: DocBlock): Promise<void> {
  const startsLab = /^npx failwatch lab up\b/m.test(block.code);
  if (startsLab && labIsUp()) await lab('down');
  if (!startsLab && !labIsUp()) await lab('up');
  if (/\bexperiment\.yaml\b/.test(block.code))
    writeFileSync(
      join(shell.cwd, 'experiment.yaml'),
      block.file === 'docs/lab.md' ? iamExperiment() : EXAMPLE,
    );
}

describe('the documented lab commands, as written (suite lab)', { timeout: 900_000 }, () => {
  before(async () => {
    assert.ok(blocks.length >= 4, `${blocks.length} blocks`);
    if (labIsUp()) await lab('down'); // a lab left behind by an interrupted run
    shell = new DocShell(userCheckout('fw-docs-lab-'), { FAILWATCH_LAB_PASSWORD: 'failwatch-lab' });
  });
  after(async () => {
    await shell?.stopAll();
    if (labIsUp()) await lab('down');
  });

  for (const block of blocks)
    it(`${where(block)}: ${block.code.split('\n')[0]}`, async () => {
      await prepare(block);
      const started = Date.now();
      const run = await shell.run(block);
      console.log(`${where(block)}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (block.file === 'README.md' && /--report report\.html/.test(block.code)) {
        // What the README says the run leaves behind.
        const results = JSON.parse(readFileSync(join(shell.cwd, 'results.json'), 'utf8'));
        assert.equal(results.run.end, 'Completed');
        assert.equal(results.run.triggered, true);
        assert.equal(results.verdict.result, 'Pass');
        assert.match(readFileSync(join(shell.cwd, 'report.html'), 'utf8'), /^<!doctype html>/i);
      }
      if (/lab failover --wait/.test(block.code)) {
        // `lab down` ran last; status and failover printed the lab's writers before it.
        assert.equal(labIsUp(), false, 'the block ends with lab down');
        assert.match(run.stdout, /lab-pg/);
      }
    });
});
