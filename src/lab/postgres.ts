// Real PostgreSQL instances for the lab: initdb, streaming replicas, promotion, pg_rewind.
// Per-instance settings (address, port, socket dir) go on the command line, never into the
// data directory: pg_rewind copies postgresql.conf from the source instance.
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { LabError, run } from './exec.ts';
import type { ServerTls } from './tls.ts';

export const PG_USER = 'postgres';
/** The lab's application role and its password (the lab is a local toy; never reuse). */
export const LAB_DB_USER = 'failwatch';
export const LAB_DB_PASSWORD = 'failwatch-lab';
export const LAB_DB_NAME = 'app';
const REPL_USER = 'replicator';
const REPL_PASSWORD = 'replicator-lab';

export interface PgInstance {
  dataDir: string;
  host: string;
  port: number;
  /** Directory for the unix socket and the server log. */
  runDir: string;
  /** TLS (ssl on); without it the instance speaks plain text only. */
  tls?: ServerTls;
}

let cachedBinDir: string | undefined;
export function pgBinDir(): string {
  if (cachedBinDir) return cachedBinDir;
  const override = process.env.FAILWATCH_PG_BINDIR;
  if (override) {
    if (!existsSync(join(override, 'postgres')))
      throw new LabError(`PostgreSQL server binaries not found in FAILWATCH_PG_BINDIR=${override}`);
    cachedBinDir = override;
    return override;
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0)
    throw new LabError(
      'PostgreSQL server binaries not found under /usr/lib/postgresql: run `bash scripts/setup`',
    );
  cachedBinDir = join(root, versions[0]!, 'bin');
  return cachedBinDir;
}

const bin = (name: string) => join(pgBinDir(), name);

function ownedDir(path: string, user: string, mode = 0o700): void {
  mkdirSync(path, { recursive: true, mode });
  if (process.getuid?.() === 0) {
    const { uid, gid } = userIds(user);
    chownSync(path, uid, gid);
  }
}

const idCache = new Map<string, { uid: number; gid: number }>();
export function userIds(user: string): { uid: number; gid: number } {
  const hit = idCache.get(user);
  if (hit) return hit;
  // Read at call time: the user may have been created by a package install moments ago.
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line)
    throw new LabError(`system user ${user} does not exist: install the server package that creates it`);
  const [, , uid, gid] = line.split(':');
  const ids = { uid: Number(uid), gid: Number(gid) };
  idCache.set(user, ids);
  return ids;
}

/**
 * Settings shared by every instance live in postgresql.conf, where pg_rewind's own
 * single-user crash recovery sees them too (wal_keep_size: without it that recovery
 * recycles the WAL the rewind needs). Only the per-instance ones go on the command line.
 */
const COMMON_SETTINGS: Record<string, string> = {
  wal_level: 'replica',
  hot_standby: 'on',
  max_wal_senders: '10',
  max_replication_slots: '10',
  wal_keep_size: "'256MB'",
  max_connections: '200',
  shared_buffers: "'32MB'",
  // A lab toy: durability against OS crashes is not what it demonstrates.
  fsync: 'off',
  wal_log_hints: 'on',
  recovery_target_timeline: "'latest'",
  log_line_prefix: "'%m:%p:'",
};

function serverOptions(inst: PgInstance): string {
  return `-c listen_addresses=${inst.host} -c port=${inst.port} -c unix_socket_directories=${inst.runDir}${tlsOptions(inst)}`;
}

/**
 * ssl on the command line like the other per-instance settings (pg_rewind would copy them
 * from the source instance in postgresql.conf). The key must be owned by postgres, mode 0600.
 */
function tlsOptions(inst: PgInstance): string {
  if (!inst.tls) return '';
  const { certFile, keyFile, caFile } = inst.tls;
  return ` -c ssl=on -c ssl_cert_file=${certFile} -c ssl_key_file=${keyFile} -c ssl_ca_file=${caFile}`;
}

/**
 * pg_hba lines for TCP clients: `hostssl` only when TLS is enforced (like RDS's
 * rds.force_ssl=1, the default from PostgreSQL 15 on), else `host` (TLS optional).
 */
function hbaTcpLines(inst: PgInstance): string[] {
  const kind = inst.tls?.enforce ? 'hostssl' : 'host';
  return [`${kind} replication all 127.0.0.0/8 scram-sha-256`, `${kind} all all 127.0.0.0/8 scram-sha-256`];
}

function connInfo(inst: PgInstance, user: string, password: string): string {
  return `host=${inst.host} port=${inst.port} user=${user} password=${password} dbname=postgres application_name=lab`;
}

export async function psqlLocal(inst: PgInstance, sql: string, db = 'postgres'): Promise<string> {
  const r = await run(
    bin('psql'),
    ['-h', inst.runDir, '-p', String(inst.port), '-d', db, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql],
    { user: PG_USER, timeoutMs: 20_000 },
  );
  return r.stdout.trim();
}

/** initdb a new primary with the lab's roles, database and host-based auth. */
export async function initPrimary(inst: PgInstance): Promise<void> {
  ownedDir(inst.runDir, PG_USER, 0o755);
  ownedDir(inst.dataDir, PG_USER);
  await run(
    bin('initdb'),
    [
      '-D',
      inst.dataDir,
      '-U',
      PG_USER,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '--data-checksums',
      '-E',
      'UTF8',
      '--locale=C',
    ],
    { user: PG_USER, timeoutMs: 120_000 },
  );
  writeFileSync(
    join(inst.dataDir, 'pg_hba.conf'),
    ['local all all trust', ...hbaTcpLines(inst), ''].join('\n'),
  );
  appendFileSync(
    join(inst.dataDir, 'postgresql.conf'),
    `\n# failwatch lab\n${Object.entries(COMMON_SETTINGS)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')}\n`,
  );
  await start(inst);
  await psqlLocal(
    inst,
    `CREATE ROLE ${LAB_DB_USER} LOGIN PASSWORD '${LAB_DB_PASSWORD}';` +
      `CREATE ROLE ${REPL_USER} LOGIN REPLICATION PASSWORD '${REPL_PASSWORD}';` +
      `ALTER ROLE ${PG_USER} PASSWORD '${LAB_DB_PASSWORD}';` +
      `GRANT pg_read_all_stats, pg_signal_backend TO ${LAB_DB_USER};`,
  );
  await psqlLocal(inst, `CREATE DATABASE ${LAB_DB_NAME} OWNER ${LAB_DB_USER}`);
}

/** A streaming replica of `primary`, cloned with pg_basebackup. */
export async function initReplica(inst: PgInstance, primary: PgInstance): Promise<void> {
  ownedDir(inst.runDir, PG_USER, 0o755);
  ownedDir(inst.dataDir, PG_USER);
  await run(
    bin('pg_basebackup'),
    [
      '-D',
      inst.dataDir,
      '-d',
      connInfo(primary, REPL_USER, REPL_PASSWORD),
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ],
    { user: PG_USER, timeoutMs: 120_000 },
  );
  await start(inst);
}

export async function start(inst: PgInstance): Promise<void> {
  const log = join(inst.runDir, 'postgres.log');
  try {
    await run(
      bin('pg_ctl'),
      ['start', '-w', '-t', '60', '-D', inst.dataDir, '-l', log, '-o', serverOptions(inst)],
      {
        user: PG_USER,
        timeoutMs: 70_000,
      },
    );
  } catch {
    throw new LabError(`PostgreSQL ${inst.host}:${inst.port} did not start: ${logTail(log)}`);
  }
}

function logTail(file: string): string {
  if (!existsSync(file)) return '(no log)';
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  return (
    lines
      .filter((l) => /FATAL|ERROR|could not|invalid/i.test(l))
      .slice(-2)
      .join(' | ') ||
    lines.slice(-1)[0] ||
    ''
  );
}

/** Starts without waiting: the caller watches clients see "the database system is starting up". */
export async function startNoWait(inst: PgInstance): Promise<void> {
  await run(
    bin('pg_ctl'),
    ['start', '-W', '-D', inst.dataDir, '-l', join(inst.runDir, 'postgres.log'), '-o', serverOptions(inst)],
    { user: PG_USER, timeoutMs: 20_000 },
  );
}

export async function stop(inst: PgInstance, mode: 'smart' | 'fast' | 'immediate'): Promise<void> {
  if (!isRunning(inst)) return;
  await run(bin('pg_ctl'), ['stop', '-w', '-t', '60', '-m', mode, '-D', inst.dataDir], {
    user: PG_USER,
    timeoutMs: 70_000,
    allowFailure: true,
  });
}

export function isRunning(inst: PgInstance): boolean {
  return existsSync(join(inst.dataDir, 'postmaster.pid'));
}

export function isStandbyConfigured(inst: PgInstance): boolean {
  return existsSync(join(inst.dataDir, 'standby.signal'));
}

/** Promotes a running standby without a restart. */
export async function promote(inst: PgInstance): Promise<void> {
  await run(bin('pg_ctl'), ['promote', '-w', '-t', '60', '-D', inst.dataDir], {
    user: PG_USER,
    timeoutMs: 70_000,
  });
}

/**
 * Makes a stopped former primary a standby of `source`: pg_rewind (a no-op when it did not
 * diverge), then a recovery configuration pointing at the source.
 */
export async function rewindAsStandbyOf(inst: PgInstance, source: PgInstance): Promise<void> {
  // pg_rewind reads the source's timeline from its last checkpoint: right after a promotion
  // that is still the old timeline, and pg_rewind would wrongly find "no rewind required".
  await psqlLocal(source, 'CHECKPOINT');
  await run(
    bin('pg_rewind'),
    ['-D', inst.dataDir, '--source-server', connInfo(source, PG_USER, LAB_DB_PASSWORD), '-R', '--no-sync'],
    { user: PG_USER, timeoutMs: 120_000, env: { PGCONNECT_TIMEOUT: '5' } },
  );
  // pg_rewind -R writes primary_conninfo as the superuser; streaming uses the replication role.
  const autoConf = join(inst.dataDir, 'postgresql.auto.conf');
  writeFileSync(
    autoConf,
    `# written by failwatch lab\nprimary_conninfo = '${connInfo(source, REPL_USER, REPL_PASSWORD)}'\n`,
  );
  writeFileSync(join(inst.dataDir, 'standby.signal'), '');
  if (process.getuid?.() === 0) {
    const { uid, gid } = userIds(PG_USER);
    chownSync(autoConf, uid, gid);
    chownSync(join(inst.dataDir, 'standby.signal'), uid, gid);
  }
}

/** Points a standby's streaming at nothing (or back at `source`): the lab's replication-lag knob. */
export async function setStreamingSource(inst: PgInstance, source: PgInstance | undefined): Promise<void> {
  const value = source ? connInfo(source, REPL_USER, REPL_PASSWORD) : '';
  await psqlLocal(inst, `ALTER SYSTEM SET primary_conninfo = '${value}'`);
  await psqlLocal(inst, 'SELECT pg_reload_conf()');
}
