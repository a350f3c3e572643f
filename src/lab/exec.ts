// Small process helpers for the lab: run a command to completion, spawn a detached
// server, wait for a TCP port. Errors carry the command's stderr so a user can act on them.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export class LabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabError';
  }
}

export interface RunOptions {
  /** Run as this user (via runuser) — PostgreSQL refuses to run as root. */
  user?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  cwd?: string;
  timeoutMs?: number;
  /** Resolve instead of reject on a non-zero exit. */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function withUser(cmd: string, args: string[], user?: string): [string, string[]] {
  if (!user || process.getuid?.() !== 0) return [cmd, args];
  return ['runuser', ['-u', user, '--', cmd, ...args]];
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, argv] = withUser(cmd, args, opts.user);
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new LabError(
          err.code === 'ENOENT' ? `${cmd} not found: install it (see README "Requirements")` : err.message,
        ),
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const result = { code: code ?? -1, stdout, stderr };
      if (code === 0 || opts.allowFailure) resolve(result);
      else
        reject(
          new LabError(
            `${cmd} ${args.join(' ')} failed (exit ${code}): ${(stderr || stdout).trim().split('\n').slice(-3).join(' | ')}`,
          ),
        );
    });
    // A command that exits without reading its input must not crash us with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Spawns a long-running server detached from us, output appended to logFile. Returns its pid. */
export function spawnDetached(
  cmd: string,
  args: string[],
  opts: { user?: string; logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): number {
  const [file, argv] = withUser(cmd, args, opts.user);
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(file, argv, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
    });
    child.on('error', () => {});
    child.unref();
    if (child.pid === undefined) throw new LabError(`${cmd} could not be started (is it installed?)`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function tcpReachable(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(intervalMs);
  }
  throw new LabError(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** True while the process runs; a zombie (exited, not yet reaped) counts as gone. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
export async function killAndWait(pid: number, graceMs = 3000): Promise<void> {
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(25);
  if (pidAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
    while (pidAlive(pid)) await sleep(10);
  }
}
