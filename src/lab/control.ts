// Client side of a running lab: find it from its directory, wait for it, stop it, and sweep
// up what a crashed lab left behind.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DaemonInfo } from './daemon.ts';
import { killAndWait, pidAlive, run } from './exec.ts';
import { type LabIamInfo, removeIamServices } from './iam.ts';
import type { LabOptions, LabTlsState } from './lab.ts';
import type { GroundTruthStep, LabBlueGreen, LabCluster, LabEvent, LabGlobalCluster } from './model.ts';
import { PG_USER, pgBinDir } from './postgres.ts';

export interface LabState extends DaemonInfo {
  options: LabOptions;
  dns: { host: string; port: number; zone: string };
  tls: LabTlsState;
  clusters: LabCluster[];
  events: LabEvent[];
  groundTruth: GroundTruthStep[];
  /** `lab up --blue-green`: the Blue/Green deployments. */
  blueGreenDeployments?: LabBlueGreen[];
  /** `lab up --global`: the Global Databases. */
  globalClusters?: LabGlobalCluster[];
  /** IAM database authentication: the lab's test credentials, region, user and PAM services. */
  iam?: LabIamInfo;
}

export function defaultLabDir(): string {
  return process.env.FAILWATCH_LAB_DIR || '/tmp/failwatch-lab';
}

export function readLabState(dir: string): LabState | undefined {
  const file = join(dir, 'lab.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function daemonAlive(state: LabState | undefined): boolean {
  return state !== undefined && pidAlive(state.daemonPid);
}

export async function waitForPhase(
  dir: string,
  daemonPid: number,
  timeoutMs: number,
): Promise<LabState | { phase: 'failed'; error: string }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const state = readLabState(dir);
    if (state?.phase === 'ready') return state;
    if (state?.phase === 'failed') return { phase: 'failed', error: state.error ?? 'unknown error' };
    if (!pidAlive(daemonPid)) {
      const log = existsSync(join(dir, 'daemon.log'))
        ? readFileSync(join(dir, 'daemon.log'), 'utf8').trim()
        : '';
      return {
        phase: 'failed',
        error: state?.error ?? (log.split('\n').slice(-1)[0] || 'the lab daemon exited'),
      };
    }
    await sleep(100);
  }
  return { phase: 'failed', error: `the lab did not come up within ${timeoutMs / 1000} s` };
}

/** Processes whose command line mentions the lab directory (servers, daemon, DNS, proxy). */
function processesUsing(dir: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (args.some((a) => a === dir || a.includes(`${dir}/`)) && pidAlive(pid)) out.push(pid);
    } catch {}
  }
  return out;
}

/**
 * Stops a lab and removes its directory: asks the daemon first, then stops PostgreSQL data
 * directories with pg_ctl and kills whatever still names the directory — so a lab whose `up`
 * was killed half-way is cleaned up too. Returns what it had to kill by force.
 */
export async function downLab(dir: string): Promise<{ forced: number }> {
  const state = readLabState(dir);
  if (state && daemonAlive(state) && state.controlUrl) {
    await fetch(`${state.controlUrl}/down`, { method: 'POST', signal: AbortSignal.timeout(3000) }).catch(
      () => {},
    );
    const deadline = Date.now() + 60_000;
    while (pidAlive(state.daemonPid) && Date.now() < deadline) await sleep(100);
  }
  if (existsSync(dir)) {
    for (const sub of readdirSync(dir)) {
      const data = join(dir, sub, 'data');
      if (existsSync(join(data, 'postmaster.pid')))
        await run(join(pgBinDir(), 'pg_ctl'), ['stop', '-m', 'immediate', '-w', '-D', data], {
          user: PG_USER,
          allowFailure: true,
        }).catch(() => {});
    }
  }
  // Sweep until two passes in a row find nothing: a half-started lab may still be spawning.
  let forced = 0;
  for (let quiet = 0; quiet < 2; ) {
    const leftovers = processesUsing(dir);
    if (leftovers.length === 0) quiet++;
    else quiet = 0;
    forced += leftovers.length;
    await Promise.all(leftovers.map((pid) => killAndWait(pid, 2000)));
    await sleep(200);
  }
  removeIamServices(dir);
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  return { forced };
}
