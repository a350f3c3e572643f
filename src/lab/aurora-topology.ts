// Aurora's topology sources, emulated on the lab's real servers, so that a client which reads
// the cluster's topology from SQL (the AWS Advanced NodeJS Wrapper's failover plugin) runs its
// own logic against the lab as it would against Aurora.
//
// PostgreSQL (what the wrapper's Aurora PostgreSQL dialect reads; the wrapper picks that dialect
// by the RDS host name, which the lab's names are not, so the prober names it: `aurora-pg`):
// - `pg_catalog.aurora_db_instance_identifier()`: the instance this session is on;
// - `pg_catalog.aurora_replica_status()`: every instance, the writer's session_id being
//   `MASTER_SESSION_ID`.
// Nothing is stored about who the writer is: each server derives it from its own replication
// state, so the answer is as true as the servers are during the lab's failover sequence. A
// server that is not in recovery is the writer; a replica names the instance it is streaming
// from; a replica whose stream is down (its writer just went away) names no writer, as Aurora
// readers do while a failover is under way.
//
// MariaDB cannot serve Aurora MySQL's information_schema.replica_host_status or
// @@aurora_server_id, so the wrapper reads the lab's own tables through a custom dialect
// (src/probe/wrapper-mysql.ts): `failwatch_lab.instances` (identifier, bind address, port) and
// `failwatch_lab.writer`, which the lab's failover sequence updates on the new writer right
// after its promotion; replicas see it when they follow the new writer, as Aurora readers
// learn the new topology.
import { type MariaInstance, sqlLocal } from './mariadb.ts';
import { LAB_DB_NAME, type PgInstance, psqlLocal } from './postgres.ts';

export interface TopologyMember {
  id: string;
  host: string;
  port: number;
}

/** SQL that installs the emulation on a writer (it replicates to every reader cloned from it). */
export function auroraPgTopologySql(members: TopologyMember[]): string {
  const rows = members
    .map((m) => `('${sqlText(m.id)}', '${sqlText(m.host)}'::inet, ${Math.trunc(m.port)})`)
    .join(', ');
  return `
CREATE SCHEMA IF NOT EXISTS failwatch_lab;
CREATE TABLE IF NOT EXISTS failwatch_lab.instances (server_id text PRIMARY KEY, address inet NOT NULL, port integer NOT NULL);
DELETE FROM failwatch_lab.instances;
INSERT INTO failwatch_lab.instances VALUES ${rows};
CREATE OR REPLACE FUNCTION pg_catalog.aurora_db_instance_identifier() RETURNS text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(
    (SELECT server_id FROM failwatch_lab.instances
      WHERE address = inet_server_addr() AND port = current_setting('port')::integer),
    host(inet_server_addr()) || ':' || current_setting('port')) $$;
CREATE OR REPLACE FUNCTION pg_catalog.aurora_replica_status()
  RETURNS TABLE (server_id text, session_id text, cpu double precision,
                 replica_lag_in_msec double precision, last_update_timestamp timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH writer AS (
    SELECT CASE WHEN NOT pg_is_in_recovery() THEN pg_catalog.aurora_db_instance_identifier()
           ELSE (SELECT i.server_id FROM failwatch_lab.instances i JOIN pg_catalog.pg_stat_wal_receiver r
                   ON r.status = 'streaming' AND host(i.address) = r.sender_host AND i.port = r.sender_port)
           END AS id)
  SELECT i.server_id,
         CASE WHEN i.server_id = w.id THEN 'MASTER_SESSION_ID' ELSE 'replica-' || i.server_id END,
         0::double precision, 0::double precision, now()
    FROM failwatch_lab.instances i CROSS JOIN writer w ORDER BY i.server_id $$;
GRANT USAGE ON SCHEMA failwatch_lab TO PUBLIC;
GRANT SELECT ON failwatch_lab.instances TO PUBLIC;`;
}

function sqlText(s: string): string {
  return s.replaceAll("'", "''");
}

/**
 * Installs the emulation on a new Aurora PostgreSQL writer, before its readers are cloned: the
 * table and functions live in the application database and replicate to every reader.
 */
export async function emulateAuroraPgTopology(writer: PgInstance, members: TopologyMember[]): Promise<void> {
  await psqlLocal(writer, auroraPgTopologySql(members), LAB_DB_NAME);
}

/** MariaDB: the lab's topology tables (they replicate to every reader cloned afterwards). */
export function labMysqlTopologySql(members: TopologyMember[], writerId: string): string {
  const rows = members
    .map((m) => `('${sqlText(m.id)}', '${sqlText(m.host)}', ${Math.trunc(m.port)})`)
    .join(', ');
  return `CREATE DATABASE IF NOT EXISTS failwatch_lab;
CREATE TABLE IF NOT EXISTS failwatch_lab.instances (server_id VARCHAR(64) PRIMARY KEY, address VARCHAR(64) NOT NULL, port INT NOT NULL);
CREATE TABLE IF NOT EXISTS failwatch_lab.writer (one INT PRIMARY KEY, server_id VARCHAR(64) NOT NULL, changed TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
DELETE FROM failwatch_lab.instances;
INSERT INTO failwatch_lab.instances VALUES ${rows};
REPLACE INTO failwatch_lab.writer (one, server_id) VALUES (1, '${sqlText(writerId)}');
GRANT SELECT ON failwatch_lab.* TO PUBLIC;`;
}

/** MariaDB: what the new writer says once promoted (readers learn it by replication). */
export function labMysqlWriterSql(writerId: string): string {
  return `UPDATE failwatch_lab.writer SET server_id = '${sqlText(writerId)}', changed = CURRENT_TIMESTAMP(6) WHERE one = 1`;
}

/** Installs the MariaDB tables on a new Aurora MySQL writer, before its readers are cloned. */
export async function emulateLabMysqlTopology(
  writer: MariaInstance,
  members: TopologyMember[],
  writerId: string,
): Promise<void> {
  await sqlLocal(writer, labMysqlTopologySql(members, writerId));
}

/** The new writer names itself, right after its promotion. */
export async function announceLabMysqlWriter(writer: MariaInstance, writerId: string): Promise<void> {
  await sqlLocal(writer, labMysqlWriterSql(writerId));
}
