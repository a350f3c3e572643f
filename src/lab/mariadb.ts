// Real MariaDB instances for the lab: GTID replication, promotion, demotion.
// Settings go on the command line (--no-defaults) so the machine's own my.cnf never applies.
import { chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { killAndWait, LabError, pidAlive, run, spawnDetached, tcpReachable, waitFor } from './exec.ts';
import { LAB_DB_NAME, LAB_DB_PASSWORD, LAB_DB_USER, userIds } from './postgres.ts';
import type { ServerTls } from './tls.ts';

export const MYSQL_USER = 'mysql';
const REPL_USER = 'replicator';
const REPL_PASSWORD = 'replicator-lab';

export interface MariaInstance {
  dataDir: string;
  runDir: string;
  host: string;
  port: number;
  serverId: number;
  /** TLS (ssl_cert/ssl_key/ssl_ca); without it the instance speaks plain text only. */
  tls?: ServerTls;
  /** More mariadbd options (e.g. TLS certificates in tests). */
  extraArgs?: string[];
}

/**
 * The PAM plugin for the lab's IAM users (src/lab/iam.ts), loaded everywhere so that a user
 * created on the writer logs in on every instance. `loose-`: a server without the plugin
 * still starts, and only IAM logins fail.
 */
const IAM_PLUGIN_ARGS = ['--plugin-load-add=auth_pam_v1.so', '--loose-pam-use-cleartext-plugin=ON'];

const socketPath = (inst: MariaInstance) => join(inst.runDir, 'mysqld.sock');
const pidFile = (inst: MariaInstance) => join(inst.runDir, 'mysqld.pid');
const logFile = (inst: MariaInstance) => join(inst.runDir, 'mysqld.log');

function ownedDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o755 });
  if (process.getuid?.() === 0) {
    const { uid, gid } = userIds(MYSQL_USER);
    chownSync(path, uid, gid);
  }
}

/** Runs SQL over the instance's unix socket as root (the lab's admin path). */
export async function sqlLocal(inst: MariaInstance, sql: string): Promise<string> {
  const r = await run('mariadb', ['--no-defaults', '-S', socketPath(inst), '-uroot', '-N', '-B', '-e', sql], {
    timeoutMs: 20_000,
  });
  return r.stdout.trim();
}

export async function initPrimary(inst: MariaInstance): Promise<void> {
  await initDataDir(inst);
  await start(inst, { readOnly: false });
  await sqlLocal(
    inst,
    `CREATE DATABASE ${LAB_DB_NAME};` +
      `CREATE USER '${LAB_DB_USER}'@'%' IDENTIFIED BY '${LAB_DB_PASSWORD}';` +
      `GRANT ALL ON ${LAB_DB_NAME}.* TO '${LAB_DB_USER}'@'%';` +
      `GRANT PROCESS, CONNECTION ADMIN, REPLICATION CLIENT ON *.* TO '${LAB_DB_USER}'@'%';` +
      `CREATE USER '${REPL_USER}'@'%' IDENTIFIED BY '${REPL_PASSWORD}';` +
      `GRANT REPLICATION SLAVE ON *.* TO '${REPL_USER}'@'%';`,
  );
}

/** A replica of `primary`: the data directory starts empty and replicates everything via GTID. */
export async function initReplica(inst: MariaInstance, primary: MariaInstance): Promise<void> {
  await initDataDir(inst);
  await start(inst, { readOnly: true });
  // The primary's binlog holds everything since its initialisation, so GTID from the start works.
  await replicateFrom(inst, primary, '');
}

async function initDataDir(inst: MariaInstance): Promise<void> {
  ownedDir(inst.runDir);
  ownedDir(inst.dataDir);
  await run(
    'mariadb-install-db',
    [
      '--no-defaults',
      `--datadir=${inst.dataDir}`,
      `--user=${MYSQL_USER}`,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
      '--skip-name-resolve',
    ],
    { timeoutMs: 120_000 },
  );
}

export async function start(inst: MariaInstance, opts: { readOnly: boolean }): Promise<void> {
  const args = [
    '--no-defaults',
    `--datadir=${inst.dataDir}`,
    `--socket=${socketPath(inst)}`,
    `--pid-file=${pidFile(inst)}`,
    `--bind-address=${inst.host}`,
    `--port=${inst.port}`,
    `--server-id=${inst.serverId}`,
    `--user=${MYSQL_USER}`,
    '--log-bin=mysql-bin',
    '--log-slave-updates',
    '--gtid-strict-mode=ON',
    '--binlog-format=ROW',
    '--skip-name-resolve',
    '--skip-slave-start',
    '--innodb-buffer-pool-size=32M',
    '--innodb-log-file-size=16M',
    '--max-connections=300',
    '--performance-schema=OFF',
    `--read-only=${opts.readOnly ? 'ON' : 'OFF'}`,
    ...tlsArgs(inst),
    ...IAM_PLUGIN_ARGS,
    ...(inst.extraArgs ?? []),
  ];
  const pid = spawnDetached('mariadbd', args, { logFile: logFile(inst) });
  try {
    await waitFor(
      `MariaDB on ${inst.host}:${inst.port}`,
      async () => {
        if (!pidAlive(pid)) throw new LabError('exited');
        return (await tcpReachable(inst.host, inst.port)) && existsSync(socketPath(inst));
      },
      60_000,
    );
  } catch {
    throw new LabError(`MariaDB ${inst.host}:${inst.port} did not start: ${logTail(logFile(inst))}`);
  }
}

/** ssl_cert/ssl_key/ssl_ca, and require_secure_transport when TLS is enforced. */
function tlsArgs(inst: MariaInstance): string[] {
  if (!inst.tls) return [];
  const { certFile, keyFile, caFile, enforce } = inst.tls;
  return [
    `--ssl-cert=${certFile}`,
    `--ssl-key=${keyFile}`,
    `--ssl-ca=${caFile}`,
    `--require-secure-transport=${enforce ? 'ON' : 'OFF'}`,
  ];
}

/** Replication over TLS when the lab has it (MariaDB 10.11 defaults to MASTER_SSL=0). */
function replicationTls(inst: MariaInstance): string {
  return inst.tls ? `MASTER_SSL=1, MASTER_SSL_CA='${inst.tls.caFile}', ` : '';
}

function logTail(file: string): string {
  if (!existsSync(file)) return '(no log)';
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  return (
    lines
      .filter((l) => /\[ERROR\]/.test(l))
      .slice(-2)
      .join(' | ') ||
    lines.slice(-1)[0] ||
    ''
  );
}

export function serverPid(inst: MariaInstance): number | undefined {
  if (!existsSync(pidFile(inst))) return undefined;
  const pid = Number(readFileSync(pidFile(inst), 'utf8').trim());
  return Number.isFinite(pid) && pidAlive(pid) ? pid : undefined;
}

export function isRunning(inst: MariaInstance): boolean {
  return serverPid(inst) !== undefined;
}

/** `fast`: a normal shutdown (clients are disconnected); `immediate`: SIGKILL, like a crash. */
export async function stop(inst: MariaInstance, mode: 'fast' | 'immediate'): Promise<void> {
  const pid = serverPid(inst);
  if (pid === undefined) return;
  if (mode === 'immediate') process.kill(pid, 'SIGKILL');
  await killAndWait(pid, 60_000);
}

/** Makes `inst` replicate from `source` using GTIDs; read-only is the caller's business. */
export async function replicateFrom(
  inst: MariaInstance,
  source: MariaInstance,
  gtidPos?: string,
): Promise<void> {
  const setPos = gtidPos === undefined ? '' : `SET GLOBAL gtid_slave_pos = '${gtidPos}';`;
  await sqlLocal(
    inst,
    `STOP SLAVE; RESET SLAVE ALL; ${setPos}` +
      `CHANGE MASTER TO MASTER_HOST='${source.host}', MASTER_PORT=${source.port}, ` +
      `MASTER_USER='${REPL_USER}', MASTER_PASSWORD='${REPL_PASSWORD}', ${replicationTls(inst)}MASTER_USE_GTID=${gtidPos === undefined ? 'current_pos' : 'slave_pos'}, ` +
      'MASTER_CONNECT_RETRY=1; START SLAVE;',
  );
}

/** Disconnects every client session (the lab's own users and replication stay). */
export async function killClientConnections(inst: MariaInstance): Promise<void> {
  const ids = await sqlLocal(
    inst,
    `SELECT id FROM information_schema.processlist WHERE user NOT IN ('root', 'system user', 'event_scheduler', '${REPL_USER}') AND id <> CONNECTION_ID()`,
  );
  for (const id of ids.split('\n').filter((x) => /^\d+$/.test(x)))
    await sqlLocal(inst, `KILL CONNECTION ${id}`).catch(() => {}); // gone already: fine
}

/** Stops replication and forgets the source; used on the instance being promoted. */
export async function stopReplication(inst: MariaInstance): Promise<void> {
  await sqlLocal(inst, 'STOP SLAVE; RESET SLAVE ALL;');
}

/** The replica's IO thread stops (replication lag knob) or restarts. */
export async function setReplicationPaused(inst: MariaInstance, paused: boolean): Promise<void> {
  await sqlLocal(inst, paused ? 'STOP SLAVE' : 'START SLAVE');
}

export async function gtidCurrentPos(inst: MariaInstance): Promise<string> {
  return sqlLocal(inst, 'SELECT @@gtid_current_pos');
}

/** Waits until `inst` has applied every transaction up to `gtid` (MASTER_GTID_WAIT). */
export async function waitForGtid(
  inst: MariaInstance,
  gtid: string,
  timeoutSeconds: number,
): Promise<boolean> {
  if (!gtid) return true;
  const r = await sqlLocal(inst, `SELECT MASTER_GTID_WAIT('${gtid}', ${timeoutSeconds})`);
  return r === '0';
}
