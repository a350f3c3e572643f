// The Node.js options the chart runs the controller with (values.yaml nodeArgs): the
// Deployment's command is the image's ENTRYPOINT with them, Node accepts them, and the scale
// benchmark measures the controller with the same options.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { operatorNodeArgs } from '../../bench/scale.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const values = parse(read('charts/failwatch/values.yaml')) as { nodeArgs: string[] };

describe('controller Node.js options', () => {
  it('are options before the ENTRYPOINT script in the Deployment command', () => {
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'));
    assert.ok(entrypoint, 'Dockerfile has an exec-form ENTRYPOINT');
    const [node, script] = JSON.parse(entrypoint[1]!) as string[];
    const template = read('charts/failwatch/templates/deployment.yaml');
    const command = /command:\n\s+- (\S+)\n\s+\{\{- range \. \}\}\n.*\n\s+\{\{- end \}\}\n\s+- (\S+)\n/.exec(
      template,
    );
    assert.ok(command, 'the Deployment template sets command from nodeArgs');
    assert.deepEqual([command[1], command[2]], [node, script]);
    assert.ok(values.nodeArgs.length > 0);
    for (const arg of values.nodeArgs) assert.match(arg, /^--[a-z0-9-]+(=\S+)?$/);
  });

  it('are accepted by this Node.js', () => {
    const out = execFileSync(process.execPath, [...values.nodeArgs, '-e', 'process.stdout.write("ok")'], {
      encoding: 'utf8',
    });
    assert.equal(out, 'ok');
  });

  it('are what the scale benchmark runs the operator with, unless FAILWATCH_BENCH_NODE_ARGS says', () => {
    assert.deepEqual(operatorNodeArgs({}), values.nodeArgs);
    assert.deepEqual(operatorNodeArgs({ FAILWATCH_BENCH_NODE_ARGS: '' }), []);
    assert.deepEqual(
      operatorNodeArgs({ FAILWATCH_BENCH_NODE_ARGS: ' --max-semi-space-size=2  --optimize-for-size' }),
      ['--max-semi-space-size=2', '--optimize-for-size'],
    );
  });
});
