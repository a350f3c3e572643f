// The lab's endpoint names, served by a real DNS server: BIND 9 (`named`) with a dynamic
// zone. Endpoint moves are RFC 2136 updates sent with `nsupdate`, so an update never
// restarts the server and clients never see it go away — like Route 53 behind Aurora.

import { Resolver } from 'node:dns/promises';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killAndWait, LabError, pidAlive, run, spawnDetached, waitFor } from './exec.ts';

export const LAB_ZONE = 'lab.failwatch.local';
/** Aurora's endpoint TTL. */
export const ENDPOINT_TTL_SECONDS = 5;

export interface DnsServer {
  dir: string;
  host: string;
  port: number;
}

export interface DnsRecord {
  name: string;
  type: 'A' | 'CNAME';
  value: string;
}

const fqdn = (name: string) => (name.endsWith('.') ? name : `${name}.`);

export function namedBinary(): string {
  for (const p of ['/usr/sbin/named', '/usr/bin/named']) if (existsSync(p)) return p;
  throw new LabError('BIND 9 `named` not found: run `bash scripts/setup` (Debian package bind9)');
}

export async function startDns(server: DnsServer, records: DnsRecord[]): Promise<number> {
  mkdirSync(server.dir, { recursive: true });
  const zoneFile = join(server.dir, 'lab.zone');
  const zone = [
    `$TTL ${ENDPOINT_TTL_SECONDS}`,
    `@ IN SOA ns.${LAB_ZONE}. hostmaster.${LAB_ZONE}. 1 60 60 600 ${ENDPOINT_TTL_SECONDS}`,
    `@ IN NS ns.${LAB_ZONE}.`,
    `ns IN A ${server.host}`,
    ...records.map((r) => `${fqdn(r.name)} IN ${r.type} ${r.type === 'CNAME' ? fqdn(r.value) : r.value}`),
    '',
  ].join('\n');
  writeFileSync(zoneFile, zone);
  const conf = join(server.dir, 'named.conf');
  writeFileSync(
    conf,
    `options {
  directory "${server.dir}";
  pid-file "${join(server.dir, 'named.pid')}";
  session-keyfile "${join(server.dir, 'session.key')}";
  managed-keys-directory "${server.dir}";
  listen-on port ${server.port} { ${server.host}; };
  listen-on-v6 { none; };
  recursion no;
  allow-query { 127.0.0.0/8; };
  dnssec-validation no;
  notify no;
};
controls { };
zone "${LAB_ZONE}" { type primary; file "${zoneFile}"; allow-update { 127.0.0.0/8; }; };
`,
  );
  // -g: foreground with logs on stderr (we own the process), -n 1: one worker thread is plenty for a lab.
  const pid = spawnDetached(namedBinary(), ['-g', '-n', '1', '-4', '-c', conf], {
    logFile: join(server.dir, 'named.log'),
  });
  const resolver = labResolver(server);
  try {
    await waitFor(
      `DNS server on ${server.host}:${server.port}`,
      async () => {
        if (!pidAlive(pid)) throw new LabError('named exited');
        try {
          await resolver.resolve4(`ns.${LAB_ZONE}`);
          return true;
        } catch {
          return false;
        }
      },
      20_000,
    );
  } catch {
    await killAndWait(pid, 1000);
    const log = existsSync(join(server.dir, 'named.log'))
      ? readFileSync(join(server.dir, 'named.log'), 'utf8')
      : '';
    const reason = log
      .split('\n')
      .filter((l) => /fail|error|denied|in use/i.test(l))
      .slice(-2)
      .join(' | ');
    throw new LabError(
      `DNS server on ${server.host}:${server.port} did not start: ${reason || 'see named.log'}`,
    );
  }
  return pid;
}

/** A resolver that asks only the lab's DNS server, with short timeouts. */
export function labResolver(server: { host: string; port: number }): Resolver {
  const resolver = new Resolver({ timeout: 500, tries: 2 });
  resolver.setServers([`${server.host}:${server.port}`]);
  return resolver;
}

/** Atomically repoints a CNAME (one UPDATE message: delete + add). */
export async function updateCname(server: DnsServer, name: string, target: string): Promise<void> {
  const script = [
    `server ${server.host} ${server.port}`,
    `zone ${LAB_ZONE}`,
    `update delete ${fqdn(name)} CNAME`,
    `update add ${fqdn(name)} ${ENDPOINT_TTL_SECONDS} CNAME ${fqdn(target)}`,
    'send',
    '',
  ].join('\n');
  await run('nsupdate', ['-v'], { input: script, timeoutMs: 10_000 });
}

/**
 * Sets several records in one UPDATE message, so that clients see all of them change at once
 * (a Blue/Green switchover renames endpoints and instances together).
 */
export async function updateRecords(server: DnsServer, records: DnsRecord[]): Promise<void> {
  const lines = [`server ${server.host} ${server.port}`, `zone ${LAB_ZONE}`];
  for (const r of records) {
    // A name holds either a CNAME or addresses: clear both kinds before adding.
    lines.push(`update delete ${fqdn(r.name)} CNAME`, `update delete ${fqdn(r.name)} A`);
    const value = r.type === 'CNAME' ? fqdn(r.value) : r.value;
    lines.push(`update add ${fqdn(r.name)} ${ENDPOINT_TTL_SECONDS} ${r.type} ${value}`);
  }
  lines.push('send', '');
  await run('nsupdate', ['-v'], { input: lines.join('\n'), timeoutMs: 10_000 });
}

/** What the lab's DNS server answers for a name right now: the CNAME chain and addresses. */
export async function resolveChain(resolver: Resolver, name: string): Promise<string[]> {
  const chain: string[] = [];
  let current = name;
  for (let i = 0; i < 8; i++) {
    try {
      const [cname] = await resolver.resolveCname(current);
      if (!cname) break;
      chain.push(`cname:${cname}`);
      current = cname;
    } catch {
      break;
    }
  }
  const addrs = await resolver.resolve4(current);
  return [...chain, ...addrs.map((a) => `a:${a}`)];
}

export async function stopDns(pid: number): Promise<void> {
  await killAndWait(pid, 3000);
}
