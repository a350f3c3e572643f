// PgBouncer as the lab's RDS Proxy stand-in. Plain PgBouncer answers new clients with
// "server login has been failing" once the writer is gone; RDS Proxy instead holds requests.
// So the lab PAUSEs PgBouncer when the writer goes away and RELOAD+RESUMEs it on the new
// writer: clients keep their connections and see a stall instead of errors (seed 1's shape).
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { killAndWait, LabError, pidAlive, spawnDetached, tcpReachable, waitFor } from './exec.ts';
import { LAB_DB_PASSWORD, LAB_DB_USER, PG_USER, userIds } from './postgres.ts';
import type { ServerTls } from './tls.ts';

const ADMIN_USER = 'fwadmin';
const ADMIN_PASSWORD = 'fwadmin-lab';

export interface Bouncer {
  dir: string;
  host: string;
  port: number;
  /** TLS for clients (and, with the CA, to the servers); `enforce` refuses plain-text clients. */
  tls?: ServerTls;
}

const iniPath = (b: Bouncer) => join(b.dir, 'pgbouncer.ini');
const pidPath = (b: Bouncer) => join(b.dir, 'pgbouncer.pid');

function writeConfig(b: Bouncer, target: { host: string; port: number }): void {
  writeFileSync(
    iniPath(b),
    `[databases]
* = host=${target.host} port=${target.port}

[pgbouncer]
listen_addr = ${b.host}
listen_port = ${b.port}
unix_socket_dir = ${b.dir}
pidfile = ${pidPath(b)}
auth_type = scram-sha-256
auth_file = ${join(b.dir, 'userlist.txt')}
admin_users = ${ADMIN_USER}
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
ignore_startup_parameters = extra_float_digits,options,application_name
server_connect_timeout = 3
server_login_retry = 1
query_wait_timeout = 120
server_check_delay = 0
${tlsConfig(b)}`,
  );
}

/**
 * Like RDS Proxy: TLS from clients (required when enforced) with the proxy's certificate, and
 * TLS to the servers checked against the lab CA. verify-full matches the server's certificate
 * against the address in [databases], which is in every instance certificate's IP names.
 */
function tlsConfig(b: Bouncer): string {
  if (!b.tls) return '';
  const { certFile, keyFile, caFile, enforce } = b.tls;
  return `client_tls_sslmode = ${enforce ? 'require' : 'allow'}
client_tls_cert_file = ${certFile}
client_tls_key_file = ${keyFile}
client_tls_ca_file = ${caFile}
server_tls_sslmode = verify-full
server_tls_ca_file = ${caFile}
`;
}

export async function startBouncer(b: Bouncer, target: { host: string; port: number }): Promise<number> {
  if (!existsSync('/usr/sbin/pgbouncer'))
    throw new LabError('pgbouncer not found: run `bash scripts/setup` (Debian package pgbouncer)');
  mkdirSync(b.dir, { recursive: true, mode: 0o755 });
  writeFileSync(
    join(b.dir, 'userlist.txt'),
    `"${LAB_DB_USER}" "${LAB_DB_PASSWORD}"\n"${ADMIN_USER}" "${ADMIN_PASSWORD}"\n"${PG_USER}" "${LAB_DB_PASSWORD}"\n`,
  );
  writeConfig(b, target);
  if (process.getuid?.() === 0) {
    const { uid, gid } = userIds(PG_USER);
    chownSync(b.dir, uid, gid);
  }
  // PgBouncer refuses to run as root; it runs as the postgres user like the servers.
  spawnDetached('/usr/sbin/pgbouncer', [iniPath(b)], {
    user: PG_USER,
    logFile: join(b.dir, 'pgbouncer.log'),
  });
  try {
    // Both: something else still listening there (a lab that is going down) answers TCP too.
    await waitFor(
      `PgBouncer on ${b.host}:${b.port}`,
      async () => bouncerPid(b) !== undefined && (await tcpReachable(b.host, b.port)),
      15_000,
    );
  } catch {
    const log = existsSync(join(b.dir, 'pgbouncer.log'))
      ? readFileSync(join(b.dir, 'pgbouncer.log'), 'utf8')
      : '';
    throw new LabError(
      `PgBouncer on ${b.host}:${b.port} did not start: ${log.trim().split('\n').slice(-1)[0] ?? ''}`,
    );
  }
  const pid = bouncerPid(b);
  if (pid === undefined) throw new LabError('PgBouncer started but wrote no pid file');
  return pid;
}

export function bouncerPid(b: Bouncer): number | undefined {
  if (!existsSync(pidPath(b))) return undefined;
  const pid = Number(readFileSync(pidPath(b), 'utf8').trim());
  return Number.isFinite(pid) && pidAlive(pid) ? pid : undefined;
}

async function admin(b: Bouncer, command: string): Promise<void> {
  // Over the unix socket: the admin console needs no TLS, whatever clients must use.
  const client = new pg.Client({
    host: b.dir,
    port: b.port,
    user: ADMIN_USER,
    password: ADMIN_PASSWORD,
    database: 'pgbouncer',
    connectionTimeoutMillis: 3000,
  });
  await client.connect();
  try {
    await client.query(command);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Holds new queries; waits for in-flight transactions to finish (bounded by `timeoutMs`). */
export async function pause(b: Bouncer, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  // A PAUSE stuck behind a transaction on a dead server must not stall the failover.
  await Promise.race([admin(b, 'PAUSE').catch(() => {}), timeout]);
  clearTimeout(timer);
}

/** Points the proxy at the new writer and releases the held queries. */
export async function retargetAndResume(b: Bouncer, target: { host: string; port: number }): Promise<void> {
  writeConfig(b, target);
  // RELOAD with a changed host makes PgBouncer close the old writer's server connections
  // as they are released; held clients then get connections to the new writer.
  await admin(b, 'RELOAD');
  await admin(b, 'RESUME').catch(() => {});
}

export async function stopBouncer(b: Bouncer): Promise<void> {
  const pid = bouncerPid(b);
  if (pid !== undefined) await killAndWait(pid, 3000);
}
