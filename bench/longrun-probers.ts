// The longrun bench's prober side, in its own process (so the controller's RSS is its own): one
// real ProberService HTTP server per endpoint on 127.0.91.<n>:PROBER_PORT, fed synthetic
// samples of a fixed-rate run as fast as it can make them (time compressed) instead of real
// probes. Argument: the LongrunShape as JSON. Prints `ready` once listening and `done <samples>`
// when every sample is recorded; serves until killed.
import pino from 'pino';
import type { ErrorClass } from '../src/analysis/error-class.ts';
import type { ProbeKind } from '../src/analysis/sample.ts';
import type { EndpointSpec } from '../src/api/experiment-spec.ts';
import { PROBER_PORT } from '../src/controller/prober-pods.ts';
import type { ProbeSample } from '../src/probe/types.ts';
import { startHttpServer } from '../src/server/http.ts';
import { createRegistry } from '../src/server/metrics.ts';
import { ProberService } from '../src/server/prober-service.ts';
import { type LongrunShape, proberHost } from './longrun-shape.ts';

const shape = JSON.parse(process.argv[2]!) as LongrunShape;
const services: ProberService[] = [];
for (let e = 0; e < shape.endpoints; e++) {
  const name = `endpoint-${e}`;
  const service = new ProberService({
    runId: 'longrun',
    namespace: 'bench',
    experiment: 'longrun',
    endpoint: { name, probes: shape.kinds, interval: `${shape.intervalMs}ms` } as unknown as EndpointSpec,
    credentials: () => ({ user: 'probe', password: 'unused' }),
    apiToken: shape.token,
    registry: createRegistry(),
    log: pino({ level: 'warn' }),
  });
  await startHttpServer({
    host: proberHost(e),
    port: PROBER_PORT,
    registry: createRegistry(),
    ready: () => true,
    routes: (app) => service.routes(app),
  });
  services.push(service);
}
process.stdout.write('ready\n');

/** One attempt of the synthetic run: an outage 5 s after T0, a role flip and a DNS flip. */
function sampleAt(e: number, kind: ProbeKind, seq: number, startMs: number): ProbeSample {
  const endpoint = `endpoint-${e}`;
  const sinceT0 = startMs - shape.t0Ms;
  const outageMs = 8000 + (e % 5) * 1000;
  let errorClass: ErrorClass = 'ok';
  let code: string | undefined;
  if (kind !== 'dns' && sinceT0 >= 5000 && sinceT0 < 5000 + outageMs) {
    if (sinceT0 < 7000) errorClass = 'connection_refused';
    else if (kind === 'write') {
      errorClass = sinceT0 < 9000 ? 'starting_up' : 'read_only';
      code = errorClass === 'starting_up' ? '57P03' : '25006';
    } else errorClass = 'connection_lost';
  } else if (seq % 10_007 === 0) errorClass = 'slow';
  const endMs = startMs + 1.5 + (seq % 5) * 0.3 + (errorClass === 'slow' ? 150 : 0);
  const sample: ProbeSample = { endpoint, kind, seq, startMs, endMs, class: errorClass };
  if (code) {
    sample.code = code;
    sample.message = code === '57P03' ? 'the database system is starting up' : 'read-only transaction';
  }
  if (kind !== 'dns' && (errorClass === 'ok' || errorClass === 'slow'))
    sample.server = { id: sinceT0 < 5000 ? 'db-1' : 'db-2', role: kind === 'write' ? 'writer' : 'reader' };
  if (kind === 'dns') sample.dnsAnswer = ['cluster.example', sinceT0 < 12_000 ? '10.0.0.1' : '10.0.0.2'];
  if (kind === 'write') sample.writeKey = `${endpoint}#${seq}`;
  return sample;
}

const steps = Math.floor((shape.endMs - shape.startMs) / shape.intervalMs);
const STEPS_PER_CHUNK = 200;
let recorded = 0;
for (let n = 0; n < steps; n += STEPS_PER_CHUNK) {
  for (let step = n; step < Math.min(steps, n + STEPS_PER_CHUNK); step++) {
    // Fractional starts, as a real prober's clock gives.
    const startMs = shape.startMs + step * shape.intervalMs + (step % 7) * 0.137;
    for (let e = 0; e < shape.endpoints; e++)
      for (const kind of shape.kinds) {
        services[e]!.record(sampleAt(e, kind, step, startMs));
        recorded++;
      }
  }
  await new Promise((resolve) => setImmediate(resolve));
}
process.stdout.write(`done ${recorded}\n`);
