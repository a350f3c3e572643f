// IAM database authentication in the lab, checked for real: each engine gets a PAM service
// whose only auth step is pam_exec running iam-verify.ts on the password the client sent (the
// IAM token), so a server accepts a token only when its SigV4 signature, expiry, host, user
// and action hold against the lab's test credentials.
// - PostgreSQL (Debian builds --with-pam): members of the role rds_iam log in through
//   `hostssl ... pam pamservice=...` (and never without TLS), as on RDS.
// - MariaDB: the pam plugin in its v1 form (auth_pam_v1.so runs PAM inside the server as the
//   mysql user; the v2 form needs the setuid auth_pam_tool, which Debian's package lacks),
//   with pam_use_cleartext_plugin so clients send the token with mysql_clear_password, as
//   they do to Aurora MySQL's AWSAuthenticationPlugin. The user REQUIREs SSL.
// PAM service files live in /etc/pam.d, so this needs root (the lab runs as root anyway).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type IamVerifierConfig, LAB_IAM_CREDENTIALS, LAB_IAM_REGION, LAB_IAM_USER } from './iam-token.ts';
import * as maria from './mariadb.ts';
import type { LabCluster } from './model.ts';
import * as pg from './postgres.ts';

export type IamEngine = 'postgresql' | 'mysql';

const PAM_DIR = '/etc/pam.d';
const VERIFIER_FILES = ['iam-verify.ts', 'iam-token.ts'];

/** Whether `user` can reach `path` (`-r` read, `-x` execute): every parent must let it through. */
function reachableBy(user: string, path: string, test: '-r' | '-x'): boolean {
  if (process.getuid?.() !== 0) return true;
  return spawnSync('runuser', ['-u', user, '--', 'test', test, path], { stdio: 'ignore' }).status === 0;
}

/**
 * The verifier runs as the database server's user, which may not see into the checkout (a
 * private home or a 0700 CI directory): its two files (node: built-ins only) are copied into
 * the lab directory, and Node itself into a world-readable cache when the server user cannot
 * execute the one running now.
 */
/** Node's type stripping, without its one-time ExperimentalWarning in the lab's output. */
function stripTypes(source: string): string {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    if (!text.includes('stripTypeScriptTypes')) Reflect.apply(emit, process, [warning, ...rest]);
  }) as typeof process.emitWarning;
  try {
    return stripTypeScriptTypes(source);
  } finally {
    process.emitWarning = emit;
  }
}

function verifierCommand(dir: string, user: string): { node: string; script: string } {
  const into = join(dir, 'iam-verifier');
  mkdirSync(into, { recursive: true, mode: 0o755 });
  chmodSync(into, 0o755);
  // As JavaScript (types stripped, imports renamed): pam_exec starts the verifier for every
  // login, and loading Node's TypeScript support took 150 of its 230 ms here.
  for (const f of VERIFIER_FILES) {
    const source = readFileSync(fileURLToPath(new URL(`./${f}`, import.meta.url)), 'utf8');
    const js = stripTypes(source).replace(/(from '\.\/[\w-]+)\.ts'/g, "$1.mjs'");
    const file = join(into, f.replace(/\.ts$/, '.mjs'));
    writeFileSync(file, js);
    chmodSync(file, 0o644);
  }
  let node = process.execPath;
  if (!reachableBy(user, node, '-x')) {
    node = `/tmp/failwatch-lab-node-${process.version}`;
    if (!existsSync(node)) {
      const partial = `${node}.${process.pid}`;
      copyFileSync(process.execPath, partial);
      chmodSync(partial, 0o755);
      renameSync(partial, node);
    }
  }
  return { node, script: join(into, 'iam-verify.mjs') };
}
const SERVER_USER: Record<IamEngine, string> = { postgresql: pg.PG_USER, mysql: maria.MYSQL_USER };

export interface IamService {
  engine: IamEngine;
  /** PAM service name (file in /etc/pam.d). */
  name: string;
  /** The verifier's configuration (credentials, accepted host:port names). */
  configFile: string;
  /** pam_exec's log: one line per login saying accepted, or rejected and why. */
  logFile: string;
}

/** PAM service names are global: derive them from the directory that owns them. */
export function iamServiceName(ownerDir: string, engine: IamEngine): string {
  const id = createHash('sha256').update(ownerDir).digest('hex').slice(0, 8);
  return `failwatch-iam-${id}-${engine === 'postgresql' ? 'pg' : 'mysql'}`;
}

/**
 * Writes the PAM service for `engine` and its verifier configuration under `dir`. `hosts` are
 * the `host:port` names a token may be signed for (the endpoint names clients dial).
 */
export function installIamService(dir: string, engine: IamEngine, hosts: string[]): IamService {
  const name = iamServiceName(dir, engine);
  const service: IamService = {
    engine,
    name,
    configFile: join(dir, `iam-${engine}.json`),
    logFile: join(dir, `iam-verify-${engine}.log`),
  };
  const config: IamVerifierConfig = { ...LAB_IAM_CREDENTIALS, region: LAB_IAM_REGION, hosts };
  writeFileSync(service.configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 });
  // pam_exec opens the log as the server's user, who must own it.
  writeFileSync(service.logFile, '', { mode: 0o640 });
  if (process.getuid?.() === 0) {
    const { uid, gid } = pg.userIds(SERVER_USER[engine]);
    chownSync(service.logFile, uid, gid);
  }
  // pam_exec runs the program with a bare environment: absolute paths only. Node must be the
  // one running now (it strips the TypeScript types).
  const verifier = verifierCommand(dir, SERVER_USER[engine]);
  writeFileSync(
    join(PAM_DIR, name),
    [
      '# failwatch lab: IAM database authentication tokens, checked by iam-verify.ts.',
      `# Written by failwatch for ${dir}; removed with it.`,
      `auth required pam_exec.so expose_authtok log=${service.logFile} ${verifier.node} ${verifier.script} ${service.configFile}`,
      'account required pam_permit.so',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  return service;
}

export function removeIamServices(dir: string): void {
  for (const engine of ['postgresql', 'mysql'] as const) {
    const file = join(PAM_DIR, iamServiceName(dir, engine));
    if (existsSync(file)) rmSync(file, { force: true });
  }
}

/**
 * PostgreSQL: a role rds_iam whose members log in with IAM tokens over TLS only (pg_hba lines
 * ahead of the password lines), and the lab's IAM user in it, acting as the lab user (SET role).
 * Run on the writer before its replicas are cloned (pg_basebackup copies pg_hba.conf).
 */
export async function enablePgIam(inst: pg.PgInstance, service: string): Promise<void> {
  const hbaFile = join(inst.dataDir, 'pg_hba.conf');
  const hba = readFileSync(hbaFile, 'utf8');
  if (!hba.includes(`pamservice=${service}`)) {
    writeFileSync(
      hbaFile,
      [
        '# failwatch lab: IAM database authentication (members of rds_iam), TLS only',
        `hostssl all +rds_iam 127.0.0.0/8 pam pamservice=${service}`,
        'hostnossl all +rds_iam 127.0.0.0/8 reject',
        hba,
      ].join('\n'),
    );
  }
  await pg.psqlLocal(
    inst,
    "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam') THEN CREATE ROLE rds_iam NOLOGIN; END IF; " +
      `IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${LAB_IAM_USER}') THEN CREATE ROLE ${LAB_IAM_USER} LOGIN; END IF; END $$;` +
      `GRANT rds_iam TO ${LAB_IAM_USER}; GRANT ${pg.LAB_DB_USER} TO ${LAB_IAM_USER};` +
      // Its sessions act as the lab user, so the tables it creates (failwatch_probe) belong to
      // that role and a later run with the password user can still write them.
      `ALTER ROLE ${LAB_IAM_USER} SET role = '${pg.LAB_DB_USER}';`,
  );
  await pg.psqlLocal(inst, 'SELECT pg_reload_conf()');
}

/** MariaDB: the lab's IAM user, identified via the PAM service, TLS required. Run on the writer. */
export async function enableMariaIam(inst: maria.MariaInstance, service: string): Promise<void> {
  const user = `'${LAB_IAM_USER}'@'%'`;
  await maria.sqlLocal(
    inst,
    `CREATE USER IF NOT EXISTS ${user} IDENTIFIED VIA pam USING '${service}' REQUIRE SSL;` +
      `GRANT ALL ON ${pg.LAB_DB_NAME}.* TO ${user};` +
      `GRANT PROCESS, REPLICATION CLIENT ON *.* TO ${user};`,
  );
}

/** What `lab status --json` tells a user about IAM in the lab. */
export interface LabIamInfo {
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  user: string;
  services: IamService[];
}

export function labIamInfo(services: IamService[]): LabIamInfo {
  return { region: LAB_IAM_REGION, ...LAB_IAM_CREDENTIALS, user: LAB_IAM_USER, services };
}

/** The names clients dial for a cluster (cluster, reader and instance endpoints), with its port. */
export function clusterIamHosts(cluster: LabCluster): string[] {
  const names = [cluster.endpoint, cluster.readerEndpoint, ...cluster.instances.map((i) => i.dnsName)];
  return names.map((name) => `${name}:${cluster.port}`);
}

/**
 * `lab up`: one PAM service per engine, accepting tokens for that engine's endpoint names.
 * Without root there is no /etc/pam.d to write: the lab runs without IAM users.
 */
export function installLabIam(dir: string, clusters: LabCluster[]): IamService[] {
  if (process.getuid?.() !== 0) return [];
  return clusters.map((c) =>
    installIamService(dir, c.engine === 'aurora-postgresql' ? 'postgresql' : 'mysql', clusterIamHosts(c)),
  );
}

/** Creates the IAM user on a cluster's new writer (replicas get it by replication / base backup). */
export async function enableLabIamOnWriter(
  cluster: LabCluster,
  writer: pg.PgInstance & maria.MariaInstance,
  services: IamService[],
): Promise<void> {
  const engine: IamEngine = cluster.engine === 'aurora-postgresql' ? 'postgresql' : 'mysql';
  const service = services.find((s) => s.engine === engine);
  if (!service) return;
  if (engine === 'postgresql') await enablePgIam(writer, service.name);
  else await enableMariaIam(writer, service.name);
}
