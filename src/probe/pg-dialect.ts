// PostgreSQL probing (dialects postgresql and aurora-postgresql): one round trip per attempt
// returns the identity and role of the server that answered.
import type { ServerIdentity } from '../analysis/sample.ts';
import { classifyPgError, isRecoverablePgError } from './classify-pg.ts';
import { openPgSession, type PgSession } from './pg-session.ts';
import { type DialectFeatures, PROBE_TABLE, type SqlDialect, type WriteRow } from './sql-dialect.ts';
import { pgSslOptions, type TlsPlan } from './tls-options.ts';
import { writeKeyOf } from './write-key.ts';

// Plain PostgreSQL has no instance identifier: cluster_name when set, else address:port.
const PLAIN_ID =
  "coalesce(nullif(current_setting('cluster_name'), ''), host(inet_server_addr()) || ':' || inet_server_port(), 'unknown')";
const AURORA_ID = 'aurora_db_instance_identifier()';

const identityColumns = (f: DialectFeatures) =>
  `${f.auroraIdentity ? AURORA_ID : PLAIN_ID} AS id, host(inet_server_addr()) AS addr, pg_is_in_recovery() AS in_recovery`;

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS ${PROBE_TABLE} (
  run_id text NOT NULL,
  endpoint text NOT NULL,
  seq bigint NOT NULL,
  client_ts timestamptz NOT NULL,
  server_ts timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, endpoint, seq)
)`;

interface IdentityRow {
  id: string;
  addr: string | null;
  in_recovery: boolean;
}

function identity(row: IdentityRow | undefined): ServerIdentity {
  if (!row) return { id: 'unknown', role: 'unknown' };
  const server: ServerIdentity = { id: row.id, role: row.in_recovery ? 'reader' : 'writer' };
  if (row.addr) server.addr = row.addr;
  return server;
}

/**
 * The write probe's statement: one simple-protocol Query message with the values as escaped
 * literals, not a parameterised statement: the extended protocol (Parse, Bind, Describe,
 * Execute, Sync) cost node-postgres about three times the CPU of the whole attempt's other work
 * (docs/accuracy.md, "CPU per probe"). seq and clientMs are numbers checked here.
 */
export function pgWriteStatement(
  client: { escapeLiteral(value: string): string },
  features: DialectFeatures,
  row: WriteRow,
): string {
  if (!Number.isSafeInteger(row.seq) || !Number.isFinite(row.clientMs))
    throw new TypeError(`probe row with bad seq/clientMs: ${row.seq}/${row.clientMs}`);
  return (
    `WITH ins AS (INSERT INTO ${PROBE_TABLE} (run_id, endpoint, seq, client_ts) ` +
    `VALUES (${client.escapeLiteral(row.runId)}, ${client.escapeLiteral(row.endpoint)}, ${row.seq}, ` +
    `to_timestamp(${row.clientMs}::float8 / 1000)) RETURNING 1) ` +
    `SELECT ${identityColumns(features)} FROM ins`
  );
}

export function pgDialect(tls: TlsPlan): SqlDialect<PgSession> {
  return {
    open: (target, signal) => openPgSession(target, pgSslOptions(tls, target.host), signal),
    classify: classifyPgError,
    isRecoverable: isRecoverablePgError,

    async setup(session, withWriteTable, wantAurora) {
      const r = await session.client.query<{ aurora: boolean; has_table: boolean }>(
        `SELECT to_regprocedure('aurora_db_instance_identifier()') IS NOT NULL AS aurora, to_regclass('${PROBE_TABLE}') IS NOT NULL AS has_table`,
      );
      const row = r.rows[0];
      // Checked first: CREATE TABLE IF NOT EXISTS fails on a read-only server even when the table exists.
      if (withWriteTable && !row?.has_table) await session.client.query(CREATE_TABLE);
      return { auroraIdentity: wantAurora && row?.aurora === true };
    },

    async write(session, features, row) {
      const r = await session.client.query<IdentityRow>(pgWriteStatement(session.client, features, row));
      return identity(r.rows[0]);
    },

    async read(session, features) {
      const r = await session.client.query<IdentityRow>(`SELECT ${identityColumns(features)}`);
      return identity(r.rows[0]);
    },

    async instances(session) {
      const r = await session.client.query<{ id: string }>(
        'SELECT DISTINCT server_id AS id FROM aurora_replica_status() ORDER BY 1',
      );
      return r.rows.map((row) => row.id);
    },

    async readBack(session, runId, endpoint) {
      const r = await session.client.query<{ seq: string; server_ms: number }>(
        `SELECT seq, extract(epoch FROM server_ts)::float8 * 1000 AS server_ms FROM ${PROBE_TABLE} ` +
          'WHERE run_id = $1 AND endpoint = $2 ORDER BY seq',
        [runId, endpoint],
      );
      return r.rows.map((row) => ({ key: writeKeyOf(endpoint, Number(row.seq)), serverMs: row.server_ms }));
    },
  };
}
