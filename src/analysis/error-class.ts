/**
 * The error taxonomy of DESIGN.md: every probe attempt gets exactly one class.
 * This list is the single source of truth; probes, analysis, metrics and reports import it.
 */
export const ERROR_CLASSES = [
  'ok',
  'slow',
  'read_only',
  'starting_up',
  'admin_shutdown',
  'crash_shutdown',
  'connection_refused',
  'connection_lost',
  'connect_timeout',
  'query_timeout',
  'dns_error',
  'tls_error',
  'auth_error',
  'too_many_connections',
  'other',
] as const;

export type ErrorClass = (typeof ERROR_CLASSES)[number];

/** One line per class, for docs, legends and `--help`. */
export const ERROR_CLASS_DESCRIPTIONS: Record<ErrorClass, string> = {
  ok: 'success within the slow threshold',
  slow: "success, but slower than the endpoint's slow threshold (a stall)",
  read_only: 'write refused by a read-only server (PG 25006; MySQL 1290 / 1836)',
  starting_up: 'server starting up, shutting down or in recovery mode (PG 57P03)',
  admin_shutdown: 'connection terminated by an administrator command (PG 57P01)',
  crash_shutdown: 'connection terminated because another server process crashed (PG 57P02)',
  connection_refused: 'TCP connection refused (ECONNREFUSED)',
  connection_lost: 'connection dropped mid-attempt (ECONNRESET, EOF, PROTOCOL_CONNECTION_LOST)',
  connect_timeout: "the attempt's connect deadline passed",
  query_timeout: "the attempt's query deadline passed",
  dns_error: 'name resolution failed (ENOTFOUND, EAI_AGAIN)',
  tls_error: 'TLS handshake or certificate failure',
  auth_error: 'authentication failed (PG 28P01 / 28000, MySQL 1045): a configuration problem',
  too_many_connections: 'server connection limit reached (PG 53300, MySQL 1040)',
  other: 'anything else; the raw code and message are kept',
};

const ERROR_CLASS_SET: ReadonlySet<string> = new Set(ERROR_CLASSES);

export function isErrorClass(value: unknown): value is ErrorClass {
  return typeof value === 'string' && ERROR_CLASS_SET.has(value);
}

/** `good` = `ok`; everything else (including `slow`) makes an attempt bad for availability. */
export function isGoodClass(errorClass: ErrorClass): boolean {
  return errorClass === 'ok';
}

/** The server acknowledged the attempt (`ok` or `slow`): a write with this class was committed. */
export function isAcknowledgedClass(errorClass: ErrorClass): boolean {
  return errorClass === 'ok' || errorClass === 'slow';
}
