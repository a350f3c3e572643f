import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeRun } from '../../src/analysis/analyze-run.ts';
import type { Sample } from '../../src/analysis/sample.ts';
import { laneSegments } from '../../src/report/lane-segments.ts';
import { renderReportHtml } from '../../src/report/report-html.ts';
import { formatSummaryTable } from '../../src/report/table.ts';
import { axisTicksSeconds } from '../../src/report/time-axis.ts';
import { fixedRateLane, syntheticRun, T0_MS } from './analysis-synthetic-run.ts';

const run = syntheticRun();
const results = analyzeRun(run);

describe('renderReportHtml', () => {
  const html = renderReportHtml(results, run.samples);

  it('draws a lane per endpoint and probe kind', () => {
    const lanes = [...html.matchAll(/<g class="lane" data-endpoint="([^"]+)" data-kind="([^"]+)">/g)].map(
      (match) => `${match[1]}/${match[2]}`,
    );
    assert.deepEqual(lanes, ['cluster/write', 'cluster/read', 'cluster/dns', 'proxy/write', 'reader/read']);
  });

  it('marks T0, each RDS event, the DNS flip, role flips and recoveries', () => {
    assert.equal((html.match(/<line class="t0"/g) ?? []).length, 1);
    assert.equal((html.match(/<line class="event"/g) ?? []).length, 3);
    assert.match(html, /<title>cluster: DNS flip \+10\.501s -&gt; pg-2\.lab\.local 127\.0\.10\.12<\/title>/);
    assert.match(html, /<title>cluster: role flip \+11\.002s pg-1 -&gt; pg-2<\/title>/);
    assert.match(html, /<title>proxy: role flip \+7\.300s pg-1 -&gt; pg-2<\/title>/);
    assert.equal((html.match(/: recovered \+/g) ?? []).length, 3);
    assert.equal((html.match(/<rect class="window"/g) ?? []).length, 4);
  });

  it('colours attempts by class and explains every class drawn in the legend', () => {
    assert.match(html, /<title>cluster write: read_only x30, \+8\.000s \.\. \+10\.903s<\/title>/);
    assert.match(html, /<title>proxy write: slow x18, \+5\.000s \.\. \+7\.300s<\/title>/);
    for (const name of ['ok', 'slow', 'read_only', 'starting_up', 'connection_refused', 'connection_lost']) {
      assert.match(html, new RegExp(`<i class="swatch" style="background:#[0-9a-f]{6}"></i>${name}</span>`));
    }
  });

  it('has the summary table with one row per endpoint', () => {
    assert.match(
      html,
      /<td>cluster<\/td><td class="num">6\.100s \(~5\.999, 5\.903-6\.100\)<\/td><td class="num">2\.100s \(~1\.999, 1\.901-2\.100\)<\/td>/,
    );
    assert.match(html, /<td>proxy<\/td><td class="num">2\.398s \(~2\.300, 2\.300-2\.398\)<\/td>/);
  });

  it('draws coverage gaps as "no data", not as outage', () => {
    const lost = analyzeRun({
      ...run,
      endpoints: run.endpoints.map((e) => ({ ...e, intervalMs: 100, dnsIntervalMs: 500 })),
      samples: run.samples.filter(
        (s) => s.endpoint !== 'reader' || s.startMs < T0_MS + 15_000 || s.startMs >= T0_MS + 25_000,
      ),
    });
    const page = renderReportHtml(
      lost,
      run.samples.filter(
        (s) => s.endpoint !== 'reader' || s.startMs < T0_MS + 15_000 || s.startMs >= T0_MS + 25_000,
      ),
    );
    assert.equal((page.match(/<rect class="gap"/g) ?? []).length, 1);
    assert.match(
      page,
      /<title>reader read: no data \+14\.900s \.\. \+25\.000s \(10\.1s, gap\): the prober was not measuring; not counted as downtime<\/title>/,
    );
    assert.match(page, /<li>endpoint `reader`: samples do not cover the run \(read: 1 gap \(10\.1s in all\)/);
    assert.match(page, /coverage gap \(no data\)/);
  });

  it('is self-contained: no URL but the SVG namespace, no script', () => {
    const urls = html.match(/https?:\/\/[^\s"'<>]*/g) ?? [];
    assert.deepEqual([...new Set(urls)], ['http://www.w3.org/2000/svg']);
    assert.doesNotMatch(html, /<script|<link|<img|@import|url\(/i);
  });

  it('stays small with a very large run (downsampled to pixel columns)', () => {
    const samples: Sample[] = [];
    for (let e = 0; e < 6; e++) {
      samples.push(
        ...fixedRateLane({
          endpoint: `e${e}`,
          kind: 'write',
          fromMs: T0_MS - 10_000,
          toMs: T0_MS + 300_000,
          intervalMs: 10,
          outcomeAt: (s) =>
            s > T0_MS + 5000 && s < T0_MS + 9000 ? { class: 'connection_refused' } : { class: 'ok' },
        }),
      );
    }
    assert.equal(samples.length, 186_000);
    const big = analyzeRun({
      ...run,
      endpoints: Array.from({ length: 6 }, (_, e) => ({ name: `e${e}`, probes: ['write' as const] })),
      samples,
      phases: { baselineStartMs: T0_MS - 10_000, triggerMs: T0_MS, observeEndMs: T0_MS + 300_000 },
    });
    const page = renderReportHtml(big, samples);
    assert.ok(page.length < 60_000, `page is ${page.length} bytes`);
    assert.equal(big.endpoints[0]!.write!.downtimeSeconds, 4);
  });
});

describe('laneSegments', () => {
  it('merges dense attempts into bars and lets the worse class win a column', () => {
    const samples = fixedRateLane({
      endpoint: 'e',
      kind: 'write',
      fromMs: 0,
      toMs: 1000,
      intervalMs: 10,
      outcomeAt: (s) => (s >= 500 && s < 600 ? { class: 'read_only' } : { class: 'ok' }),
    });
    const segments = laneSegments(samples, { startMs: 0, endMs: 1000 }, 100);
    assert.deepEqual(
      segments.map((s) => [s.class, s.startColumn, s.endColumn, s.attempts]),
      [
        ['ok', 0, 50, 50],
        ['read_only', 50, 60, 10],
        ['ok', 60, 100, 40],
      ],
    );
  });

  it('keeps sparse attempts as separate ticks', () => {
    const samples = fixedRateLane({
      endpoint: 'e',
      kind: 'dns',
      fromMs: 0,
      toMs: 1000,
      intervalMs: 250,
      outcomeAt: () => ({ class: 'ok' }),
    });
    assert.equal(laneSegments(samples, { startMs: 0, endMs: 1000 }, 100).length, 4);
  });
});

describe('axisTicksSeconds', () => {
  it('picks a nice step and includes T0', () => {
    assert.deepEqual(axisTicksSeconds({ startMs: -5000, endMs: 30_000 }, 0), [-5, 0, 5, 10, 15, 20, 25, 30]);
    assert.deepEqual(axisTicksSeconds({ startMs: -2000, endMs: 3000 }, 0, 6), [-2, -1, 0, 1, 2, 3]);
  });
});

describe('formatSummaryTable', () => {
  it('prints the endpoint table, T0 and the verdict with its reasons', () => {
    const text = formatSummaryTable(results);
    const lines = text.split('\n');
    assert.match(
      lines[0]!,
      /^endpoint \| write downtime +\| read downtime +\| errors by class +\| DNS flip \| role flip \| lost \| verdict$/,
    );
    assert.match(
      text,
      /cluster +\| 6\.100s \(~5\.999, 5\.903-6\.100\) \| 2\.100s \(~1\.999, 1\.901-2\.100\) \| read_only 30, connection_refused 25, starting_up 20, connection_lost 5 \| \+10\.501s \| \+11\.002s +\| 2 +\| Fail/,
    );
    assert.match(
      text,
      /proxy +\| 2\.398s \(~2\.300, 2\.300-2\.398\) \| - +\| slow 18 +\| - +\| \+7\.300s +\| 0 +\| Pass/,
    );
    assert.match(
      text,
      /verdict: FAIL\n {2}- endpoint `cluster`: write downtime 6\.1s exceeds maxWriteDowntime 3s\n/,
    );
    const widths = new Set(lines.slice(2, 5).map((line) => line.indexOf('|')));
    assert.equal(widths.size, 1, 'columns are aligned');
  });
});
