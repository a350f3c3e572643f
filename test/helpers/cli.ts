// Runs the failwatch CLI as a user would, for end-to-end tests.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function failwatch(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 240_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Pids whose command line mentions `text` (a lab directory), excluding this process. */
export function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(text)) out.push(pid);
    } catch {}
  }
  return out;
}

/** Local addresses with a listening TCP socket whose address starts with `prefix` (hex-decoded /proc/net/tcp). */
export function listenersWithPrefix(prefix: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const parts = line.trim().split(/\s+/);
    if (parts[3] !== '0A') continue; // LISTEN
    const [hexAddr, hexPort] = (parts[1] ?? '').split(':');
    if (!hexAddr || !hexPort) continue;
    const bytes = hexAddr
      .match(/../g)!
      .map((b) => Number.parseInt(b, 16))
      .reverse();
    const addr = `${bytes.join('.')}:${Number.parseInt(hexPort, 16)}`;
    if (addr.startsWith(prefix)) out.push(addr);
  }
  return out;
}
