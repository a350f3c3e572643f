import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { analyzeRun } from '../../src/analysis/analyze-run.ts';
import {
  type FailoverExperimentObject,
  reportPayload,
  sha256Hex,
} from '../../src/controller/experiment-reconciler.ts';
import { escapeXml, formatDowntime } from '../../src/report/format.ts';
import { renderReportHtml } from '../../src/report/report-html.ts';
import { SUMMARY_HEADERS } from '../../src/report/table.ts';
import {
  experimentPage,
  INDEX_HEADERS,
  INDEX_LIMIT,
  isDns1123Label,
  isDns1123Subdomain,
  parseReportPath,
  recentRuns,
  renderIndexHtml,
  storedReportHtml,
} from '../../src/server/report-pages.ts';
import { syntheticRun } from './analysis-synthetic-run.ts';

const run = syntheticRun();
const results = analyzeRun(run);
const reportHtml = renderReportHtml(results, run.samples);

function experiment(
  name: string,
  status: FailoverExperimentObject['status'] = {},
  creationTimestamp = '2024-05-01T10:00:00Z',
  namespace = 'team',
): FailoverExperimentObject {
  return {
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverExperiment',
    metadata: { name, namespace, creationTimestamp: creationTimestamp as unknown as Date },
    spec: {} as FailoverExperimentObject['spec'],
    status,
  };
}

const rowsOf = (html: string) => [...html.matchAll(/<tr><td>([^<]*)<\/td><td>([^<]*)<\/td>/g)];

describe('report page names', () => {
  it('accepts DNS-1123 namespaces and object names only', () => {
    for (const ok of ['team', 'a', 'a-1', 'x'.repeat(63)]) assert.ok(isDns1123Label(ok), ok);
    for (const bad of ['', 'Team', '-a', 'a-', 'a.b', 'a_b', 'x'.repeat(64), '<b>', 'a b'])
      assert.ok(!isDns1123Label(bad), bad);
    for (const ok of ['e2e', 'nightly.2024-05-01', `${'x'.repeat(63)}.${'y'.repeat(63)}`])
      assert.ok(isDns1123Subdomain(ok), ok);
    for (const bad of ['', 'a..b', '.a', 'a.', 'E2E', 'a/b', 'x'.repeat(254), '%3Cb%3E'])
      assert.ok(!isDns1123Subdomain(bad), bad);
  });

  it('answers 400 for bad names (escaped), 404 for other shapes', () => {
    assert.deepEqual(parseReportPath('team/e2e'), { namespace: 'team', name: 'e2e' });
    const bad = parseReportPath('<b>/x');
    assert.ok('html' in bad);
    assert.equal(bad.status, 400);
    assert.ok(bad.html.includes('`&lt;b&gt;/x`'), bad.html);
    assert.doesNotMatch(bad.html, /<b>/);
    const upper = parseReportPath('team/E2E');
    assert.ok('html' in upper);
    assert.equal(upper.status, 400);
    for (const other of ['team', 'team/e2e/extra', 'a/b/c/d']) {
      const page = parseReportPath(other);
      assert.ok('html' in page, other);
      assert.equal(page.status, 404, other);
    }
  });
});

describe('the index of recent runs', () => {
  it('sorts newest first by startTime, else creationTimestamp, and keeps at most 200', () => {
    const many = Array.from({ length: 250 }, (_, i) =>
      experiment(`run-${i}`, {}, new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString()),
    );
    many.push(experiment('started-late', { startTime: '2025-01-01T00:00:00Z' }, '2023-01-01T00:00:00Z'));
    many.push(experiment('as-date', {}, new Date(Date.UTC(2024, 11, 1)) as unknown as string));
    const runs = recentRuns(many);
    assert.equal(runs.length, INDEX_LIMIT);
    assert.deepEqual(
      runs.slice(0, 4).map((o) => o.metadata.name),
      ['started-late', 'as-date', 'run-249', 'run-248'],
    );
    assert.equal(runs.at(-1)!.metadata.name, 'run-52');
    const html = renderIndexHtml(many);
    assert.equal(rowsOf(html).length, 200);
    assert.match(html, /the newest 200 of 252 FailoverExperiments/);
  });

  it('has a column per field and a relative link per run', () => {
    const html = renderIndexHtml([
      experiment('e2e', {
        phase: 'Completed',
        verdict: 'Pass',
        target: 'lab-pg',
        worstDowntimeSeconds: 11.1334,
        startTime: '2024-05-01T12:00:04.902Z',
        resultsRef: { configMapName: 'e2e-results' },
      }),
      experiment('waiting', { phase: 'Pending' }, '2024-04-01T00:00:00Z', 'other'),
    ]);
    const headers = [...html.matchAll(/<th>([^<]*)<\/th>/g)].map((m) => m[1]);
    assert.deepEqual(headers, INDEX_HEADERS);
    assert.match(
      html,
      /<tr><td>team<\/td><td>e2e<\/td><td class="Completed">Completed<\/td><td class="Pass">Pass<\/td><td>lab-pg<\/td><td class="num">11\.133s<\/td><td class="num">2024-05-01 12:00:04Z<\/td><td><a href="reports\/team\/e2e">report<\/a><\/td><\/tr>/,
    );
    assert.match(
      html,
      /<tr><td>other<\/td><td>waiting<\/td><td class="Pending">Pending<\/td><td class="">-<\/td><td>-<\/td><td class="num">-<\/td><td class="num">2024-04-01 00:00:00Z<\/td><td><a href="reports\/other\/waiting">status<\/a><\/td><\/tr>/,
    );
    assert.match(html, /2 FailoverExperiments, newest first/);
    assert.doesNotMatch(html, /<script|https?:\/\//);
  });

  it('escapes every value', () => {
    const evil = '<script>alert("x")</script>&\'';
    const obj = experiment('e2e', { phase: evil as 'Pending', target: evil, verdict: evil as 'Pass' });
    obj.metadata.namespace = evil;
    const html = renderIndexHtml([obj]);
    assert.doesNotMatch(html, /<script/);
    assert.equal(
      html.split('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;').length - 1,
      6,
      'namespace, phase and verdict (class and text each), target',
    );
    assert.match(html, /href="reports\/%3Cscript%3Ealert\(%22x%22\)%3C%2Fscript%3E%26&#39;\/e2e"/);
  });
});

describe('the page of one experiment', () => {
  const completed = experiment('e2e', {
    phase: 'Completed',
    resultsRef: { configMapName: 'e2e-results', reportSha256: sha256Hex(reportHtml) },
  });

  it('serves a stored report that someone changed never: the summary from results.json instead', () => {
    const tampered = reportHtml.replace('</body>', '<script>steal()</script></body>');
    for (const obj of [
      completed,
      experiment('e2e', { phase: 'Completed', resultsRef: { configMapName: 'e2e-results' } }),
    ]) {
      const page = experimentPage(obj, {
        data: { 'results.json': JSON.stringify(results), 'report.html': tampered },
      });
      assert.equal(page.status, 200);
      assert.doesNotMatch(page.html, /steal\(\)/);
      assert.match(page.html, /no longer matches the digest/);
    }
    // A results.json of the wrong shape gets the status page, not an error.
    const odd = experimentPage(completed, {
      data: {
        'results.json': JSON.stringify({ endpoints: [{ name: 7 }], verdict: {}, trigger: {} }),
        'report.html': tampered,
      },
    });
    assert.equal(odd.status, 200);
    assert.doesNotMatch(odd.html, /steal\(\)/);
  });

  it('serves the stored report as it is, plain or gzipped, while it matches the digest', () => {
    const plain = experimentPage(completed, { data: { 'results.json': '{}', 'report.html': reportHtml } });
    assert.equal(plain.status, 200);
    assert.equal(plain.html, reportHtml);
    const gz = reportPayload(reportHtml, 10_000);
    assert.ok(gz.binaryData, 'gzipped');
    const zipped = experimentPage(completed, { data: { 'results.json': '{}' }, binaryData: gz.binaryData });
    assert.equal(zipped.html, reportHtml);
  });

  it('falls back to the summary when the gzipped report is corrupt', () => {
    const corrupt = { 'report.html.gz': Buffer.from('not gzip').toString('base64') };
    assert.equal(storedReportHtml({ binaryData: corrupt }), undefined);
    const page = experimentPage(completed, {
      data: { 'results.json': JSON.stringify(results) },
      binaryData: corrupt,
    });
    assert.equal(page.status, 200);
    assert.match(page.html, /too large to keep in ConfigMap e2e-results/);
  });

  it('shows the summary from results.json when the report was too large to keep', () => {
    const page = experimentPage(completed, { data: { 'results.json': JSON.stringify(results) } });
    assert.equal(page.status, 200);
    const headers = [...page.html.matchAll(/<th>([^<]*)<\/th>/g)].map((m) => m[1]);
    assert.deepEqual(headers, SUMMARY_HEADERS);
    assert.deepEqual(
      [...page.html.matchAll(/<tr><td>([^<]*)<\/td>/g)].map((m) => m[1]),
      results.endpoints.map((e) => e.name),
    );
    assert.match(page.html, /too large to keep in ConfigMap e2e-results/);
    const cluster = results.endpoints.find((e) => e.name === 'cluster')!;
    assert.ok(
      page.html.includes(`<td>cluster</td><td class="num">${escapeXml(formatDowntime(cluster.write))}</td>`),
    );
    assert.match(formatDowntime(cluster.write), /^6\.100s \(.*5\.903-6\.100\)$/);
  });

  it('shows phase and conditions (escaped) until the run completes, and why a failed run has none', () => {
    const blocked = experiment('waiting', {
      phase: 'Pending',
      conditions: [
        {
          type: 'Blocked',
          status: 'True',
          reason: 'SecretNotFound',
          message: 'Secret <missing> not found in namespace team',
          lastTransitionTime: '2024-05-01T12:00:00Z',
        },
      ],
    });
    const page = experimentPage(blocked, undefined);
    assert.equal(page.status, 200);
    assert.match(page.html, /<h1>team\/waiting: <span class="Pending">Pending<\/span><\/h1>/);
    assert.match(
      page.html,
      /<tr><td>Blocked<\/td><td>True<\/td><td>SecretNotFound<\/td><td>Secret &lt;missing&gt; not found in namespace team<\/td>/,
    );
    assert.match(page.html, /The report appears when the run completes\./);
    assert.match(page.html, /<a href="\.\.\/\.\.\/reports">all runs<\/a>/);
    const failed = experimentPage(experiment('badpw', { phase: 'Failed' }), undefined);
    assert.match(failed.html, /ended Failed without results/);
    assert.doesNotMatch(failed.html, /appears when the run completes/);
    const lost = experimentPage(completed, undefined);
    assert.match(lost.html, /ConfigMap e2e-results is missing or holds no report/);
  });
});

describe('reportPayload (the report in the results ConfigMap)', () => {
  const bytes = Buffer.byteLength(reportHtml);

  it('keeps the report plain while its bytes fit the budget', () => {
    assert.ok(bytes > reportHtml.length, 'the report has multi-byte characters (·)');
    const payload = reportPayload(reportHtml, bytes);
    assert.deepEqual(Object.keys(payload), ['data']);
    assert.equal(payload.data!['report.html'], reportHtml);
    assert.equal(storedReportHtml(payload), reportHtml);
  });

  it('gzips it (base64 binaryData) when only that fits', () => {
    const payload = reportPayload(reportHtml, reportHtml.length); // characters < bytes
    assert.deepEqual(Object.keys(payload), ['binaryData']);
    const gz = payload.binaryData!['report.html.gz']!;
    console.log(`report ${bytes} bytes, gzipped and base64 ${gz.length} bytes`);
    assert.ok(gz.length < bytes / 3, `${gz.length} bytes gzipped`);
    assert.equal(gunzipSync(Buffer.from(gz, 'base64')).toString('utf8'), reportHtml);
    assert.equal(storedReportHtml(payload), reportHtml);
    assert.deepEqual(Object.keys(reportPayload(reportHtml, gz.length)), ['binaryData']);
  });

  it('leaves it out when not even the gzipped report fits', () => {
    const gzLength = reportPayload(reportHtml, bytes - 1).binaryData!['report.html.gz']!.length;
    assert.deepEqual(reportPayload(reportHtml, gzLength - 1), {});
    assert.equal(storedReportHtml(reportPayload(reportHtml, gzLength - 1)), undefined);
  });
});
