// Bad input and crashes around `failwatch lab`: one clear line, non-zero exit, nothing left
// half-started; `lab down` cleans up a lab whose `up` was killed half-way.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { failwatch, listenersWithPrefix, MAIN, processesMentioning } from '../helpers/cli.ts';

function labDir(): string {
  const parent = mkdtempSync(join(tmpdir(), 'fw-lab-bad-'));
  chmodSync(parent, 0o755);
  return join(parent, 'lab');
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  return lines[0]!;
}

describe('failwatch lab with bad input', { timeout: 180_000 }, () => {
  it('refuses a taken address and starts nothing', async () => {
    const dir = labDir();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(10_480, '127.0.71.1', r));
    try {
      const r = await failwatch([
        'lab',
        'up',
        '--dir',
        dir,
        '--address-base',
        '127.0.71',
        '--api-port',
        '10480',
        '--dns-port',
        '10453',
      ]);
      assert.equal(r.code, 3);
      assert.match(oneLine(r.stderr), /127\.0\.71\.1:10480 \(RDS API\) is already in use/);
      assert.equal(existsSync(dir), false);
      assert.deepEqual(processesMentioning(dir), []);
    } finally {
      blocker.close();
    }
  });

  it('names a missing server binary', async () => {
    const dir = labDir();
    const r = await failwatch(['lab', 'up', '--dir', dir, '--address-base', '127.0.71'], {
      FAILWATCH_PG_BINDIR: '/nonexistent/bin',
    });
    assert.equal(r.code, 3);
    assert.match(
      oneLine(r.stderr),
      /PostgreSQL server .* is not installed .*FAILWATCH_PG_BINDIR=\/nonexistent\/bin.*scripts\/setup/,
    );
    assert.equal(existsSync(dir), false);
  });

  it('rejects bad options with usage errors (exit 2)', async () => {
    for (const args of [
      ['--readers', '0'],
      ['--profile', 'slow'],
      ['--address-base', '10.0.0'],
      ['--engines', 'oracle'],
    ]) {
      const r = await failwatch(['lab', 'up', '--dir', labDir(), ...args]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(oneLine(r.stderr), /^failwatch: --/);
    }
  });

  it('recognises the directory of a crashed lab and tells how to clean it up', async () => {
    const dir = labDir();
    mkdirSync(dir);
    writeFileSync(join(dir, 'lab.json'), JSON.stringify({ phase: 'ready', daemonPid: 2 ** 22 + 1 }));
    const status = await failwatch(['lab', 'status', '--dir', dir]);
    assert.equal(status.code, 3);
    assert.match(oneLine(status.stderr), /not running \(crashed\?\): run `failwatch lab down`/);
    const up = await failwatch(['lab', 'up', '--dir', dir]);
    assert.equal(up.code, 3);
    assert.match(oneLine(up.stderr), /holds a lab from a crashed run .*failwatch lab down --dir/);
    const down = await failwatch(['lab', 'down', '--dir', dir]);
    assert.equal(down.code, 0);
    assert.equal(existsSync(dir), false);
  });

  it('cleans up after `lab up` and its daemon were killed half-way', async () => {
    const dir = labDir();
    const child = spawn(process.execPath, [
      MAIN,
      'lab',
      'up',
      '--dir',
      dir,
      '--address-base',
      '127.0.72',
      '--dns-port',
      '10553',
      '--api-port',
      '10580',
    ]);
    // Wait until the servers are being created, then kill everything that manages them.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !existsSync(join(dir, 'lab-pg-1', 'data', 'PG_VERSION'))) await sleep(20);
    assert.ok(existsSync(join(dir, 'lab-pg-1')), 'lab up got as far as creating the first instance');
    const daemonPid = (JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as { daemonPid: number })
      .daemonPid;
    process.kill(daemonPid, 'SIGKILL');
    child.kill('SIGKILL');
    await sleep(500);
    const down = await failwatch(['lab', 'down', '--dir', dir]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(processesMentioning(dir), []);
    assert.deepEqual(listenersWithPrefix('127.0.72.'), []);
    assert.deepEqual(listenersWithPrefix('127.0.0.1:10553'), []);
    assert.equal(existsSync(dir), false);
  });
});
