// The lab daemon: one detached process that owns a running lab, serves its RDS API, keeps
// lab.json current and takes orders on a small control endpoint. `failwatch lab up` starts
// it; `failwatch lab down` tells it to stop (and sweeps up if it is gone).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';
import { FAILOVER_PROFILES, type FailoverProfile } from './delays.ts';
import { Lab, type LabOptions } from './lab.ts';
import { RdsFault } from './model.ts';
import { startRdsApi } from './rds-api.ts';

export type DaemonPhase = 'starting' | 'ready' | 'failed' | 'stopping';

export interface DaemonInfo {
  phase: DaemonPhase;
  daemonPid: number;
  apiUrl?: string;
  controlUrl?: string;
  upSeconds?: number;
  error?: string;
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
}

function startControl(lab: Lab, host: string, port: number, stop: () => void): Promise<Server> {
  const server = createServer(async (req, res) => {
    const reply = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    try {
      if (req.method === 'POST' && req.url === '/down') {
        reply(202, { stopping: true });
        stop();
      } else if (req.method === 'POST' && req.url === '/failover') {
        const b = await body(req);
        const mode = b.mode === 'crash' ? 'crash' : 'clean';
        const cluster = lab.startFailover({
          clusterId: String(b.clusterId),
          targetInstanceId: b.targetInstanceId ? String(b.targetInstanceId) : undefined,
          mode,
        });
        reply(200, { status: cluster.status });
      } else if (req.method === 'POST' && req.url === '/failover-profile') {
        const b = await body(req);
        if (!FAILOVER_PROFILES.includes(b.profile as FailoverProfile))
          return reply(400, { error: `profile must be one of ${FAILOVER_PROFILES.join(', ')}` });
        lab.failoverProfile = b.profile as FailoverProfile;
        lab.onChange();
        reply(200, { failoverProfile: lab.failoverProfile });
      } else if (req.method === 'POST' && req.url === '/rds-api-faults') {
        const b = await body(req);
        const forMs = Number(b.throttleForMs ?? 0);
        if (!Number.isFinite(forMs) || forMs < 0 || forMs > 3_600_000)
          return reply(400, { error: 'throttleForMs must be a number of milliseconds from 0 to 3600000' });
        lab.throttleRdsApi(forMs);
        reply(200, lab.apiFaults);
      } else if (req.method === 'POST' && req.url === '/replication') {
        const b = await body(req);
        await lab.setReplicationPaused(String(b.clusterId), String(b.instanceId), b.paused === true);
        reply(200, { paused: b.paused === true });
      } else reply(404, { error: 'not found' });
    } catch (err) {
      const e = err as Error;
      reply(err instanceof RdsFault ? err.httpStatus : 500, {
        code: (err as RdsFault).code,
        error: e.message,
      });
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export async function runDaemon(options: LabOptions): Promise<void> {
  const started = performance.now();
  const lab = new Lab(options);
  const info: DaemonInfo = { phase: 'starting', daemonPid: process.pid };
  lab.onChange = () => lab.writeState({ ...info });
  lab.onChange();

  let stopping: Promise<void> | undefined;
  let closers: (() => Promise<void>)[] = [];
  const stop = (exitCode: number) => {
    stopping ??= (async () => {
      if (info.phase !== 'failed') info.phase = 'stopping';
      lab.onChange();
      for (const close of closers) await close().catch(() => {});
      await lab.down();
      process.exit(exitCode);
    })();
    return stopping;
  };
  // The daemon owns real processes: a stray error is logged, never a reason to orphan them.
  process.on('uncaughtException', (err) =>
    console.error(`lab daemon: unexpected error: ${err.stack ?? err}`),
  );
  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => void stop(0));

  try {
    const api = await startRdsApi(lab, { host: lab.apiHost, port: options.apiPort });
    closers.push(api.close);
    const control = await startControl(lab, lab.apiHost, options.apiPort + 1, () => void stop(0));
    closers.push(() => new Promise((r) => control.close(() => r())));
    info.apiUrl = api.url;
    info.controlUrl = `http://${lab.apiHost}:${options.apiPort + 1}`;
    await lab.up();
    info.phase = 'ready';
    info.upSeconds = Math.round(performance.now() - started) / 1000;
    lab.onChange();
  } catch (err) {
    info.phase = 'failed';
    info.error = (err as Error).message;
    lab.onChange();
    closers = closers.reverse();
    await stop(1);
  }
}
