// The lost-write audit's read side, usable without a running Prober: after recovery, read
// every probe row of a run and endpoint from a given connection (typically the new writer).
import type { CommittedRow } from '../analysis/server-side-gap.ts';
import { createProbeDriver } from './sql-driver.ts';
import type { ProbeEndpointConfig } from './types.ts';

export interface ReadBackOptions {
  /** Connect here instead of the endpoint's host/port (same credentials, database and TLS). */
  from?: { host: string; port: number };
}

/** Throws ProbeSetupError (with the classified cause) when the read-back fails. */
export async function readBackWrites(
  endpoint: ProbeEndpointConfig,
  runId: string,
  options: ReadBackOptions = {},
): Promise<CommittedRow[]> {
  // The plain driver reads back, whichever client probed: rows are rows.
  const { wrapper: _client, ...plain } = endpoint;
  const driver = createProbeDriver({ ...plain, connectionMode: 'fresh' }, runId);
  try {
    return await driver.readBack(endpoint.name, options.from);
  } finally {
    await driver.close();
  }
}
