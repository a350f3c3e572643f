// MySQL / MariaDB probing (dialects mysql and aurora-mysql): the write sends the INSERT and
// the identity SELECT as one multi-statement query, so it is still one round trip.
import type { ServerIdentity } from '../analysis/sample.ts';
import { classifyMysqlError, isRecoverableMysqlError } from './classify-mysql.ts';
import { type MysqlSession, openMysqlSession } from './mysql-session.ts';
import { type DialectFeatures, PROBE_TABLE, type SqlDialect } from './sql-dialect.ts';
import { mysqlSslOptions, type TlsPlan } from './tls-options.ts';
import { writeKeyOf } from './write-key.ts';

const identitySelect = (f: DialectFeatures) =>
  'SELECT @@hostname AS hostname, @@port AS port, @@server_id AS server_id, ' +
  `@@read_only AS ro, @@innodb_read_only AS innodb_ro${f.auroraIdentity ? ', @@aurora_server_id AS aurora_id' : ''}`;

/** MySQL/MariaDB: Unknown table '%s' in %s. */
const ER_UNKNOWN_TABLE = 1109;

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS ${PROBE_TABLE} (
  run_id VARCHAR(64) NOT NULL,
  endpoint VARCHAR(128) NOT NULL,
  seq BIGINT NOT NULL,
  client_ts TIMESTAMP(3) NOT NULL,
  server_ts TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (run_id, endpoint, seq)
) ENGINE=InnoDB`;

interface IdentityRow {
  hostname: string;
  port: number;
  server_id: number | string;
  ro: number | string;
  innodb_ro: number | string;
  aurora_id?: string;
}

function identity(row: IdentityRow | undefined, connectAddr: string | undefined): ServerIdentity {
  if (!row) return { id: 'unknown', role: 'unknown' };
  // Aurora readers have innodb_read_only; plain replicas are usually read_only.
  const readOnly = Number(row.ro) === 1 || Number(row.innodb_ro) === 1;
  const server: ServerIdentity = {
    id: row.aurora_id ?? `${row.hostname}:${row.port}/${row.server_id}`,
    role: readOnly ? 'reader' : 'writer',
  };
  if (connectAddr) server.addr = connectAddr;
  return server;
}

export function mysqlDialect(tls: TlsPlan): SqlDialect<MysqlSession> {
  const ssl = mysqlSslOptions(tls);
  return {
    open: (target, signal) => openMysqlSession(target, ssl, signal),
    classify: classifyMysqlError,
    isRecoverable: isRecoverableMysqlError,

    async setup(session, withWriteTable, wantAurora) {
      const tables = await session.query<{ n: number }[]>(
        'SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?',
        [PROBE_TABLE],
      );
      // Checked first: CREATE TABLE IF NOT EXISTS fails on a read-only server even when the table exists.
      if (withWriteTable && Number(tables[0]?.n) === 0) await session.query(CREATE_TABLE);
      if (!wantAurora) return { auroraIdentity: false };
      const vars = await session.query<unknown[]>("SHOW VARIABLES LIKE 'aurora_server_id'");
      return { auroraIdentity: vars.length > 0 };
    },

    async write(session, features, row) {
      const results = await session.query<[unknown, IdentityRow[]]>(
        `INSERT INTO ${PROBE_TABLE} (run_id, endpoint, seq, client_ts) VALUES (?, ?, ?, FROM_UNIXTIME(? / 1000)); ${identitySelect(features)}`,
        [row.runId, row.endpoint, row.seq, row.clientMs],
      );
      return identity(results[1]?.[0], session.connectAddr);
    },

    async read(session, features) {
      const rows = await session.query<IdentityRow[]>(identitySelect(features));
      return identity(rows[0], session.connectAddr);
    },

    async instances(session) {
      // Aurora MySQL lists its instances in information_schema.replica_host_status; MariaDB (the
      // lab) has no such table, and the lab keeps the same list in failwatch_lab.instances.
      let rows: { id: string }[];
      try {
        rows = await session.query<{ id: string }[]>(
          'SELECT DISTINCT SERVER_ID AS id FROM information_schema.replica_host_status ORDER BY 1',
        );
      } catch (err) {
        if ((err as { errno?: number }).errno !== ER_UNKNOWN_TABLE) throw err;
        // Only MariaDB (the lab) answers from the lab's table; Aurora MySQL never gets here.
        const version = await session.query<{ v: string }[]>('SELECT VERSION() AS v');
        if (!/mariadb/i.test(String(version[0]?.v))) throw err;
        rows = await session.query<{ id: string }[]>(
          'SELECT server_id AS id FROM failwatch_lab.instances ORDER BY 1',
        );
      }
      return rows.map((row) => String(row.id));
    },

    async readBack(session, runId, endpoint) {
      const rows = await session.query<{ seq: number | string; server_ms: number | string }[]>(
        `SELECT seq, UNIX_TIMESTAMP(server_ts) * 1000 AS server_ms FROM ${PROBE_TABLE} WHERE run_id = ? AND endpoint = ? ORDER BY seq`,
        [runId, endpoint],
      );
      return rows.map((row) => ({
        key: writeKeyOf(endpoint, Number(row.seq)),
        serverMs: Number(row.server_ms),
      }));
    },
  };
}
