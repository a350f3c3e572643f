// What differs between PostgreSQL and MySQL probing, behind one interface; the driver
// (sql-driver.ts) does connection handling, deadlines and classification around it.

import type { ServerIdentity } from '../analysis/sample.ts';
import type { CommittedRow } from '../analysis/server-side-gap.ts';
import type { DbSession, SessionTarget } from './db-session.ts';
import type { ClassifiedError } from './types.ts';

/** Dialect features detected once per driver (at setup). */
export interface DialectFeatures {
  /** Aurora's instance identity function/variable exists (not on plain engines or the lab). */
  auroraIdentity: boolean;
}

export const PLAIN_FEATURES: DialectFeatures = { auroraIdentity: false };

export interface WriteRow {
  runId: string;
  endpoint: string;
  seq: number;
  clientMs: number;
}

export interface SqlDialect<S extends DbSession> {
  open(target: SessionTarget, signal: AbortSignal): Promise<S>;
  classify(err: unknown): ClassifiedError;
  /** A server error that leaves the session usable (a pooled connection is kept). */
  isRecoverable(err: unknown): boolean;
  /** Detects features; creates the probe table when asked and missing. */
  setup(session: S, withWriteTable: boolean, wantAurora: boolean): Promise<DialectFeatures>;
  /** Inserts the probe row and returns who answered, in one round trip. */
  write(session: S, features: DialectFeatures, row: WriteRow): Promise<ServerIdentity>;
  read(session: S, features: DialectFeatures): Promise<ServerIdentity>;
  /** All probe rows of (runId, endpoint), with their server timestamps. */
  readBack(session: S, runId: string, endpoint: string): Promise<CommittedRow[]>;
  /** The identifiers of the cluster's instances, as its topology lists them (topology probe). */
  instances?(session: S): Promise<string[]>;
  /** Releases what the dialect's client keeps beyond its sessions (the wrapper's monitors). */
  release?(): Promise<void>;
}

export const PROBE_TABLE = 'failwatch_probe';
