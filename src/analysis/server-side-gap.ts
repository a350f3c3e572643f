/** A committed probe row as read back after recovery. */
export interface CommittedRow {
  key: string;
  /** The server's commit-time timestamp (e.g. `clock_timestamp()`), epoch ms. */
  serverMs: number;
}

export interface ServerSideGap {
  gapMs: number;
  /** Server timestamps of the two consecutive rows around the gap, epoch ms. */
  fromMs: number;
  toMs: number;
}

/**
 * Server-side gap: the largest gap between consecutive committed rows' server timestamps (the
 * field reports' "database side" table). Null with fewer than two rows.
 */
export function serverSideGap(rows: readonly CommittedRow[]): ServerSideGap | null {
  const times = rows.map((row) => row.serverMs).sort((a, b) => a - b);
  let gap: ServerSideGap | null = null;
  for (let index = 1; index < times.length; index++) {
    const fromMs = times[index - 1]!;
    const toMs = times[index]!;
    if (!gap || toMs - fromMs > gap.gapMs) gap = { gapMs: toMs - fromMs, fromMs, toMs };
  }
  return gap;
}
