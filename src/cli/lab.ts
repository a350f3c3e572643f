// `failwatch lab up | status | failover | down` — the local Aurora-like lab.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DescribeDBClustersCommand, FailoverDBClusterCommand, RDSClient } from '@aws-sdk/client-rds';
import { parseDurationMs } from '../api/duration.ts';
import {
  daemonAlive,
  defaultLabDir,
  downLab,
  type LabState,
  readLabState,
  waitForPhase,
} from '../lab/control.ts';
import { runDaemon } from '../lab/daemon.ts';
import { FAILOVER_PROFILES, type FailoverProfile } from '../lab/delays.ts';
import { namedBinary } from '../lab/dns.ts';
import { LabError } from '../lab/exec.ts';
import {
  DEFAULT_LAB_OPTIONS,
  LAB_CLUSTER_KINDS,
  Lab,
  type LabClusterKind,
  type LabEngineName,
  type LabOptions,
  MULTI_AZ_INSTANCE_STANDBYS,
  MULTI_AZ_READERS,
} from '../lab/lab.ts';
import type { GroundTruthStep } from '../lab/model.ts';
import { pgBinDir } from '../lab/postgres.ts';
import { EXIT } from './exit-codes.ts';
import { intOption } from './options.ts';
import { UsageError } from './usage.ts';

export const LAB_HELP = `Usage: failwatch lab <command> [options]

The local Aurora-like lab: real PostgreSQL and MariaDB clusters on loopback addresses,
endpoint names in a real DNS server (BIND, TTL 5 s), PgBouncer as the RDS Proxy stand-in
and an RDS Query API endpoint for @aws-sdk/client-rds.

Commands:
  up         start a lab in the background and print its endpoints
  status     show the lab's clusters, writers, endpoints and ground-truth timeline
  failover   fail a cluster over through the lab's RDS API (FailoverDBCluster)
  set        change a running lab: --failover-profile, --throttle-for
  down       stop everything the lab started and remove its directory

Options:
  --dir DIR            lab directory (default $FAILWATCH_LAB_DIR or /tmp/failwatch-lab)
  --json               machine-readable output
up:
  --engines LIST       postgresql,mysql (default both)
  --readers N          readers per cluster (default 1; 2 for multi-az-db-cluster)
  --cluster-kind K     aurora (default: Aurora clusters), multi-az-db-cluster (RDS
                       Multi-AZ DB clusters: Engine postgres / mysql, a writer and two
                       readable standbys) or multi-az-instance (RDS Multi-AZ DB instances
                       lab-pg / lab-my with a hidden standby; RebootDBInstance with
                       ForceFailover fails them over); the same failover sequence and delays
  --blue-green         each Aurora cluster gets a Blue/Green deployment (bgd-labpg00000000000,
                       bgd-labmy00000000000): a green cluster <id>-green-lab000 replicating
                       from it, for SwitchoverBlueGreenDeployment
  --global             each Aurora cluster is the primary of a Global Database (lab-pg-global,
                       lab-my-global): a secondary cluster <id>-west "in us-west-2"
                       replicating from it and a global writer endpoint, for
                       SwitchoverGlobalCluster and FailoverGlobalCluster
  --profile NAME       step delays: default (close to Aurora) or fast (~3 s failover)
  --address-base A.B.C first three octets of the lab's loopback addresses (default 127.0.10)
  --dns-port N         DNS server port on 127.0.0.1 (default 10053)
  --api-port N         RDS API port on <address-base>.1 (default 10080; control on N+1)
  --failover-profile P what an accepted failover call does: aurora (default, the Aurora-like
                       sequence) or noop (answers like RDS and does nothing)
  --no-tls             plain text only (default: TLS with a lab CA, <dir>/tls/ca.crt)
  --no-force-ssl       PostgreSQL and the proxy also accept plain text (default: TLS only,
                       like rds.force_ssl=1)
  --require-secure-transport
                       MariaDB accepts TLS clients only (default: TLS optional)
set:
  --failover-profile P aurora or noop, from now on
  --throttle-for D     the RDS API answers every request with 400 Throttling for D (e.g. 20s;
                       0s ends it)
failover:
  --cluster ID         lab-pg (default) or lab-my
  --target ID          target instance (TargetDBInstanceIdentifier)
  --crash              kill the writer instead of a clean stop (aurora-postgresql only)
  --wait               wait until the cluster is available and print the timeline
`;

const REQUIRED_BINARIES: [string, () => string][] = [
  ['PostgreSQL server (Debian postgresql)', () => pgBinDir()],
  ['MariaDB server (Debian mariadb-server)', () => need('/usr/sbin/mariadbd')],
  ['mariadb-install-db (Debian mariadb-server)', () => need('/usr/bin/mariadb-install-db')],
  ['PgBouncer (Debian pgbouncer)', () => need('/usr/sbin/pgbouncer')],
  ['BIND named (Debian bind9)', () => namedBinary()],
  ['nsupdate (Debian bind9-dnsutils)', () => need('/usr/bin/nsupdate')],
];

function need(path: string): string {
  if (!existsSync(path)) throw new LabError(`${path} is missing`);
  return path;
}

function parseEngines(value: string): LabEngineName[] {
  const list = value.split(',').map((s) => s.trim());
  for (const e of list)
    if (e !== 'postgresql' && e !== 'mysql')
      throw new UsageError(`--engines: unknown engine "${e}" (use postgresql,mysql)`);
  return list as LabEngineName[];
}

export function labOptionsFrom(values: Record<string, string | boolean | undefined>): LabOptions {
  const base = (values['address-base'] as string | undefined) ?? DEFAULT_LAB_OPTIONS.addressBase;
  if (!/^127\.\d{1,3}\.\d{1,3}$/.test(base))
    throw new UsageError(
      '--address-base must be the first three octets of a loopback address, e.g. 127.0.10',
    );
  const profile = (values.profile as string | undefined) ?? DEFAULT_LAB_OPTIONS.profile;
  if (profile !== 'default' && profile !== 'fast') throw new UsageError('--profile must be default or fast');
  const failoverProfile = failoverProfileOption(values['failover-profile'] as string | undefined);
  const clusterKind = (values['cluster-kind'] as string | undefined) ?? 'aurora';
  if (!(LAB_CLUSTER_KINDS as readonly string[]).includes(clusterKind))
    throw new UsageError(`--cluster-kind must be one of ${LAB_CLUSTER_KINDS.join(', ')}`);
  const multiAz = clusterKind === 'multi-az-db-cluster';
  const readers = intOption(
    'readers',
    values.readers as string | undefined,
    multiAz ? MULTI_AZ_READERS : 1,
    1,
    5,
  );
  if (multiAz && readers !== MULTI_AZ_READERS)
    throw new UsageError(
      `--readers: a Multi-AZ DB cluster has a writer and exactly ${MULTI_AZ_READERS} readable standbys (leave --readers out)`,
    );
  const single = clusterKind === 'multi-az-instance';
  if (single && readers !== MULTI_AZ_INSTANCE_STANDBYS)
    throw new UsageError(
      `--readers: a Multi-AZ DB instance has exactly ${MULTI_AZ_INSTANCE_STANDBYS} standby (leave --readers out)`,
    );
  if (values.global === true && clusterKind !== 'aurora')
    throw new UsageError(
      '--global: the lab builds Global Databases of Aurora clusters only (leave --cluster-kind out)',
    );
  if (values.global === true && values['blue-green'] === true)
    throw new UsageError('--global and --blue-green: a lab has one or the other');
  if (values['blue-green'] === true && clusterKind !== 'aurora')
    throw new UsageError(
      '--blue-green: the lab builds Blue/Green deployments of Aurora clusters only (leave --cluster-kind out)',
    );
  return {
    dir: resolve((values.dir as string | undefined) ?? defaultLabDir()),
    ...(values['blue-green'] === true ? { blueGreen: true } : {}),
    ...(values.global === true ? { global: true } : {}),
    engines: values.engines ? parseEngines(values.engines as string) : DEFAULT_LAB_OPTIONS.engines,
    readers,
    ...(clusterKind !== 'aurora' ? { clusterKind: clusterKind as LabClusterKind } : {}),
    addressBase: base,
    dnsPort: intOption(
      'dns-port',
      values['dns-port'] as string | undefined,
      DEFAULT_LAB_OPTIONS.dnsPort,
      1,
      65535,
    ),
    apiPort: intOption(
      'api-port',
      values['api-port'] as string | undefined,
      DEFAULT_LAB_OPTIONS.apiPort,
      1,
      65534,
    ),
    profile,
    ...(failoverProfile ? { failoverProfile } : {}),
    tls: values['no-tls'] !== true,
    forceSsl: values['no-force-ssl'] !== true,
    requireSecureTransport: values['require-secure-transport'] === true,
  };
}

function failoverProfileOption(value: string | undefined): FailoverProfile | undefined {
  if (value === undefined) return undefined;
  if (!FAILOVER_PROFILES.includes(value as FailoverProfile))
    throw new UsageError(`--failover-profile must be one of ${FAILOVER_PROFILES.join(', ')}`);
  return value as FailoverProfile;
}

const OPTIONS = {
  dir: { type: 'string' },
  json: { type: 'boolean' },
  engines: { type: 'string' },
  readers: { type: 'string' },
  'cluster-kind': { type: 'string' },
  'blue-green': { type: 'boolean' },
  global: { type: 'boolean' },
  profile: { type: 'string' },
  'address-base': { type: 'string' },
  'dns-port': { type: 'string' },
  'api-port': { type: 'string' },
  'no-tls': { type: 'boolean' },
  'no-force-ssl': { type: 'boolean' },
  'require-secure-transport': { type: 'boolean' },
  cluster: { type: 'string' },
  target: { type: 'string' },
  crash: { type: 'boolean' },
  wait: { type: 'boolean' },
  'options-json': { type: 'string' },
  'failover-profile': { type: 'string' },
  'throttle-for': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function labCommand(argv: string[], mainScript: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(LAB_HELP);
    return command ? 0 : 2;
  }
  switch (command) {
    case 'up':
      return labUp(labOptionsFrom(values), values.json === true, mainScript);
    case 'daemon':
      await runDaemon(JSON.parse(values['options-json'] ?? '{}') as LabOptions);
      return -1; // keeps running
    case 'status':
      return labStatus(labOptionsFrom(values).dir, values.json === true);
    case 'failover':
      return labFailover(labOptionsFrom(values).dir, values);
    case 'set':
      return labSet(labOptionsFrom(values).dir, values);
    case 'down':
      return labDown(labOptionsFrom(values).dir, values.json === true);
    default:
      throw new UsageError(`unknown lab command "${command}" (use up, status, failover, set, down)`);
  }
}

async function labUp(options: LabOptions, json: boolean, mainScript: string): Promise<number> {
  const existing = readLabState(options.dir);
  if (existing && daemonAlive(existing))
    throw new LabError(
      `a lab is already running in ${options.dir} (pid ${existing.daemonPid}): run \`failwatch lab down\` first`,
    );
  if (existing || (existsSync(options.dir) && readdirSync(options.dir).length > 0))
    throw new LabError(
      `${options.dir} holds a lab from a crashed run (or other files): run \`failwatch lab down${options.dir === defaultLabDir() ? '' : ` --dir ${options.dir}`}\` to clean it up`,
    );
  for (const [what, check] of REQUIRED_BINARIES) {
    try {
      check();
    } catch (err) {
      throw new LabError(`${what} is not installed (${(err as Error).message}): run \`bash scripts/setup\``);
    }
  }
  checkTraversable(options.dir);
  await new Lab(options).checkListenersFree();
  mkdirSync(options.dir, { recursive: true, mode: 0o755 });
  const log = openSync(`${options.dir}/daemon.log`, 'a');
  const child = spawn(
    process.execPath,
    [mainScript, 'lab', 'daemon', '--dir', options.dir, '--options-json', JSON.stringify(options)],
    { detached: true, stdio: ['ignore', log, log] },
  );
  child.unref();
  const result = await waitForPhase(options.dir, child.pid!, 180_000);
  if (result.phase !== 'ready') {
    await downLab(options.dir);
    throw new LabError(`lab up failed: ${result.error}`);
  }
  const state = result as LabState;
  if (json) process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
  else process.stdout.write(`${describeLab(state)}\nlab up took ${state.upSeconds?.toFixed(1)} s\n`);
  return 0;
}

/** The servers run as the postgres and mysql users: every ancestor must let them through. */
function checkTraversable(dir: string): void {
  if (process.getuid?.() !== 0) return;
  for (let d = dirname(dir); ; d = dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0)
      throw new LabError(
        `${d} is not traversable by other users, and the lab's servers run as postgres/mysql: choose a --dir under /tmp or chmod o+x ${d}`,
      );
    if (d === dirname(d)) break;
  }
}

export function describeLab(state: LabState): string {
  const lines = [
    `lab in ${state.options.dir} (daemon pid ${state.daemonPid}, failover profile ${state.options.profile})`,
    `  RDS API   ${state.apiUrl}   (any credentials, region us-east-1)`,
    `  DNS       ${state.dns.host}:${state.dns.port}   zone ${state.dns.zone}, TTL 5 s   e.g. dig @${state.dns.host} -p ${state.dns.port} <name>`,
    describeTls(state),
  ];
  for (const c of state.clusters) {
    const plain = c.engine.replace('aurora-', '');
    const what =
      c.kind === 'multi-az-db-cluster'
        ? `Multi-AZ DB cluster, ${plain}`
        : c.kind === 'multi-az-instance'
          ? `Multi-AZ DB instance, ${plain}: primary ${c.writerId}, hidden standby`
          : c.engine;
    lines.push(`  cluster ${c.id} (${what}) status ${c.status}, writer ${c.writerId}`);
    if (c.kind === 'multi-az-instance') lines.push(`    instance endpoint ${c.endpoint}:${c.port}`);
    else {
      lines.push(`    cluster endpoint  ${c.endpoint}:${c.port}`);
      lines.push(`    reader endpoint   ${c.readerEndpoint}:${c.port}`);
    }
    if (c.proxy)
      lines.push(`    proxy endpoint    ${c.proxy.endpoint}:${c.proxy.port} (${c.proxy.host}, PgBouncer)`);
    for (const i of c.instances)
      lines.push(
        `    ${i.id.padEnd(10)} ${i.host}:${i.port} ${i.id === c.writerId && c.globalRole !== 'secondary' ? 'writer' : 'reader'} ${i.status}`,
      );
  }
  for (const g of state.globalClusters ?? [])
    lines.push(
      `  Global Database ${g.id}: primary ${g.primaryClusterId}, secondary ${g.secondaryClusterIds.join(', ')}; global writer endpoint ${g.endpoint}, ${g.status}`,
    );
  for (const bg of state.blueGreenDeployments ?? [])
    lines.push(
      `  Blue/Green deployment ${bg.id} (${bg.name}): ${bg.sourceClusterId} -> ${bg.targetClusterId}, ${bg.status}`,
    );
  lines.push(
    `  user ${state.clusters[0]?.masterUsername ?? 'failwatch'}, password failwatch-lab, database app`,
  );
  if (state.iam)
    lines.push(
      `  IAM user ${state.iam.user} (TLS only): tokens signed with AWS_ACCESS_KEY_ID=${state.iam.accessKeyId} AWS_SECRET_ACCESS_KEY=${state.iam.secretAccessKey}, region ${state.iam.region}`,
    );
  return lines.join('\n');
}

function describeTls(state: LabState): string {
  const tls = state.tls;
  if (!tls?.enabled) return '  TLS       off (--no-tls): plain text only';
  const only = [
    tls.forceSsl ? 'PostgreSQL and proxy TLS only' : 'PostgreSQL and proxy TLS optional',
    tls.requireSecureTransport ? 'MariaDB TLS only' : 'MariaDB TLS optional',
  ].join(', ');
  return `  TLS       CA bundle ${tls.caFile}   (${only}; tls: { mode: verify-full, caFile: ${tls.caFile} })`;
}

function requireRunning(dir: string): LabState {
  const state = readLabState(dir);
  if (!state) throw new LabError(`no lab in ${dir}: start one with \`failwatch lab up\``);
  if (!daemonAlive(state))
    throw new LabError(
      `the lab in ${dir} is not running (crashed?): run \`failwatch lab down\` to clean it up`,
    );
  return state;
}

async function labStatus(dir: string, json: boolean): Promise<number> {
  const state = requireRunning(dir);
  if (json) {
    process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`${describeLab(state)}\n`);
  if (state.groundTruth.length > 0) process.stdout.write(`${formatTimeline(state.groundTruth)}\n`);
  return 0;
}

/** Steps that start a timeline (T0), and what the timeline is of. */
const TIMELINE_STARTS: Partial<Record<GroundTruthStep['step'], string>> = {
  'failover-requested': 'failover',
  'reboot-requested': 'reboot',
  'modify-requested': 'instance class change',
  'switchover-requested': 'Blue/Green switchover',
  'global-switchover-requested': 'Global Database switchover',
  'global-failover-requested': 'Global Database failover (data loss allowed)',
  'operation-ignored': 'ignored operation',
};

export function formatTimeline(steps: GroundTruthStep[]): string {
  const lines: string[] = [];
  let t0 = 0;
  for (const s of steps) {
    const started = TIMELINE_STARTS[s.step];
    if (started) {
      t0 = s.atMs;
      lines.push(`${started} #${s.failover} of ${s.cluster} at ${s.at} (T0)`);
    }
    lines.push(
      `  T0+${((s.atMs - t0) / 1000).toFixed(3).padStart(7)} s  ${s.step}${s.detail ? `  (${s.detail})` : ''}`,
    );
  }
  return lines.join('\n');
}

export function labRdsClient(state: LabState): RDSClient {
  return new RDSClient({
    endpoint: state.apiUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
    maxAttempts: 1,
  });
}

/** `lab set`: the failover profile and RDS API faults of a running lab, through its control endpoint. */
async function labSet(dir: string, values: Record<string, string | boolean | undefined>): Promise<number> {
  const profile = failoverProfileOption(values['failover-profile'] as string | undefined);
  const throttle = values['throttle-for'] as string | undefined;
  if (!profile && throttle === undefined)
    throw new UsageError('lab set needs --failover-profile and/or --throttle-for');
  let throttleForMs: number | undefined;
  if (throttle !== undefined) {
    try {
      throttleForMs = parseDurationMs(throttle);
    } catch {
      throw new UsageError(`--throttle-for must be a duration such as 20s or 2m, got "${throttle}"`);
    }
  }
  const state = requireRunning(dir);
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${state.controlUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new LabError(`lab set: ${((await res.json()) as { error: string }).error}`);
  };
  if (profile) await post('/failover-profile', { profile });
  if (throttleForMs !== undefined) await post('/rds-api-faults', { throttleForMs });
  process.stdout.write(
    `${[profile && `failover profile ${profile}`, throttleForMs !== undefined && `RDS API throttling for ${throttle}`].filter(Boolean).join('; ')}\n`,
  );
  return 0;
}

async function labFailover(
  dir: string,
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  const state = requireRunning(dir);
  const clusterId = (values.cluster as string | undefined) ?? state.clusters[0]?.id ?? 'lab-pg';
  const target = values.target as string | undefined;
  const before = state.groundTruth.length;
  if (values.crash) {
    const res = await fetch(`${state.controlUrl}/failover`, {
      method: 'POST',
      body: JSON.stringify({ clusterId, targetInstanceId: target, mode: 'crash' }),
    });
    if (!res.ok) throw new LabError(`failover refused: ${((await res.json()) as { error: string }).error}`);
  } else {
    const rds = labRdsClient(state);
    try {
      await rds.send(
        new FailoverDBClusterCommand({ DBClusterIdentifier: clusterId, TargetDBInstanceIdentifier: target }),
      );
    } catch (err) {
      const e = err as Error;
      throw new LabError(`failover refused: ${e.name}: ${e.message}`);
    }
  }
  if (!values.wait) {
    process.stdout.write(`failover of ${clusterId} started\n`);
    return 0;
  }
  const rds = labRdsClient(state);
  const deadline = Date.now() + 180_000;
  for (;;) {
    const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: clusterId }));
    const now = readLabState(dir);
    const finished = now?.groundTruth
      .slice(before)
      .some(
        (s) =>
          s.step === 'failover-completed' || s.step === 'failover-failed' || s.step === 'failover-ignored',
      );
    if (out.DBClusters?.[0]?.Status === 'available' && finished) {
      const steps = now!.groundTruth.slice(before);
      if (values.json) process.stdout.write(`${JSON.stringify(steps, null, 2)}\n`);
      else process.stdout.write(`${formatTimeline(steps)}\n`);
      return steps.some((s) => s.step === 'failover-failed') ? EXIT.runFailed : EXIT.pass;
    }
    if (Date.now() > deadline) throw new LabError('the failover did not finish within 180 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function labDown(dir: string, json: boolean): Promise<number> {
  const { forced } = await downLab(dir);
  if (json) process.stdout.write(`${JSON.stringify({ dir, removed: true, forcedKills: forced })}\n`);
  else
    process.stdout.write(`lab in ${dir} is down${forced ? ` (${forced} leftover processes killed)` : ''}\n`);
  return 0;
}
