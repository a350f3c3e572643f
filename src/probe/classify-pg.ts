// node-postgres errors -> the taxonomy. Server errors carry a SQLSTATE in `code`
// (PostgreSQL errcodes.txt); connection-level errors are plain Errors with a message.
import type { ErrorClass } from '../analysis/error-class.ts';
import { classifyNetworkError, errorFacts } from './classify-network.ts';
import type { ClassifiedError } from './types.ts';

const SQLSTATE_CLASSES: Record<string, ErrorClass> = {
  '25006': 'read_only', // read_only_sql_transaction: "cannot execute INSERT in a read-only transaction"
  '57P03': 'starting_up', // cannot_connect_now: starting up / shutting down / in recovery mode
  '57P01': 'admin_shutdown', // admin_shutdown: pg_terminate_backend, fast shutdown
  '57P02': 'crash_shutdown', // crash_shutdown: another backend crashed (sent as a WARNING notice)
  '28P01': 'auth_error', // invalid_password
  '28000': 'auth_error', // invalid_authorization_specification (e.g. no pg_hba.conf entry)
  '53300': 'too_many_connections', // too_many_connections (also per-role CONNECTION LIMIT)
  '08006': 'connection_lost', // connection_failure
  '08003': 'connection_lost', // connection_does_not_exist
};

// node-postgres's own messages when the socket goes away under it.
const LOST_MESSAGES = [
  'Connection terminated unexpectedly',
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

export function classifyPgError(err: unknown): ClassifiedError {
  const facts = errorFacts(err);
  const { code, message } = facts;
  const byState = code === undefined ? undefined : SQLSTATE_CLASSES[code];
  if (byState) return { class: byState, code, message };
  const network = classifyNetworkError(err);
  if (network) return network;
  if (LOST_MESSAGES.includes(message)) return { class: 'connection_lost', message };
  // node-postgres's own timers, in case a caller configured them.
  if (message === 'timeout expired') return { class: 'connect_timeout', message };
  if (message === 'Query read timeout') return { class: 'query_timeout', message };
  return code === undefined ? { class: 'other', message } : { class: 'other', code, message };
}

/** A server error after which the session can still run statements (severity ERROR). */
export function isRecoverablePgError(err: unknown): boolean {
  return errorFacts(err).severity === 'ERROR';
}
