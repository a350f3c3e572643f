// Runs documented shell blocks (test/helpers/doc-blocks.ts) the way a user would: with bash
// (`set -euo pipefail`), one after the other as in one terminal (exported variables carry over),
// in a directory that looks like the checkout (every top-level entry linked) so that the files a
// block writes (results.json, .cache/dev-cluster) stay out of the real one. Only documented
// placeholders are replaced, each of them must occur, and a block's stdout is checked against its
// doc-test-expect markers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type DocBlock, ROOT, where } from './doc-blocks.ts';

/** A directory that looks like the checkout; `.cache` is its own (the dev cluster's state goes there). */
export function userCheckout(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const entry of readdirSync(ROOT)) {
    if (['.cache', '.git', 'results.json', 'report.html'].includes(entry)) continue;
    symlinkSync(join(ROOT, entry), join(dir, entry));
  }
  mkdirSync(join(dir, '.cache'));
  symlinkSync(join(ROOT, '.cache/bin'), join(dir, '.cache/bin'));
  return dir;
}

export interface Placeholder {
  /** Exactly as the doc writes it, e.g. `<service-account>`. */
  text: string;
  value: string;
}

export interface BlockRun {
  block: DocBlock;
  script: string;
  stdout: string;
  stderr: string;
  code: number | null;
  /** For a doc-test-until block: stops it (its process group). */
  stop(): Promise<void>;
}

export class DocShell {
  readonly cwd: string;
  readonly #envFile: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #logFile: string;
  readonly #running: BlockRun[] = [];

  /** `env`: the user's shell, on top of the test's (PATH as the README says: Node 24 and node_modules/.bin first). */
  constructor(cwd: string, env: NodeJS.ProcessEnv = {}) {
    this.cwd = cwd;
    this.#envFile = join(cwd, '.cache/doc-test.env');
    this.#logFile = join(cwd, '.cache/doc-test.log');
    writeFileSync(this.#envFile, '');
    this.#env = {
      ...process.env,
      PATH: `${dirname(process.execPath)}:${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}`,
      ...env,
    };
  }

  get logFile(): string {
    return this.#logFile;
  }

  /** The block's text with its placeholders replaced; every placeholder must occur. */
  script(block: DocBlock, placeholders: Placeholder[] = []): string {
    let code = block.code;
    for (const p of placeholders) {
      assert.ok(code.includes(p.text), `${where(block)} has the placeholder ${p.text}:\n${code}`);
      code = code.replaceAll(p.text, p.value);
    }
    // What the previous blocks exported, as in one terminal; saved before every command (a
    // watch never ends) and at the end.
    return [
      'set -euo pipefail',
      `source ${this.#envFile}`,
      `trap 'export -p > ${this.#envFile}' DEBUG EXIT`,
      code,
    ].join('\n');
  }

  /** Runs a block to its end (or, with doc-test-until, until its output matches) and checks it. */
  async run(block: DocBlock, placeholders: Placeholder[] = [], timeoutMs = 300_000): Promise<BlockRun> {
    const script = this.script(block, placeholders);
    writeFileSync(this.#logFile, `\n### ${where(block)}\n${block.code}\n`, { flag: 'a' });
    const child = spawn('bash', ['-c', script], {
      cwd: this.cwd,
      env: this.#env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: BlockRun = {
      block,
      script,
      stdout: '',
      stderr: '',
      code: null,
      stop: () => endGroup(child.pid!),
    };
    child.stdout!.on('data', (d) => {
      run.stdout += d;
      writeFileSync(this.#logFile, d, { flag: 'a' });
    });
    child.stderr!.on('data', (d) => {
      run.stderr += d;
      writeFileSync(this.#logFile, d, { flag: 'a' });
    });
    const exited = new Promise<void>((resolve) =>
      child.on('exit', (code) => {
        run.code = code ?? -1;
        resolve();
      }),
    );
    const deadline = Date.now() + timeoutMs;
    const show = () =>
      `${where(block)}:\n${block.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
    if (block.until) {
      this.#running.push(run);
      while (!block.until.test(withoutLogRecords(run.stdout))) {
        assert.equal(
          run.code,
          null,
          `exited ${run.code} before its output matched ${block.until}\n${show()}`,
        );
        assert.ok(Date.now() < deadline, `timed out waiting for ${block.until}\n${show()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } else {
      const timer = setTimeout(() => void endGroup(child.pid!), timeoutMs);
      await exited;
      clearTimeout(timer);
      // What the block left in the background (a port-forward &) ends with it, as when its
      // terminal closes; daemons (the lab, the dev cluster) run in sessions of their own.
      await endGroup(child.pid!);
      assert.equal(run.code, 0, show());
    }
    for (const re of block.expect) assert.match(run.stdout, re, show());
    return run;
  }

  /** Stops the blocks still running (watches, a backgrounded operator), newest first. */
  async stopAll(): Promise<void> {
    for (const r of this.#running.reverse()) await r.stop();
    this.#running.length = 0;
  }

  /** The log of every block run so far (commands and output), for failure messages. */
  log(): string {
    return readFileSync(this.#logFile, 'utf8');
  }
}

/**
 * A block's output without the JSON log records of a process it started in the background
 * (`failwatch operator &`). Both write to the same terminal, so a record can land inside a
 * line of the foreground command (CI saw `rehearsal{"level":30,…}` then `   Completed …`): the
 * record goes, and the line it split is whole again.
 */
export function withoutLogRecords(output: string): string {
  return output.replace(/\{"level":\d+,[^\n]*\}\n/g, '');
}

/** Signals a process group and waits (up to 10 s, then SIGKILL) until none of it is left. */
async function endGroup(pgid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(-pgid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive()) process.kill(-pgid, 'SIGKILL');
}
