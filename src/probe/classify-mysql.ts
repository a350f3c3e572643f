// mysql2 errors -> the taxonomy. Server errors carry `errno` (mysql2
// lib/constants/errors.js) and its name in `code`; client-side ones only a `code`.
import type { ErrorClass } from '../analysis/error-class.ts';
import { classifyNetworkError, errorFacts } from './classify-network.ts';
import type { ClassifiedError } from './types.ts';

const ERRNO_CLASSES: Record<number, ErrorClass> = {
  1290: 'read_only', // ER_OPTION_PREVENTS_STATEMENT: running with the --read-only option
  1836: 'read_only', // ER_READ_ONLY_MODE
  1792: 'read_only', // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
  1045: 'auth_error', // ER_ACCESS_DENIED_ERROR
  1044: 'auth_error', // ER_DBACCESS_DENIED_ERROR
  1698: 'auth_error', // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
  1040: 'too_many_connections', // ER_CON_COUNT_ERROR
  1203: 'too_many_connections', // ER_TOO_MANY_USER_CONNECTIONS
  1226: 'too_many_connections', // ER_USER_LIMIT_REACHED (max_user_connections)
  1053: 'admin_shutdown', // ER_SERVER_SHUTDOWN
  1927: 'admin_shutdown', // MariaDB ER_CONNECTION_KILLED: KILL CONNECTION
  4031: 'connection_lost', // ER_CLIENT_INTERACTION_TIMEOUT: the server closed an idle session
};

const CODE_CLASSES: Record<string, ErrorClass> = {
  PROTOCOL_CONNECTION_LOST: 'connection_lost',
  HANDSHAKE_NO_SSL_SUPPORT: 'tls_error',
  PROTOCOL_SEQUENCE_TIMEOUT: 'query_timeout',
};

const LOST_MESSAGES = [
  "Can't add new command when connection is in closed state",
  "Can't write in closed state",
];

export function classifyMysqlError(err: unknown): ClassifiedError {
  const facts = errorFacts(err);
  const { code, errno, message } = facts;
  const byErrno = errno === undefined ? undefined : ERRNO_CLASSES[errno];
  const rawCode = code ?? (errno === undefined ? undefined : String(errno));
  if (byErrno) return { class: byErrno, code: rawCode ?? String(errno), message };
  const byCode = code === undefined ? undefined : CODE_CLASSES[code];
  if (byCode) return { class: byCode, code, message };
  const network = classifyNetworkError(err);
  if (network) return network;
  if (LOST_MESSAGES.includes(message)) return { class: 'connection_lost', message };
  return rawCode === undefined ? { class: 'other', message } : { class: 'other', code: rawCode, message };
}

/** A server error after which the session can still run statements. */
export function isRecoverableMysqlError(err: unknown): boolean {
  const { errno, fatal } = errorFacts(err);
  return errno !== undefined && fatal !== true;
}
