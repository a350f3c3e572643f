// The operator's report pages on a real control plane and the lab: a run with the aws-rds
// trigger to Completed, then /reports and /reports/<ns>/<name> over HTTP (from the leader,
// and from a second replica that is not the leader and reads through the API), the status,
// 404 and 400 pages, the gzipped and the summary-only ConfigMap forms, and both pages in
// headless Chromium: every lane and marker on the screenshot, no request but the page.
// FAILWATCH_UPDATE_SCREENSHOTS=1 writes the screenshots to docs/images/report-{page,index}.png.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { EndpointResult, Results } from '../../src/analysis/results.ts';
import { reportPayload } from '../../src/controller/experiment-reconciler.ts';
import { formatOffset, formatSeconds } from '../../src/report/format.ts';
import { SUMMARY_HEADERS } from '../../src/report/table.ts';
import { type CapturedPage, type Chromium, launchChromium, pngSize } from '../helpers/chromium.ts';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { startTestLab, type TestLab } from '../helpers/lab.ts';
import {
  experimentClient,
  LAB_PASSWORD,
  labExperiment,
  prepareOperatorNamespace,
  serviceAccountToken,
  spawnOperator,
  stopProcess,
  WRONG_PASSWORD,
  waiter,
} from '../helpers/operator-env.ts';

const NS = 'gameday';
const LEADER = 'http://127.0.75.9:18280';
const FOLLOWER = 'http://127.0.75.10:18280';
const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const tmp = mkdtempSync(join(tmpdir(), 'fw-reports-'));
const SHOTS = process.env.FAILWATCH_UPDATE_SCREENSHOTS
  ? fileURLToPath(new URL('../../docs/images/', import.meta.url))
  : tmp;
/** Every lane of the lab manifest: endpoints in spec order, kinds write, read, dns. */
const LANES = [
  'cluster/write',
  'cluster/read',
  'cluster/dns',
  'cluster-pooled/write',
  'reader/read',
  'reader/dns',
  'proxy/write',
  'proxy/read',
];
let cp: ControlPlane;
let lab: TestLab;
let chromium: Chromium;
let core: CoreV1Api;
let experiments: ReturnType<typeof experimentClient>;
let saKubeconfig: string;
const operators: ChildProcess[] = [];

function startOperator(listen: string, logName: string): ChildProcess {
  const child = spawnOperator({ kubeconfig: saKubeconfig, listen, logFile: join(tmp, logName) });
  operators.push(child);
  return child;
}

// The controller fails a run on the first setup failure of a prober; under a loaded 2-core
// machine a 1 s connect deadline is sometimes too short for that first connect.
const experiment = (name: string, secret = 'lab-db') =>
  labExperiment(lab, name, NS, { secret, connectTimeout: '3s' });

const create = (doc: Record<string, any>) => experiments.create(doc);
const get = (name: string) => experiments.get(name);
const phaseIs = (name: string, phases: string[]) => experiments.phaseIs(name, phases);
const waitFor = waiter({ timeoutMs: 120_000, intervalMs: 250, logs: { operator: join(tmp, 'leader.log') } });

/** A bearer token of a ServiceAccount that may get FailoverExperiments in every namespace. */
let viewerToken: string;

async function fetchPage(
  url: string,
  /** null: no Authorization header. */
  token: string | null = viewerToken,
): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(url, {
    redirect: 'manual',
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

function assertPageHeaders(headers: Headers, what: string): void {
  assert.equal(headers.get('content-type'), 'text/html; charset=utf-8', what);
  assert.equal(headers.get('content-security-policy'), CSP, what);
  assert.equal(headers.get('x-content-type-options'), 'nosniff', what);
}

/** The page made no request but for itself, and the browser reported no CSP violation. */
function assertOnlyTheDocument(page: CapturedPage, url: string): void {
  assert.deepEqual(
    page.requests.map((r) => `${r.type} ${r.method} ${r.url}`),
    [`Document GET ${url}`],
  );
  assert.deepEqual(
    page.messages.filter((m) => /Content Security Policy|Failed to load/i.test(m)),
    [],
  );
}

function saveScreenshot(name: string, page: CapturedPage): string {
  const file = join(SHOTS, name);
  writeFileSync(file, page.png);
  return file;
}

const AUTH = () => ({ authorization: `Bearer ${viewerToken}` });

const count = (html: string, pattern: RegExp) => (html.match(pattern) ?? []).length;

/** Boxes (in page pixels) of the timeline's lanes and markers, read from the rendered DOM. */
const LAYOUT_PROBE = `(() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return { x: r.x + scrollX, y: r.y + scrollY, w: r.width, h: r.height }; };
  const titled = (text) => [...document.querySelectorAll('svg title')]
    .filter((t) => t.textContent.includes(text)).map((t) => box(t.parentElement));
  return {
    lanes: [...document.querySelectorAll('g.lane')].map((g) => ({
      lane: g.dataset.endpoint + '/' + g.dataset.kind, ...box(g.querySelector('rect.lane-bg')),
      attempts: g.querySelectorAll('rect:not(.lane-bg):not(.window)').length })),
    t0: [...document.querySelectorAll('line.t0')].map(box),
    badges: [...document.querySelectorAll('g.badge')].map(box),
    dnsFlips: titled(': DNS flip '),
    roleFlips: titled(': role flip '),
    recovered: titled(': recovered '),
  };
})()`;

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

function assertInside(boxes: Box[], page: CapturedPage, what: string, zeroWidthOk = false): void {
  for (const b of boxes) {
    assert.ok(b.h > 0 && (zeroWidthOk || b.w > 0), `${what} has a size: ${JSON.stringify(b)}`);
    assert.ok(
      b.x >= 0 && b.y >= 0 && b.x + b.w <= page.width && b.y + b.h <= page.height,
      `${what} ${JSON.stringify(b)} inside the ${page.width}x${page.height} screenshot`,
    );
  }
}

describe('report pages of the operator', { timeout: 900_000 }, () => {
  let results: Results;
  let storedHtml: string;

  before(async () => {
    cp = await startControlPlane({ podCidr: '127.0.100.0/24' });
    lab = await startTestLab({ base: '127.0.75', dnsPort: 11253, apiPort: 11280 });
    const admin = cp.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    experiments = experimentClient(admin.makeApiClient(CustomObjectsApi), NS);
    saKubeconfig = await prepareOperatorNamespace(cp, {
      dir: tmp,
      namespace: NS,
      secrets: { 'lab-db': LAB_PASSWORD, 'wrong-db': WRONG_PASSWORD },
    });
    // The pages answer only who may get the experiments (TokenReview + SubjectAccessReview).
    const rbac = cp.kubectl(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: ServiceAccount
metadata: { name: report-viewer, namespace: ${NS} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: failwatch-report-viewer }
rules:
  - { apiGroups: [failwatch.io], resources: [failoverexperiments], verbs: [get, list] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: failwatch-report-viewer }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: failwatch-report-viewer }
subjects: [{ kind: ServiceAccount, name: report-viewer, namespace: ${NS} }]
`,
    );
    assert.equal(rbac.code, 0, rbac.out);
    viewerToken = serviceAccountToken(cp, 'report-viewer', NS);
    startOperator('127.0.75.9:18280', 'leader.log');
    await waitFor('the first replica leads', async () =>
      (await fetch(`${LEADER}/readyz`)).status === 200 ? true : undefined,
    );
    // A second replica: it never leads while the first runs, so its pages read through the API.
    startOperator('127.0.75.10:18280', 'follower.log');
    await waitFor('the second replica serves', async () =>
      (await fetch(`${FOLLOWER}/healthz`)).ok ? true : undefined,
    );
    chromium = await launchChromium();
  });

  after(async () => {
    await chromium?.close();
    for (const child of operators) await stopProcess(child);
    await cp?.stop();
    await lab?.down();
  });

  it('serves the stored report of a completed run: every lane and marker, nothing loaded', async () => {
    await create(experiment('waiting', 'missing-secret')); // stays Pending (Blocked) throughout
    await create(experiment('failover'));
    const done = await waitFor('failover done', phaseIs('failover', ['Completed', 'Failed']), 240_000);
    assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
    const cm = await core.readNamespacedConfigMap({
      namespace: NS,
      name: done.status.resultsRef.configMapName,
    });
    results = JSON.parse(cm.data!['results.json']!) as Results;
    storedHtml = cm.data!['report.html']!;
    assert.ok(storedHtml, 'the report is stored plain (it fits)');
    console.log(`report.html ${Buffer.byteLength(storedHtml)} bytes in ConfigMap ${cm.metadata!.name}`);

    const url = `${LEADER}/reports/${NS}/failover`;
    const anonymous = await fetchPage(url, null);
    assert.equal(anonymous.status, 401);
    assertPageHeaders(anonymous.headers, 'anonymous');
    assert.match(anonymous.body, /kubectl create token/);
    const res = await fetchPage(url);
    assert.equal(res.status, 200);
    assertPageHeaders(res.headers, url);
    assert.equal(res.body, storedHtml, 'served as stored');

    // Lanes and markers in the HTML, counted against results.json.
    const lanes = [...res.body.matchAll(/<g class="lane" data-endpoint="([^"]+)" data-kind="([^"]+)">/g)];
    assert.deepEqual(
      lanes.map((m) => `${m[1]}/${m[2]}`),
      LANES,
    );
    const events = results.trigger.events;
    assert.ok(events.length >= 2, `RDS events: ${events.map((e) => e.message).join('; ')}`);
    const endpoints = results.endpoints;
    const recovered = (e: EndpointResult) => [e.write, e.read].some((k) => k?.recoveredAt);
    const withDnsFlip = endpoints.filter((e) => e.dnsFlip);
    const withRoleFlip = endpoints.filter((e) => e.roleFlip);
    const withRecovery = endpoints.filter(recovered);
    assert.ok(
      withDnsFlip.some((e) => e.name === 'cluster'),
      'the cluster endpoint flipped in DNS',
    );
    assert.ok(withRoleFlip.length >= 2, `role flips: ${withRoleFlip.map((e) => e.name)}`);
    // The writers' endpoints always have an outage; the reader's read outage is short and a
    // 300 ms probe can miss it. Each one there is drawn (below).
    assert.ok(
      ['cluster', 'cluster-pooled', 'proxy'].every((n) => withRecovery.some((e) => e.name === n)),
      `outages and recoveries: ${withRecovery.map((e) => e.name)}`,
    );
    assert.equal(count(res.body, /<line class="t0"/g), 1);
    assert.equal(count(res.body, /<g class="badge">/g), events.length);
    for (const event of events)
      assert.ok(res.body.includes(`${formatOffset(event.seconds)} ${event.message}</title>`), event.message);
    assert.equal(count(res.body, /<title>[^<]*: DNS flip /g), withDnsFlip.length);
    assert.equal(count(res.body, /<title>[^<]*: role flip /g), withRoleFlip.length);
    assert.equal(count(res.body, /<title>[^<]*: recovered /g), withRecovery.length);
    for (const e of withDnsFlip)
      assert.ok(res.body.includes(`<title>${e.name}: DNS flip ${formatOffset(e.dnsFlip!.seconds)} `));
    for (const e of withRoleFlip)
      assert.ok(res.body.includes(`<title>${e.name}: role flip ${formatOffset(e.roleFlip!.seconds)} `));

    // The same in Chromium: each lane and marker laid out inside the screenshot.
    const page = await chromium.capture(url, { evaluate: LAYOUT_PROBE, headers: AUTH() });
    assert.equal(page.status, 200);
    assertOnlyTheDocument(page, url);
    const laid = page.evaluated as Record<string, any>;
    assert.deepEqual(
      laid.lanes.map((l: { lane: string }) => l.lane),
      LANES,
    );
    assertInside(laid.lanes, page, 'lane');
    for (const l of laid.lanes) assert.ok(l.attempts > 0, `${l.lane} draws its attempts`);
    assert.equal(laid.t0.length, 1);
    assertInside(laid.t0, page, 'T0 line', true);
    assert.equal(laid.badges.length, events.length);
    assertInside(laid.badges, page, 'RDS event badge');
    assert.equal(laid.dnsFlips.length, withDnsFlip.length);
    assertInside(laid.dnsFlips, page, 'DNS flip marker');
    assert.equal(laid.roleFlips.length, withRoleFlip.length);
    assertInside(laid.roleFlips, page, 'role flip marker');
    assert.equal(laid.recovered.length, withRecovery.length);
    assertInside(laid.recovered, page, 'recovered marker');
    assert.deepEqual(pngSize(page.png), { width: page.width, height: page.height });
    console.log(
      `report page in Chromium: ${page.width}x${page.height}, ${laid.lanes.length} lanes, ${laid.badges.length} RDS events, ${laid.dnsFlips.length} DNS flips, ${laid.roleFlips.length} role flips, ${laid.recovered.length} recoveries, ${page.requests.length} request; screenshot ${saveScreenshot('report-page.png', page)}`,
    );
  });

  it('lists recent runs newest first, from the leader and from a replica that is not', async () => {
    const done = await get('failover');
    const rowsOf = (html: string) =>
      [...html.matchAll(/<tr>((?:<td[^>]*>.*?<\/td>)+)<\/tr>/g)].map((m) =>
        [...m[1]!.matchAll(/<td[^>]*>(.*?)<\/td>/g)].map((c) => c[1]!.replace(/<[^>]+>/g, '')),
      );
    const index = await fetchPage(`${LEADER}/reports`);
    assert.equal(index.status, 200);
    assertPageHeaders(index.headers, '/reports');
    const rows = rowsOf(index.body);
    console.log(rows.map((r) => r.join(' | ')).join('\n'));
    assert.equal(rows.length, 2);
    const row = rows.find((r) => r[1] === 'failover');
    assert.deepEqual(row, [
      NS,
      'failover',
      'Completed',
      done.status.verdict,
      'lab-pg',
      formatSeconds(done.status.worstDowntimeSeconds),
      `${done.status.startTime.slice(0, 10)} ${done.status.startTime.slice(11, 19)}Z`,
      'report',
    ]);
    assert.deepEqual(rows.find((r) => r[1] === 'waiting')?.slice(2, 4), ['Pending', '-']);
    const started = rows.map((r) => Date.parse(r[6]!.replace(' ', 'T')));
    assert.ok(started[0]! >= started[1]!, `newest first: ${rows.map((r) => r[6])}`);
    // The links resolve relative to /reports.
    for (const [, href] of index.body.matchAll(/<a href="([^"]+)">/g)) {
      const target = new URL(href!, `${LEADER}/reports`).href;
      assert.equal((await fetchPage(target)).status, 200, target);
    }
    assert.equal((await fetchPage(`${LEADER}/reports/`)).headers.get('location'), '../reports');

    // The second replica is not the leader: its cache is empty, it lists through the API.
    const readyz = await fetch(`${FOLLOWER}/readyz`);
    assert.equal(readyz.status, 503);
    assert.match(await readyz.text(), /waiting for leadership/);
    const fromFollower = await fetchPage(`${FOLLOWER}/reports`);
    assert.equal(fromFollower.status, 200);
    assert.deepEqual(rowsOf(fromFollower.body), rows);
    const report = await fetchPage(`${FOLLOWER}/reports/${NS}/failover`);
    assert.equal(report.body, storedHtml);
  });

  it('answers with the phase and conditions before results, 404 for unknown runs, 400 for bad names', async () => {
    // The controller marks it Blocked when it gets to it (CI once read the page before that).
    await waitFor('waiting Blocked', async () =>
      (await get('waiting')).status?.conditions?.some(
        (c: { type: string; status: string }) => c.type === 'Blocked' && c.status === 'True',
      )
        ? true
        : undefined,
    );
    const waiting = await fetchPage(`${LEADER}/reports/${NS}/waiting`);
    assert.equal(waiting.status, 200);
    assertPageHeaders(waiting.headers, 'waiting');
    assert.match(waiting.body, /<span class="Pending">Pending<\/span>/);
    assert.match(
      waiting.body,
      /<td>Blocked<\/td><td>True<\/td><td>SecretNotFound<\/td><td>endpoint `[a-z-]+`: Secret missing-secret not found/,
    );
    assert.match(waiting.body, /The report appears when the run completes\./);

    await create(experiment('badpw', 'wrong-db'));
    const failed = await waitFor('badpw Failed', phaseIs('badpw', ['Failed', 'Completed']));
    assert.equal(failed.status.phase, 'Failed');
    const badpw = await fetchPage(`${LEADER}/reports/${NS}/badpw`);
    assert.equal(badpw.status, 200);
    assert.match(badpw.body, /<span class="Failed">Failed<\/span>/);
    assert.match(badpw.body, /<td>Failed<\/td><td>True<\/td><td>AuthenticationFailed<\/td>/);
    assert.match(badpw.body, /ended Failed without results/);
    assert.doesNotMatch(badpw.body, /not-the-password/);

    const cases: [string, number, RegExp][] = [
      [`/reports/${NS}/nope`, 404, /There is no FailoverExperiment gameday\/nope\./],
      ['/reports/elsewhere/failover', 404, /There is no FailoverExperiment elsewhere\/failover\./],
      [`/reports/${NS}/Not_A_Name`, 400, /`gameday\/Not_A_Name` is not a namespace\/name/],
      [
        '/reports/%3Cb%3Eoops%3C%2Fb%3E/x',
        404,
        /Report pages are \/reports\/&lt;namespace&gt;\/&lt;name&gt;/,
      ],
      ['/reports/%3Cb%3Eoops/x', 400, /`&lt;b&gt;oops\/x` is not a namespace\/name/],
      [`/reports/${NS}/failover/extra`, 404, /Report pages are/],
    ];
    for (const [path, status, body] of cases) {
      const r = await fetchPage(`${LEADER}${path}`);
      assert.equal(r.status, status, path);
      assertPageHeaders(r.headers, path);
      assert.match(r.body, body, path);
      assert.doesNotMatch(r.body, /<b>/, path);
    }

    // The index in Chromium, now with a completed, a failed and a waiting run.
    const page = await chromium.capture(`${LEADER}/reports`, {
      width: 1000,
      headers: AUTH(),
      evaluate: `[...document.querySelectorAll('tbody tr')].map((tr) =>
        [...tr.cells].map((td) => td.textContent).slice(1, 4).join(' '))`,
    });
    assertOnlyTheDocument(page, `${LEADER}/reports`);
    assert.deepEqual(page.evaluated, [
      'badpw Failed -',
      `failover Completed ${(await get('failover')).status.verdict}`,
      'waiting Pending -',
    ]);
    console.log(
      `index in Chromium: ${page.width}x${page.height}, ${page.requests.length} request; screenshot ${saveScreenshot('report-index.png', page)}`,
    );
  });

  it('serves a gzipped report from binaryData, and the summary when the report was left out', async () => {
    const name = (await get('failover')).status.resultsRef.configMapName as string;
    const cm = await core.readNamespacedConfigMap({ namespace: NS, name });
    const gz = reportPayload(storedHtml, Buffer.byteLength(storedHtml) - 1);
    assert.ok(gz.binaryData, 'gzipped');
    await core.replaceNamespacedConfigMap({
      namespace: NS,
      name,
      body: { metadata: cm.metadata, data: { 'results.json': cm.data!['results.json']! }, ...gz },
    });
    const zipped = await fetchPage(`${LEADER}/reports/${NS}/failover`);
    assert.equal(zipped.status, 200);
    assert.equal(zipped.body, storedHtml, 'the gzipped report, inflated');

    const now = await core.readNamespacedConfigMap({ namespace: NS, name });
    await core.replaceNamespacedConfigMap({
      namespace: NS,
      name,
      body: { metadata: now.metadata, data: { 'results.json': cm.data!['results.json']! } },
    });
    const summary = await fetchPage(`${LEADER}/reports/${NS}/failover`);
    assert.equal(summary.status, 200);
    assertPageHeaders(summary.headers, 'summary');
    assert.deepEqual(
      [...summary.body.matchAll(/<th>([^<]*)<\/th>/g)].map((m) => m[1]),
      SUMMARY_HEADERS,
    );
    assert.deepEqual(
      [...summary.body.matchAll(/<tr><td>([^<]*)<\/td>/g)].map((m) => m[1]),
      results.endpoints.map((e) => e.name),
    );
    assert.match(summary.body, new RegExp(`too large to keep in ConfigMap ${name}`));
  });
});
