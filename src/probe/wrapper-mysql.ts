// The AWS Advanced NodeJS Wrapper around mysql2 (aurora-mysql endpoints): the same sessions,
// deadlines and error classes as the PostgreSQL stack (wrapper-session.ts), and a database
// dialect of failwatch's own. The wrapper reads Aurora MySQL's topology from
// information_schema.replica_host_status and @@aurora_server_id, which MariaDB (the lab's
// engine) cannot serve; so the dialect is the wrapper's own Aurora MySQL dialect (a subclass),
// which answers with the wrapper's queries where the server has @@aurora_server_id (Aurora)
// and with the lab's topology tables otherwise (src/lab/aurora-topology.ts). The wrapper's
// failover logic is its own either way.
import type { Socket } from 'node:net';
import { classifyMysqlError, isRecoverableMysqlError } from './classify-mysql.ts';
import type { SessionTarget } from './db-session.ts';
import { mysqlDialect } from './mysql-dialect.ts';
import type { HostResolver } from './resolve-host.ts';
import type { SqlDialect } from './sql-dialect.ts';
import { mysqlSslOptions, type TlsPlan } from './tls-options.ts';
import type { WrapperSettings } from './types.ts';
import {
  socketFactory,
  throughWrapper,
  WrapperMysqlSession,
  type WrapperTimeouts,
  withoutDotenv,
  wrapperErrorClassifier,
  wrapperProperties,
} from './wrapper-session.ts';

type Rows = Record<string, unknown>[];
interface ClientWrapperLike {
  query(sql: string): Promise<[Rows, unknown]>;
}
interface HostListProviderLike {
  createHost(host: string, isWriter: boolean, weight: number, lastUpdateTime: number): unknown;
}

/** The lab's answers to the wrapper's topology questions (MariaDB, failwatch_lab tables). */
export const LAB_MYSQL_QUERIES = {
  topology:
    'SELECT i.server_id AS server_id, i.server_id = w.server_id AS is_writer FROM failwatch_lab.instances i JOIN failwatch_lab.writer w ORDER BY i.server_id',
  hostId: 'SELECT server_id AS host FROM failwatch_lab.instances WHERE address = @@bind_address',
  isReader: 'SELECT @@read_only AS is_reader',
  writerId:
    'SELECT w.server_id AS server_id FROM failwatch_lab.writer w JOIN failwatch_lab.instances i ON i.server_id = w.server_id WHERE i.address = @@bind_address',
};

interface MysqlWrapperModules {
  AwsMySQLClient: new (
    config: Record<string, unknown>,
  ) => ConstructorParameters<typeof WrapperMysqlSession>[0];
  dialect: object;
}

let modules: Promise<MysqlWrapperModules> | undefined;
function loadMysqlWrapper(): Promise<MysqlWrapperModules> {
  modules ??= withoutDotenv(async () => {
    const entry = import.meta.resolve('aws-advanced-nodejs-wrapper/mysql');
    const [{ AwsMySQLClient }, { AuroraMySQLDatabaseDialect }, { HostRole }] = await Promise.all([
      import('aws-advanced-nodejs-wrapper/mysql'),
      // Not in the package's exports: the class the wrapper documents subclassing for
      // customDatabaseDialect, by its file.
      import(new URL('./mysql/lib/dialect/aurora_mysql_database_dialect.js', entry).href),
      import('aws-advanced-nodejs-wrapper'),
    ]);
    return {
      AwsMySQLClient: AwsMySQLClient as unknown as MysqlWrapperModules['AwsMySQLClient'],
      dialect: labAwareDialect(AuroraMySQLDatabaseDialect, HostRole),
    };
  });
  return modules;
}

// biome-ignore lint/suspicious/noExplicitAny: the wrapper's dialect class has no usable types here
function labAwareDialect(Base: any, HostRole: { READER: unknown; WRITER: unknown }): object {
  class LabAwareAuroraMySQLDialect extends Base {
    /** Aurora or the lab, decided once by the first connection asked. */
    #lab: Promise<boolean> | undefined;

    #isLab(client: ClientWrapperLike): Promise<boolean> {
      this.#lab ??= client.query('SELECT @@aurora_server_id AS id').then(
        () => false,
        () => true,
      );
      return this.#lab;
    }

    async queryForTopology(client: ClientWrapperLike, provider: HostListProviderLike): Promise<unknown[]> {
      if (!(await this.#isLab(client))) return super.queryForTopology(client, provider);
      const [rows] = await client.query(LAB_MYSQL_QUERIES.topology);
      return rows.map((row) =>
        provider.createHost(String(row.server_id), Number(row.is_writer) === 1, 0, Date.now()),
      );
    }

    async identifyConnection(client: ClientWrapperLike): Promise<string> {
      if (!(await this.#isLab(client))) return super.identifyConnection(client);
      const [rows] = await client.query(LAB_MYSQL_QUERIES.hostId);
      return String(rows[0]?.host ?? '');
    }

    async getHostRole(client: ClientWrapperLike): Promise<unknown> {
      if (!(await this.#isLab(client))) return super.getHostRole(client);
      // MariaDB replicas are read_only (Aurora readers innodb_read_only, which the base reads).
      const [rows] = await client.query(LAB_MYSQL_QUERIES.isReader);
      return Number(rows[0]?.is_reader) === 1 ? HostRole.READER : HostRole.WRITER;
    }

    async getWriterId(client: ClientWrapperLike): Promise<string | null> {
      if (!(await this.#isLab(client))) return super.getWriterId(client);
      const [rows] = await client.query(LAB_MYSQL_QUERIES.writerId);
      return rows[0]?.server_id ? String(rows[0].server_id) : null;
    }

    async isDialect(): Promise<boolean> {
      return true;
    }

    getDialectName(): string {
      return 'LabAwareAuroraMySQLDialect';
    }
  }
  return new LabAwareAuroraMySQLDialect();
}

async function openWrapperMysqlSession(
  target: SessionTarget,
  tls: TlsPlan,
  settings: WrapperSettings,
  timeouts: WrapperTimeouts,
  resolver: HostResolver,
  signal: AbortSignal,
): Promise<WrapperMysqlSession> {
  const { AwsMySQLClient, dialect } = await loadMysqlWrapper();
  const sockets = new Set<Socket>();
  const ssl = mysqlSslOptions(tls);
  const aws = new AwsMySQLClient({
    ...wrapperProperties(target, settings, timeouts, 'mysql'),
    customDatabaseDialect: dialect,
    ...(ssl ? { ssl } : {}),
    stream: socketFactory(resolver, sockets, true),
  });
  const session = new WrapperMysqlSession(aws, sockets);
  await session.connect(signal);
  return session;
}

/** The mysql dialect's statements, run through the wrapper. */
export function wrapperMysqlDialect(
  tls: TlsPlan,
  settings: WrapperSettings,
  timeouts: WrapperTimeouts,
  resolver: HostResolver,
): SqlDialect<WrapperMysqlSession> {
  // The statements only use session.query(sql, values), which both sessions have.
  return throughWrapper(
    mysqlDialect(tls) as unknown as SqlDialect<WrapperMysqlSession>,
    (target, signal) => openWrapperMysqlSession(target, tls, settings, timeouts, resolver, signal),
    wrapperErrorClassifier(classifyMysqlError, isRecoverableMysqlError),
  );
}
