import type { ErrorClass } from './error-class.ts';

export const PROBE_KINDS = ['write', 'read', 'dns', 'topology'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];

export type ServerRole = 'writer' | 'reader' | 'unknown';

/** Which server answered an attempt. */
export interface ServerIdentity {
  /** Instance identity, e.g. `aurora_db_instance_identifier()`, `@@aurora_server_id` or `@@hostname`. */
  id: string;
  /** `inet_server_addr()` or the peer address, when known. */
  addr?: string;
  role: ServerRole;
}

/** One probe attempt, as the probe module records it. */
export interface Sample {
  /** Endpoint name from the experiment spec. */
  endpoint: string;
  kind: ProbeKind;
  /** Attempt number within (endpoint, kind), increasing with the scheduled start. */
  seq: number;
  /** Wall-clock start, epoch milliseconds (fractional allowed). */
  startMs: number;
  /** Wall-clock end (answer, error or deadline), epoch milliseconds. */
  endMs: number;
  class: ErrorClass;
  /** Raw driver/server error code, e.g. `57P03`, `ECONNREFUSED`, `ER_OPTION_PREVENTS_STATEMENT`. */
  code?: string;
  message?: string;
  /**
   * Who answered. Topology probes: the instance that reported itself the writer (its identifier
   * in the cluster's topology); absent when none did.
   */
  server?: ServerIdentity;
  /** DNS probes: the CNAME chain followed by the addresses, in answer order. */
  dnsAnswer?: string[];
  /** Write probes: the key of the row the attempt tried to insert. */
  writeKey?: string;
}
