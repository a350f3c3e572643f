// The operator's report pages: `GET /reports` lists recent runs, `GET /reports/<ns>/<name>`
// serves the one-page report the controller stored in the run's results ConfigMap. Plain
// HTML: no scripts, no external requests (the CSP forbids both), every value escaped.
// Only for a bearer token the apiserver accepts (TokenReview) whose user may `get` the
// experiment (SubjectAccessReview); the index lists only the namespaces the caller may read.
// A stored report is served only while it matches the digest in the experiment's status (the
// ConfigMap is writable by the namespace's users, the status is not); otherwise the page is
// rendered from results.json, every value escaped.
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Results } from '../analysis/results.ts';
import { API_GROUP, API_VERSION } from '../api/experiment-spec.ts';
import { type FailoverExperimentObject, sha256Hex } from '../controller/experiment-reconciler.ts';
import { apiErrorMessage, EXPERIMENT_PLURAL, isNotFound, type Kube } from '../controller/kube.ts';
import { escapeXml, formatSeconds } from '../report/format.ts';
import { summaryTable } from '../report/report-html.ts';
import { bearerToken } from './bearer-token.ts';
import type { Caller, ReportAuthorizer } from './kube-authz.ts';

/** Sent with every report page, including errors. */
export const REPORT_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

/** The index lists at most this many runs, newest first. */
export const INDEX_LIMIT = 200;
/** A stored report never inflates beyond this (a hand-edited ConfigMap could hold anything). */
const MAX_REPORT_BYTES = 64 * 1024 * 1024;

/** What the pages read: the experiments and the results ConfigMaps. */
export interface ReportSource {
  listExperiments(): Promise<FailoverExperimentObject[]>;
  getExperiment(namespace: string, name: string): Promise<FailoverExperimentObject | undefined>;
  getConfigMap(namespace: string, name: string): Promise<StoredConfigMap | undefined>;
}

export interface StoredConfigMap {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

export interface Page {
  status: number;
  html: string;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A namespace name: lower-case alphanumerics and '-', at most 63. */
export function isDns1123Label(text: string): boolean {
  return text.length <= 63 && DNS1123_LABEL.test(text);
}

/** An object name: dot-separated DNS-1123 labels, at most 253. */
export function isDns1123Subdomain(text: string): boolean {
  return text.length <= 253 && text.split('.').every((label) => DNS1123_LABEL.test(label));
}

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1c2833; margin: 24px; max-width: 1340px; }
h1 { font-size: 20px; margin: 0 0 8px; }
.meta, .note { color: #566573; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #d5dbdb; padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #f4f6f6; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.Pass { color: #1e7b34; font-weight: 700; }
.Fail, .Failed, .Aborted { color: #b03a2e; font-weight: 700; }
.Inconclusive { color: #9a6700; font-weight: 700; }
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeXml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

function table(headers: readonly string[], rows: string[]): string {
  return `<table><thead><tr>${headers.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** Epoch ms of a timestamp that may arrive as a string or a Date; NaN when absent. */
function epochMs(value: unknown): number {
  if (value instanceof Date) return value.getTime();
  return typeof value === 'string' ? Date.parse(value) : Number.NaN;
}

function startedMs(obj: FailoverExperimentObject): number {
  const started = epochMs(obj.status?.startTime);
  return Number.isNaN(started) ? epochMs(obj.metadata.creationTimestamp) : started;
}

/** Newest first by status.startTime (else creationTimestamp), at most `limit`. */
export function recentRuns(
  experiments: readonly FailoverExperimentObject[],
  limit = INDEX_LIMIT,
): FailoverExperimentObject[] {
  const key = (obj: FailoverExperimentObject) => {
    const ms = startedMs(obj);
    return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
  };
  return [...experiments]
    .sort(
      (a, b) =>
        key(b) - key(a) ||
        (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
        (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
    )
    .slice(0, limit);
}

/** `2024-05-01 12:00:04Z`, or `-`. */
function formatTime(ms: number): string {
  return Number.isNaN(ms)
    ? '-'
    : new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

/** The path of an experiment's page, relative to `/reports` (so it works behind a proxy prefix). */
export function reportLink(namespace: string, name: string): string {
  return `reports/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

export const INDEX_HEADERS = [
  'namespace',
  'name',
  'phase',
  'verdict',
  'target',
  'worst downtime',
  'started',
  'report',
];

/** The index of recent runs: one row per experiment, newest first, at most INDEX_LIMIT. */
export function renderIndexHtml(experiments: readonly FailoverExperimentObject[]): string {
  const runs = recentRuns(experiments);
  const rows = runs.map((obj) => {
    const namespace = obj.metadata.namespace ?? '';
    const name = obj.metadata.name ?? '';
    const phase = obj.status?.phase ?? 'Pending';
    const verdict = obj.status?.verdict ?? '';
    const linkText = obj.status?.resultsRef ? 'report' : 'status';
    return [
      '<tr>',
      `<td>${escapeXml(namespace)}</td>`,
      `<td>${escapeXml(name)}</td>`,
      `<td class="${escapeXml(phase)}">${escapeXml(phase)}</td>`,
      `<td class="${escapeXml(verdict)}">${escapeXml(verdict || '-')}</td>`,
      `<td>${escapeXml(obj.status?.target ?? '-')}</td>`,
      `<td class="num">${escapeXml(formatSeconds(obj.status?.worstDowntimeSeconds))}</td>`,
      `<td class="num">${escapeXml(formatTime(startedMs(obj)))}</td>`,
      `<td><a href="${escapeXml(reportLink(namespace, name))}">${linkText}</a></td>`,
      '</tr>',
    ].join('');
  });
  const count =
    experiments.length > runs.length
      ? `the newest ${runs.length} of ${experiments.length} FailoverExperiments`
      : `${runs.length} FailoverExperiment${runs.length === 1 ? '' : 's'}`;
  return page(
    'failwatch: recent runs',
    [
      '<h1>failwatch: recent runs</h1>',
      `<p class="meta">${count}, newest first. Times are UTC.</p>`,
      runs.length ? table(INDEX_HEADERS, rows) : '<p>No FailoverExperiments yet.</p>',
    ].join('\n'),
  );
}

function backLink(): string {
  // From /reports/<ns>/<name>, two levels up is the index (also behind a proxy prefix).
  return '<p class="note"><a href="../../reports">all runs</a></p>';
}

/** A short page for errors; `back` adds the link to the index (for pages at /reports/<ns>/<name>). */
export function renderMessagePage(status: number, title: string, message: string, back = false): Page {
  const body = `<h1>${escapeXml(title)}</h1>\n<p>${escapeXml(message)}</p>${back ? `\n${backLink()}` : ''}`;
  return { status, html: page(`failwatch: ${title}`, body) };
}

/** An experiment without a report: its phase, its conditions and what happens next. */
export function renderStatusHtml(obj: FailoverExperimentObject, note: string): string {
  const ref = `${obj.metadata.namespace}/${obj.metadata.name}`;
  const phase = obj.status?.phase ?? 'Pending';
  const conditions = (obj.status?.conditions ?? []).map(
    (c) =>
      `<tr><td>${escapeXml(c.type)}</td><td>${escapeXml(c.status)}</td><td>${escapeXml(c.reason)}</td><td>${escapeXml(c.message)}</td><td class="num">${escapeXml(c.lastTransitionTime)}</td></tr>`,
  );
  return page(
    `failwatch: ${ref}`,
    [
      `<h1>${escapeXml(ref)}: <span class="${escapeXml(phase)}">${escapeXml(phase)}</span></h1>`,
      `<p class="meta">target ${escapeXml(obj.status?.target ?? '-')} · started ${escapeXml(formatTime(startedMs(obj)))}</p>`,
      `<p>${escapeXml(note)}</p>`,
      conditions.length
        ? table(['condition', 'status', 'reason', 'message', 'since'], conditions)
        : '<p class="note">No conditions yet.</p>',
      backLink(),
    ].join('\n'),
  );
}

/** A completed run whose report was too large to store (or was changed): the summary from results.json. */
export function renderSummaryHtml(
  obj: FailoverExperimentObject,
  results: Results,
  configMap: string,
  why: 'too-large' | 'changed' = 'too-large',
): string {
  const ref = `${obj.metadata.namespace}/${obj.metadata.name}`;
  return page(
    `failwatch: ${ref}`,
    [
      `<h1>${escapeXml(ref)}: <span class="${escapeXml(results.verdict.result)}">${escapeXml(results.verdict.result)}</span></h1>`,
      `<p class="meta">T0 ${escapeXml(results.trigger.time)} · downtime = the upper bound; in brackets the point estimate (~) and the bounds, in seconds</p>`,
      why === 'too-large'
        ? `<p>The timeline of this run was too large to keep in ConfigMap ${escapeXml(configMap)}; its results.json is there (kubectl get configmap ${escapeXml(configMap)} -n ${escapeXml(obj.metadata.namespace ?? '')} -o jsonpath='{.data.results\\.json}').</p>`
        : `<p>The report stored in ConfigMap ${escapeXml(configMap)} no longer matches the digest the controller recorded in the experiment's status (it was changed after the run), so it is not served; this summary is rendered from its results.json.</p>`,
      summaryTable(results),
      backLink(),
    ].join('\n'),
  );
}

/**
 * The report HTML held by a results ConfigMap: `report.html`, or gzipped `report.html.gz`;
 * undefined when there is none or it does not inflate (within 64 MiB).
 */
export function storedReportHtml(configMap: StoredConfigMap): string | undefined {
  const plain = configMap.data?.['report.html'];
  if (plain !== undefined) return plain;
  const gz = configMap.binaryData?.['report.html.gz'];
  if (gz === undefined) return undefined;
  try {
    return gunzipSync(Buffer.from(gz, 'base64'), { maxOutputLength: MAX_REPORT_BYTES }).toString('utf8');
  } catch {
    return undefined;
  }
}

function parseResults(json: string | undefined): Results | undefined {
  if (json === undefined) return undefined;
  try {
    const doc = JSON.parse(json) as Results;
    return Array.isArray(doc.endpoints) && doc.verdict && doc.trigger ? doc : undefined;
  } catch {
    return undefined;
  }
}

const TERMINAL_WITHOUT_RESULTS = new Set(['Failed', 'Aborted']);

/** The page of one experiment, from the object and its results ConfigMap (when it has one). */
export function experimentPage(obj: FailoverExperimentObject, configMap: StoredConfigMap | undefined): Page {
  const phase = obj.status?.phase ?? 'Pending';
  const configMapName = obj.status?.resultsRef?.configMapName;
  if (configMapName && configMap) {
    const html = storedReportHtml(configMap);
    const expected = obj.status?.resultsRef?.reportSha256;
    if (html !== undefined && expected !== undefined && sha256Hex(html) === expected)
      return { status: 200, html };
    const results = parseResults(configMap.data?.['results.json']);
    if (results) {
      try {
        const why = html === undefined ? 'too-large' : 'changed';
        return { status: 200, html: renderSummaryHtml(obj, results, configMapName, why) };
      } catch {
        // A hand-edited results.json of the wrong shape: the status page below says so.
      }
    }
  }
  const note = configMapName
    ? `The results ConfigMap ${configMapName} is missing or holds no report.`
    : TERMINAL_WITHOUT_RESULTS.has(phase)
      ? `The run ended ${phase} without results, so there is no report; the conditions say why.`
      : 'The report appears when the run completes.';
  return { status: 200, html: renderStatusHtml(obj, note) };
}

/** Reads through the operator's informer cache when it has one, else through the API. */
export function kubeReportSource(
  kube: Kube,
  cached: () => FailoverExperimentObject[],
  namespaces: readonly string[] = [],
): ReportSource {
  const ref = { group: API_GROUP, version: API_VERSION, plural: EXPERIMENT_PLURAL };
  return {
    async listExperiments() {
      const fromCache = cached();
      if (fromCache.length > 0) return fromCache;
      // Not the leader (or nothing watched yet): one cluster-wide LIST, or one per namespace.
      if (namespaces.length === 0) {
        const list = (await kube.custom.listClusterCustomObject(ref)) as {
          items?: FailoverExperimentObject[];
        };
        return list.items ?? [];
      }
      const lists = await Promise.all(
        namespaces.map(
          async (namespace) =>
            (
              (await kube.custom.listNamespacedCustomObject({ ...ref, namespace })) as {
                items?: FailoverExperimentObject[];
              }
            ).items ?? [],
        ),
      );
      return lists.flat();
    },
    async getExperiment(namespace, name) {
      const hit = cached().find((o) => o.metadata.namespace === namespace && o.metadata.name === name);
      if (hit) return hit;
      try {
        return (await kube.custom.getNamespacedCustomObject({
          ...ref,
          namespace,
          name,
        })) as FailoverExperimentObject;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async getConfigMap(namespace, name) {
      try {
        return await kube.core.readNamespacedConfigMap({ namespace, name });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
  };
}

function send(reply: FastifyReply, { status, html }: Page): FastifyReply {
  return reply.code(status).headers(REPORT_PAGE_HEADERS).send(html);
}

/** Which page a path below /reports/ asks for: an experiment, or a 400/404 page. */
export function parseReportPath(rest: string): { namespace: string; name: string } | Page {
  const parts = rest.split('/');
  if (parts.length !== 2)
    return renderMessagePage(404, 'Not found', 'Report pages are /reports/<namespace>/<name>.');
  const [namespace, name] = parts as [string, string];
  if (!isDns1123Label(namespace) || !isDns1123Subdomain(name))
    return renderMessagePage(
      400,
      'Bad request',
      `\`${namespace}/${name}\` is not a namespace/name: both are lower-case DNS-1123 names (a-z, 0-9, '-', and '.' in names).`,
      true,
    );
  return { namespace, name };
}

/** Experiments of the namespaces `caller` may get from (one SubjectAccessReview per namespace). */
export async function visibleExperiments(
  experiments: readonly FailoverExperimentObject[],
  caller: Caller,
  authorizer: ReportAuthorizer,
): Promise<FailoverExperimentObject[]> {
  if (await authorizer.mayGet(caller, undefined)) return [...experiments];
  const namespaces = [...new Set(experiments.map((o) => o.metadata.namespace ?? ''))];
  const allowed = new Set<string>();
  for (const ns of namespaces) if (await authorizer.mayGet(caller, ns)) allowed.add(ns);
  return experiments.filter((o) => allowed.has(o.metadata.namespace ?? ''));
}

const HOW_TO_AUTHENTICATE =
  'Send a Kubernetes bearer token of a user who may get FailoverExperiments, e.g. curl -H "Authorization: Bearer $(kubectl create token <service-account> -n <namespace>)" ...';

/** Fastify routes for startHttpServer({ routes }). */
export function reportPageRoutes(
  source: ReportSource,
  authorizer: ReportAuthorizer,
  log?: { warn(fields: Record<string, unknown>, message: string): void },
): (app: FastifyInstance) => void {
  const unavailable = (reply: FastifyReply, err: unknown) => {
    const message = apiErrorMessage(err);
    log?.warn({ err: message }, 'report page: the API request failed');
    return send(
      reply,
      renderMessagePage(503, 'Unavailable', `The Kubernetes API request failed: ${message}`),
    );
  };
  /** The authenticated caller, or undefined after sending 401/503. */
  const callerOf = async (request: FastifyRequest, reply: FastifyReply): Promise<Caller | undefined> => {
    const token = bearerToken(request.headers.authorization);
    let caller: Caller | undefined;
    if (token !== undefined) {
      try {
        caller = await authorizer.authenticate(token);
      } catch (err) {
        void unavailable(reply, err);
        return undefined;
      }
    }
    if (!caller) {
      const why =
        token === undefined ? 'This page needs a bearer token.' : 'The apiserver did not accept this token.';
      void send(
        reply.header('www-authenticate', 'Bearer realm="failwatch-reports"'),
        renderMessagePage(401, 'Unauthorized', `${why} ${HOW_TO_AUTHENTICATE}`),
      );
      return undefined;
    }
    return caller;
  };
  return (app) => {
    app.get('/reports', async (request, reply) => {
      const caller = await callerOf(request, reply);
      if (!caller) return reply;
      let experiments: FailoverExperimentObject[];
      try {
        experiments = await visibleExperiments(await source.listExperiments(), caller, authorizer);
      } catch (err) {
        return unavailable(reply, err);
      }
      return send(reply, { status: 200, html: renderIndexHtml(experiments) });
    });
    app.get('/reports/*', async (request, reply) => {
      const rest = (request.params as { '*': string })['*'];
      if (rest === '') return reply.redirect('../reports', 301);
      const caller = await callerOf(request, reply);
      if (!caller) return reply;
      const parsed = parseReportPath(rest);
      if ('html' in parsed) return send(reply, parsed);
      const { namespace, name } = parsed;
      try {
        // Asked before looking the experiment up: a refusal says nothing about whether it exists.
        if (!(await authorizer.mayGet(caller, namespace, name)))
          return send(
            reply,
            renderMessagePage(
              403,
              'Forbidden',
              `${caller.username} may not get FailoverExperiments in namespace ${namespace}.`,
            ),
          );
        const obj = await source.getExperiment(namespace, name);
        if (!obj)
          return send(
            reply,
            renderMessagePage(404, 'Not found', `There is no FailoverExperiment ${namespace}/${name}.`, true),
          );
        const configMapName = obj.status?.resultsRef?.configMapName;
        const configMap = configMapName ? await source.getConfigMap(namespace, configMapName) : undefined;
        return send(reply, experimentPage(obj, configMap));
      } catch (err) {
        return unavailable(reply, err);
      }
    });
  };
}
