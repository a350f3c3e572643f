// The benchmarks' own real database servers: a PostgreSQL and a MariaDB primary on
// 127.0.80.x, in a temporary directory removed afterwards.
import * as maria from '../src/lab/mariadb.ts';
import * as pg from '../src/lab/postgres.ts';
import type { Dialect, ProbeEndpointConfig } from '../src/probe/types.ts';
import { labEndpoint, mariaInstance, pgInstance, TempDir } from '../test/helpers/probe-servers.ts';

export interface HostPort {
  host: string;
  port: number;
}

export const BENCH_PG: HostPort = { host: '127.0.80.2', port: 5432 };
export const BENCH_MARIA: HostPort = { host: '127.0.80.3', port: 3306 };

export type BenchDb = 'postgresql' | 'mariadb';

export class BenchServers {
  readonly dir = new TempDir();
  readonly pg = pgInstance(this.dir, 'pg', BENCH_PG.host, BENCH_PG.port);
  readonly maria = mariaInstance(this.dir, 'maria', BENCH_MARIA.host, 1, BENCH_MARIA.port);
  #started: BenchDb[] = [];

  async start(which: readonly BenchDb[]): Promise<void> {
    await Promise.all(
      which.map(async (db) => {
        this.#started.push(db);
        if (db === 'postgresql') await pg.initPrimary(this.pg);
        else await maria.initPrimary(this.maria);
      }),
    );
  }

  target(db: BenchDb): HostPort {
    return db === 'postgresql' ? BENCH_PG : BENCH_MARIA;
  }

  /** Idempotent: stops what was started and removes the directory. */
  async stop(): Promise<void> {
    const started = this.#started;
    this.#started = [];
    await Promise.all(
      started.map((db) =>
        (db === 'postgresql' ? pg.stop(this.pg, 'immediate') : maria.stop(this.maria, 'immediate')).catch(
          () => {},
        ),
      ),
    );
    this.dir.remove();
  }
}

export function dialectOf(db: BenchDb): Dialect {
  return db === 'postgresql' ? 'postgresql' : 'mysql';
}

/** A write-probe endpoint at `target` with the lab's credentials and the bench's deadlines. */
export function benchEndpoint(
  name: string,
  db: BenchDb,
  target: HostPort,
  overrides: Partial<ProbeEndpointConfig>,
): ProbeEndpointConfig {
  return labEndpoint(dialectOf(db), target, {
    name,
    connectTimeoutMs: 1000,
    queryTimeoutMs: 1000,
    slowThresholdMs: 100,
    kinds: ['write'],
    ...overrides,
  });
}

/** Stops the servers on Ctrl-C / SIGTERM before exiting. */
export function stopOnSignal(cleanup: () => Promise<void>): void {
  const handler = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping the benchmark's servers\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
