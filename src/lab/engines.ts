// What a lab failover does to real servers, per engine, behind one interface so that the
// orchestrator (lab.ts) describes the Aurora sequence once.
import { setTimeout as sleep } from 'node:timers/promises';
import { LabError } from './exec.ts';
import * as maria from './mariadb.ts';
import * as pgsrv from './postgres.ts';
import type { ServerTls } from './tls.ts';

export interface ServerHandle {
  dataDir: string;
  runDir: string;
  host: string;
  port: number;
  serverId: number;
  tls?: ServerTls;
}

export interface EngineOps {
  initWriter(s: ServerHandle): Promise<void>;
  initReader(s: ServerHandle, writer: ServerHandle): Promise<void>;
  /** Takes the writer away. `clean`: nothing committed is lost; `crash`: SIGKILL-like. */
  stopWriter(s: ServerHandle, mode: 'clean' | 'crash'): Promise<void>;
  /** Restarts a reader as the writer; resolves once it accepts writes. `onRestart` fires when it is down. */
  promote(s: ServerHandle, onRestart: () => void): Promise<void>;
  /** Restarts a former writer as a reader of `writer`. */
  demote(s: ServerHandle, writer: ServerHandle): Promise<void>;
  /** Makes a running reader follow `writer`. */
  follow(s: ServerHandle, writer: ServerHandle): Promise<void>;
  /** Stops (or restarts) a reader's replication: the lab's replication-lag knob. */
  setReplicationPaused(s: ServerHandle, writer: ServerHandle, paused: boolean): Promise<void>;
  /** Stops an instance for a restart in place (RebootDBInstance, a class change): a clean shutdown. */
  stopInPlace(s: ServerHandle): Promise<void>;
  /** Starts it again in its role; resolves once it accepts connections. */
  startInPlace(s: ServerHandle, asWriter: boolean): Promise<void>;
  stop(s: ServerHandle): Promise<void>;
  isRunning(s: ServerHandle): boolean;
  /** Blue/Green switchover: the writer refuses writes from now on and drops its clients. */
  fence(s: ServerHandle): Promise<void>;
  /** Undoes fence (a switchover rolled back). */
  unfence(s: ServerHandle): Promise<void>;
  /** Resolves once `replica` has applied everything `primary` committed, or throws after `timeoutMs`. */
  waitCaughtUp(replica: ServerHandle, primary: ServerHandle, timeoutMs: number): Promise<void>;
  /** Makes a running replica the writer without a restart (a Blue/Green green writer). */
  promoteInPlace(s: ServerHandle): Promise<void>;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(20);
  }
  throw new LabError(`timed out waiting for ${what}`);
}

/**
 * After pg_rewind the standby's control file still points at a checkpoint from before the
 * divergence, which may sit in a WAL segment only the primary has (as `.partial`). A
 * standby is fine streaming, but could not restart on its own as the next writer. A
 * checkpoint on the primary, replayed here, followed by a restartpoint makes it independent.
 */
async function makeSelfContained(standby: ServerHandle, primary: ServerHandle): Promise<void> {
  await pgsrv.psqlLocal(primary, 'CHECKPOINT');
  const lsn = await pgsrv.psqlLocal(primary, 'SELECT pg_current_wal_lsn()');
  await waitUntil(
    `${standby.host} to replay ${lsn}`,
    async () =>
      (await pgsrv.psqlLocal(standby, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`)) === 't',
    30_000,
  );
  await pgsrv.psqlLocal(standby, 'CHECKPOINT');
}

export const postgresOps: EngineOps = {
  initWriter: (s) => pgsrv.initPrimary(s),
  initReader: (s, w) => pgsrv.initReplica(s, w),
  stopWriter: (s, mode) => pgsrv.stop(s, mode === 'clean' ? 'fast' : 'immediate'),
  async promote(s, onRestart) {
    // Aurora restarts the promoted replica: clients see it go away, then "starting up".
    // It restarts as a standby and is then promoted, so that it switches to a new timeline:
    // a plain restart without standby.signal would stay on the old writer's timeline and
    // make a diverged old writer look like it needs no rewind.
    await pgsrv.stop(s, 'fast');
    onRestart();
    await pgsrv.startNoWait(s);
    await waitUntil(
      `${s.host} to accept connections`,
      async () => (await pgsrv.psqlLocal(s, 'SELECT 1')) === '1',
      60_000,
    );
    await pgsrv.promote(s);
    await waitUntil(
      `${s.host} to accept writes`,
      async () => (await pgsrv.psqlLocal(s, 'SELECT pg_is_in_recovery()')) === 'f',
      60_000,
    );
  },
  async demote(s, w) {
    await pgsrv.stop(s, 'fast');
    await pgsrv.rewindAsStandbyOf(s, w);
    await pgsrv.start(s);
    await makeSelfContained(s, w);
  },
  follow: (s, w) => pgsrv.setStreamingSource(s, w),
  setReplicationPaused: (s, w, paused) => pgsrv.setStreamingSource(s, paused ? undefined : w),
  stopInPlace: (s) => pgsrv.stop(s, 'fast'),
  async startInPlace(s) {
    // Not pg_ctl -w (it polls every 100 ms): the ground truth wants the moment it accepts.
    await pgsrv.startNoWait(s);
    await waitUntil(
      `${s.host} to accept connections`,
      async () => (await pgsrv.psqlLocal(s, 'SELECT 1')) === '1',
      60_000,
    );
  },
  stop: (s) => pgsrv.stop(s, 'immediate'),
  isRunning: (s) => pgsrv.isRunning(s),
  async fence(s) {
    // New transactions are read-only (writes fail with 25006, as on a fenced RDS writer), and
    // the clients connected now are cut off so none keeps a writable session.
    await pgsrv.psqlLocal(s, 'ALTER SYSTEM SET default_transaction_read_only = on');
    await pgsrv.psqlLocal(s, 'SELECT pg_reload_conf()');
    await pgsrv.psqlLocal(
      s,
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    );
  },
  async unfence(s) {
    await pgsrv.psqlLocal(s, 'ALTER SYSTEM RESET default_transaction_read_only');
    await pgsrv.psqlLocal(s, 'SELECT pg_reload_conf()');
  },
  async waitCaughtUp(replica, primary, timeoutMs) {
    const lsn = await pgsrv.psqlLocal(primary, 'SELECT pg_current_wal_lsn()');
    await waitUntil(
      `${replica.host} to replay ${lsn}`,
      async () =>
        (await pgsrv.psqlLocal(replica, `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`)) === 't',
      timeoutMs,
    );
  },
  async promoteInPlace(s) {
    await pgsrv.promote(s);
    await waitUntil(
      `${s.host} to accept writes`,
      async () => (await pgsrv.psqlLocal(s, 'SELECT pg_is_in_recovery()')) === 'f',
      60_000,
    );
  },
};

export const mariadbOps: EngineOps = {
  initWriter: (s) => maria.initPrimary(s),
  initReader: (s, w) => maria.initReplica(s, w),
  async stopWriter(s, mode) {
    if (mode === 'crash') throw new LabError('crash failovers are supported for aurora-postgresql only');
    await maria.stop(s, 'fast');
  },
  async promote(s, onRestart) {
    // The caller made sure the reader applied everything the old writer committed.
    await maria.stopReplication(s);
    await maria.stop(s, 'fast');
    onRestart();
    await maria.start(s, { readOnly: false });
  },
  async demote(s, w) {
    await maria.stop(s, 'fast');
    await maria.start(s, { readOnly: true });
    await maria.replicateFrom(s, w);
  },
  follow: (s, w) => maria.replicateFrom(s, w),
  setReplicationPaused: (s, _w, paused) => maria.setReplicationPaused(s, paused),
  stopInPlace: (s) => maria.stop(s, 'fast'),
  async startInPlace(s, asWriter) {
    await maria.start(s, { readOnly: !asWriter });
    if (!asWriter) await maria.sqlLocal(s, 'START SLAVE');
  },
  stop: (s) => maria.stop(s, 'immediate'),
  isRunning: (s) => maria.isRunning(s),
  async fence(s) {
    await maria.sqlLocal(s, 'SET GLOBAL read_only = ON');
    await maria.killClientConnections(s);
  },
  unfence: (s) => maria.sqlLocal(s, 'SET GLOBAL read_only = OFF').then(() => {}),
  async waitCaughtUp(replica, primary, timeoutMs) {
    const pos = await maria.gtidCurrentPos(primary);
    // One-second waits: a single long MASTER_GTID_WAIT would outlive the client's own timeout.
    const deadline = Date.now() + timeoutMs;
    while (!(await maria.waitForGtid(replica, pos, 1)))
      if (Date.now() >= deadline)
        throw new LabError(`${replica.host} did not apply ${pos} within ${Math.ceil(timeoutMs / 1000)} s`);
  },
  async promoteInPlace(s) {
    await maria.stopReplication(s);
    await maria.sqlLocal(s, 'SET GLOBAL read_only = OFF');
  },
};

/**
 * MariaDB replicas are asynchronous and a stopped primary's last transactions may not have
 * reached the reader yet. Aurora's shared storage loses nothing, so before a clean failover
 * the lab fences the old writer (read_only) and waits for the target to apply its position.
 */
export async function fenceAndDrainMariadb(writer: ServerHandle, target: ServerHandle): Promise<void> {
  await maria.sqlLocal(writer, 'SET GLOBAL read_only = ON');
  const pos = await maria.gtidCurrentPos(writer);
  if (!(await maria.waitForGtid(target, pos, 30)))
    throw new LabError(`reader ${target.host} did not catch up with ${pos} within 30 s`);
}
