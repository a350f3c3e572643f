// The HTTP side of the operator and of prober pods: /metrics (when given a registry), /healthz, /readyz, plus
// whatever routes the caller adds. Quiet by default: the caller logs its own events.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export type Readiness = boolean | { ok: true } | { ok: false; reason: string };

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Served at GET /metrics; without it the server has no /metrics. */
  registry?: Registry;
  /** Asked on every GET /readyz. */
  ready: () => Readiness;
  /** Asked on every GET /healthz (default: always healthy); 503 with the reason when not. */
  healthy?: () => Readiness;
  /** Adds the caller's routes before the server listens. */
  routes?: (app: FastifyInstance) => void;
  /** Request body limit in bytes (default 1 MiB). */
  bodyLimit?: number;
}

export interface HttpServer {
  /** `http://host:port`, with the port actually bound (useful with port 0). */
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

function readinessOf(value: Readiness): { ok: true } | { ok: false; reason: string } {
  if (value === true) return { ok: true };
  if (value === false) return { ok: false, reason: 'not ready' };
  return value;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = Fastify({ logger: false, bodyLimit: options.bodyLimit ?? 1024 * 1024 });
  const { registry } = options;
  if (registry)
    app.get('/metrics', async (_request, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    });
  app.get('/healthz', async (_request, reply) => {
    const health = readinessOf(options.healthy?.() ?? true);
    return reply.code(health.ok ? 200 : 503).send(health);
  });
  app.get('/readyz', async (_request, reply) => {
    const readiness = readinessOf(options.ready());
    return reply.code(readiness.ok ? 200 : 503).send(readiness);
  });
  options.routes?.(app);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    app,
    close: () => app.close(),
  };
}

/** `host:port` or `[v6]:port`; throws a plain Error naming the bad value. */
export function parseListenAddress(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):([0-9]{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || !(port >= 0 && port <= 65535))
    throw new Error(`listen address must be host:port, e.g. 0.0.0.0:9090 (got \`${text}\`)`);
  return { host: (match[1] ?? match[2])!, port };
}
