import type { ErrorClass } from '../analysis/error-class.ts';

/** One colour per class: green for ok, amber for stalls, warm for server states, red for network. */
export const CLASS_COLORS: Record<ErrorClass, string> = {
  ok: '#3a9d4a',
  slow: '#f2b705',
  read_only: '#8e44ad',
  starting_up: '#e67e22',
  admin_shutdown: '#d35400',
  crash_shutdown: '#7b241c',
  connection_refused: '#e74c3c',
  connection_lost: '#b03a2e',
  connect_timeout: '#5d6d7e',
  query_timeout: '#283747',
  dns_error: '#17a589',
  tls_error: '#d81b60',
  auth_error: '#111111',
  too_many_connections: '#6d4c41',
  other: '#aab7b8',
};

export const MARKER_COLORS = {
  trigger: '#111111',
  rdsEvent: '#1f5fbf',
  roleFlip: '#8e44ad',
  dnsFlip: '#0e7c66',
  recovered: '#1e7b34',
  window: '#e74c3c',
} as const;

/** The failover phases' colours (report phase bar). */
export const PHASE_COLORS = {
  detection: '#7f8c8d',
  promotion: '#e67e22',
  dns: '#0e7c66',
  recovery: '#2e86c1',
} as const;
