// `failwatch probe` — the process inside a prober pod. Configured by the environment the
// controller sets (src/server/probe-pod-env.ts), it probes one endpoint, keeps every sample
// and serves them over HTTP until SIGTERM. Logs are JSON lines on stdout, never a password.
import pino from 'pino';
import { Redactor } from '../probe/redact.ts';
import { startHttpServer } from '../server/http.ts';
import { createRegistry } from '../server/metrics.ts';
import {
  PROBE_POD_ENV,
  ProbePodConfigError,
  parseProbePodEnv,
  proberLanePrefix,
} from '../server/probe-pod-env.ts';
import { ProberService, requireRunToken } from '../server/prober-service.ts';

export const PROBE_HELP = `Usage: failwatch probe

Runs inside a prober pod (the controller creates it): probes one endpoint (or several,
${PROBE_POD_ENV.lanes}), keeps every sample in memory and serves them. Configured by the environment:

  ${PROBE_POD_ENV.runId}          run id, stored in every probe row (required)
  ${PROBE_POD_ENV.experiment}      namespace/name of the FailoverExperiment (required)
  ${PROBE_POD_ENV.endpoint}        JSON of the endpoint from the spec (required)
  ${PROBE_POD_ENV.username}     probe user (or ${PROBE_POD_ENV.usernameFile})
  ${PROBE_POD_ENV.password}     its password (or ${PROBE_POD_ENV.passwordFile}, re-read on retry)
                            (neither with credentials.iam in the endpoint: IAM auth tokens are
                            signed with the AWS SDK's credentials, e.g. IRSA; region from the
                            endpoint or AWS_REGION)
  ${PROBE_POD_ENV.apiToken}      the run's API token (or ${PROBE_POD_ENV.apiTokenFile}; required)
  ${PROBE_POD_ENV.caFile}         PEM CA bundle for tls.mode verify-full
  ${PROBE_POD_ENV.listen}          host:port to serve on (default $POD_IP or 0.0.0.0, port
                            $${PROBE_POD_ENV.listenPort} or 9090)
  ${PROBE_POD_ENV.metricsPort}  port of the open /metrics server on the same address
                            (default 9091)
  ${PROBE_POD_ENV.maxSamples}     samples kept at most (default 2000000)
  ${PROBE_POD_ENV.seqBase}        first attempt seq (default 0; set on a replacement prober)
  ${PROBE_POD_ENV.setupRetry}    time between setup attempts after a failure (default 5s)
  ${PROBE_POD_ENV.logLevel}       pino level (default info)

HTTP (API port): GET /status, GET /samples?from=N, POST /stop, POST /audit, each
      with "Authorization: Bearer <run token>" (401 without); GET /healthz, GET /readyz.
      With ${PROBE_POD_ENV.lanes} > 1 (one pod for several endpoints) each endpoint's API is
      under /endpoints/<endpoint name>/ and the per-endpoint variables of lane i >= 1 end
      in _<i> (${PROBE_POD_ENV.endpoint}_1, ${PROBE_POD_ENV.password}_1, ${PROBE_POD_ENV.caFile}_1, ...).
HTTP (metrics port): GET /metrics, GET /healthz, GET /readyz, no token.
SIGTERM stops probing and exits 0.
`;

export async function probeCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(PROBE_HELP);
    return 0;
  }
  if (argv.length > 0) {
    process.stderr.write(`failwatch probe takes no arguments (got ${argv.join(' ')}); see --help\n`);
    return 2;
  }
  let config: ReturnType<typeof parseProbePodEnv>;
  try {
    config = parseProbePodEnv(env);
  } catch (err) {
    if (!(err instanceof ProbePodConfigError)) throw err;
    pino({ base: null }).fatal({ event: 'bad-environment', problems: err.problems }, err.message);
    return 2;
  }

  const shared = config.lanes.length > 1;
  const log = pino({
    level: config.logLevel,
    base: {
      namespace: config.namespace,
      experiment: config.experiment,
      ...(shared ? {} : { endpoint: config.endpoint.name }),
      ...(config.zone ? { zone: config.zone } : {}),
      runId: config.runId,
    },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Defense in depth: nothing here logs credentials, and these paths would be hidden if it did.
    redact: { paths: ['password', '*.password', 'credentials', '*.credentials'], censor: '[redacted]' },
  });
  const registry = createRegistry({ processMetrics: true });
  // One service per lane, all in this process (spec.probers.sharing Zone): they share the
  // registry's series families, the HTTP servers and the event loop, nothing else.
  const redactor = new Redactor();
  const services = config.lanes.map(
    (lane, i) =>
      new ProberService({
        runId: config.runId,
        namespace: config.namespace,
        experiment: config.experiment,
        endpoint: lane.endpoint,
        ...(config.zone ? { zone: config.zone } : {}),
        credentials: lane.credentials,
        apiToken: config.apiToken,
        caFile: lane.caFile,
        registry,
        log: shared ? log.child({ endpoint: lane.endpoint.name }) : log,
        setupRetryMs: config.setupRetryMs,
        maxSamples: config.maxSamples,
        seqBase: config.seqBase,
        redactor,
        // Endpoint i of n starts i/n into its interval: one endpoint's tick at a time.
        phase: i / config.lanes.length,
      }),
  );
  const ready = () => {
    for (const service of services) {
      const readiness = service.ready();
      if (readiness !== true && !(typeof readiness === 'object' && readiness.ok)) return readiness;
    }
    return { ok: true } as const;
  };
  // Every service hides every endpoint's credentials (they share one redactor).
  const redact = (text: string) => redactor.redact(text);
  const server = await startHttpServer({
    host: config.listen.host,
    port: config.listen.port,
    ready,
    // One lane: its routes at the root. Several: each under /endpoints/<endpoint name>.
    routes: (app) => {
      if (!shared) return services[0]!.routes(app);
      // Unknown endpoint names answer 401 like known ones: nothing to learn without the token.
      requireRunToken(app, config.apiToken, log);
      for (const [i, service] of services.entries())
        app.register(async (scope) => service.routes(scope), {
          prefix: proberLanePrefix(config.lanes[i]!.endpoint.name),
        });
    },
    // The API's requests are tiny (POST /stop and /audit take no body).
    bodyLimit: 64 * 1024,
  });
  const metricsServer = await startHttpServer({
    host: config.listen.host,
    port: config.metricsPort,
    registry,
    ready,
  });
  log.info(
    {
      event: 'listening',
      url: server.url,
      metricsUrl: metricsServer.url,
      endpoints: config.lanes.map(({ endpoint }) => ({
        name: endpoint.name,
        dialect: endpoint.dialect,
        host: endpoint.host,
        connectionMode: endpoint.connectionMode,
      })),
    },
    'prober serving',
  );
  for (const service of services) service.start();

  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      log.info({ event: 'shutdown', signal }, 'stopping');
      // Stuck database sockets must not keep a terminating pod alive past its grace period.
      setTimeout(() => process.exit(0), 20_000).unref();
      Promise.all(services.map((service) => service.stop()))
        .catch((err: unknown) => log.error({ event: 'stop-failed', err: redact(String(err)) }, 'stop failed'))
        .then(() => Promise.all([server.close(), metricsServer.close()]))
        .finally(resolve);
    };
    const onTerm = () => shutdown('SIGTERM');
    const onInt = () => shutdown('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  log.info(
    { event: 'exit', samples: services.reduce((n, service) => n + service.status().samples, 0) },
    'prober exiting',
  );
  return 0;
}
