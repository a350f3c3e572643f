// The part of the error taxonomy both dialects share: the probe's own deadlines, socket
// errors, name resolution and TLS. Dialect classifiers try server error codes first.
import { DeadlineError } from './deadline.ts';
import { HostResolutionError } from './resolve-host.ts';
import { TlsConfigError } from './tls-options.ts';
import type { ClassifiedError } from './types.ts';

const CONNECTION_REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const CONNECTION_LOST = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_STREAM_DESTROYED',
  'ERR_SOCKET_CLOSED',
]);
const DNS = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'EAI_FAIL',
  'ESERVFAIL',
  'ENODATA',
  'ENOTIMP',
  'EREFUSED',
]);
const TLS_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'HANDSHAKE_NO_SSL_SUPPORT',
]);
const TLS_MESSAGES = [
  'The server does not support SSL connections',
  'There was an error establishing an SSL connection',
  'does not match certificate',
];

/** A readable view of whatever a driver threw. */
export interface ErrorFacts {
  code?: string;
  errno?: number;
  message: string;
  severity?: string;
  fatal?: boolean;
  library?: string;
}

export function errorFacts(err: unknown): ErrorFacts {
  if (err === null || typeof err !== 'object') return { message: String(err) };
  const e = err as Record<string, unknown>;
  return {
    code: typeof e.code === 'string' ? e.code : typeof e.code === 'number' ? String(e.code) : undefined,
    errno: typeof e.errno === 'number' ? e.errno : undefined,
    message: typeof e.message === 'string' && e.message ? e.message : String(err),
    severity: typeof e.severity === 'string' ? e.severity : undefined,
    fatal: typeof e.fatal === 'boolean' ? e.fatal : undefined,
    library: typeof e.library === 'string' ? e.library : undefined,
  };
}

/** Deadline, socket, DNS and TLS errors; undefined when the error is none of these. */
export function classifyNetworkError(err: unknown): ClassifiedError | undefined {
  if (err instanceof DeadlineError) return { class: err.errorClass, message: err.message };
  if (err instanceof HostResolutionError) return { class: 'dns_error', code: err.code, message: err.message };
  if (err instanceof TlsConfigError) return { class: 'tls_error', message: err.message };
  const { code, message, library } = errorFacts(err);
  const withCode = (cls: ClassifiedError['class']): ClassifiedError =>
    code === undefined ? { class: cls, message } : { class: cls, code, message };
  if (code !== undefined) {
    if (CONNECTION_REFUSED.has(code)) return withCode('connection_refused');
    if (CONNECTION_LOST.has(code)) return withCode('connection_lost');
    if (DNS.has(code)) return withCode('dns_error');
    if (TLS_CERTIFICATE.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) {
      return withCode('tls_error');
    }
    // An OS-level connect timeout (not our deadline, which fires first when configured sanely).
    if (code === 'ETIMEDOUT') return withCode('connect_timeout');
  }
  if (library === 'SSL routines' || TLS_MESSAGES.some((m) => message.includes(m)))
    return withCode('tls_error');
  return undefined;
}
