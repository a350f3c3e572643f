// Real PostgreSQL and MariaDB instances for the probe tests, on their own loopback addresses
// (127.0.40.x PostgreSQL, 127.0.41.x MariaDB) and in a temporary directory removed afterwards.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as maria from '../../src/lab/mariadb.ts';
import * as pg from '../../src/lab/postgres.ts';
import type { Dialect, ProbeEndpointConfig } from '../../src/probe/types.ts';

export class TempDir {
  readonly path: string;
  constructor() {
    this.path = mkdtempSync(join(tmpdir(), 'failwatch-probe-'));
    // The servers run as postgres / mysql and must reach their directories.
    chmodSync(this.path, 0o755);
  }
  sub(name: string): string {
    return join(this.path, name);
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export function pgInstance(dir: TempDir, name: string, host: string, port = 5432): pg.PgInstance {
  return { dataDir: dir.sub(`${name}/data`), runDir: dir.sub(`${name}/run`), host, port };
}

export function mariaInstance(
  dir: TempDir,
  name: string,
  host: string,
  serverId: number,
  port = 3306,
): maria.MariaInstance {
  return { dataDir: dir.sub(`${name}/data`), runDir: dir.sub(`${name}/run`), host, port, serverId };
}

/** A probe endpoint pointing at `host:port` with the lab's credentials. */
export function labEndpoint(
  dialect: Dialect,
  target: { host: string; port: number },
  overrides: Partial<ProbeEndpointConfig> = {},
): ProbeEndpointConfig {
  return {
    name: 'cluster',
    dialect,
    host: target.host,
    port: target.port,
    database: pg.LAB_DB_NAME,
    user: pg.LAB_DB_USER,
    password: pg.LAB_DB_PASSWORD,
    connectionMode: 'fresh',
    intervalMs: 100,
    connectTimeoutMs: 2000,
    queryTimeoutMs: 2000,
    slowThresholdMs: 1000,
    tls: { mode: 'disable' },
    kinds: ['write', 'read'],
    ...overrides,
  };
}

export async function stopAll(pgs: pg.PgInstance[], marias: maria.MariaInstance[]): Promise<void> {
  await Promise.all([
    ...pgs.map((i) => pg.stop(i, 'immediate').catch(() => {})),
    ...marias.map((i) => maria.stop(i, 'immediate').catch(() => {})),
  ]);
}
