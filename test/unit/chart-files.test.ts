// The chart's files that need no Helm: its CRDs are the generated ones, its dashboard asks
// only for metrics failwatch exposes, and the image's Node is the one the tests run on.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8');

/** Every metric name the code defines (`name: 'failwatch_...'` in src/server/metrics.ts). */
function definedMetrics(): Set<string> {
  const names = [...read('src/server/metrics.ts').matchAll(/name: '(failwatch_[a-z_]+)'/g)].map((m) => m[1]!);
  return new Set(names);
}

/** The PromQL of every panel target and annotation of the dashboard. */
function dashboardQueries(): Array<{ where: string; expr: string }> {
  const dash = JSON.parse(read('charts/failwatch/dashboards/failwatch.json'));
  const queries: Array<{ where: string; expr: string }> = [];
  for (const panel of dash.panels)
    for (const t of panel.targets ?? []) queries.push({ where: `panel "${panel.title}"`, expr: t.expr });
  for (const a of dash.annotations.list)
    if (a.expr) queries.push({ where: `annotation "${a.name}"`, expr: a.expr });
  for (const v of dash.templating.list)
    if (v.type === 'query') queries.push({ where: `variable $${v.name}`, expr: v.query.query });
  return queries;
}

describe('chart files', () => {
  it('ships exactly the generated CRDs of crds/ in charts/failwatch/crds/', () => {
    const top = readdirSync(`${ROOT}crds`).sort();
    const chart = readdirSync(`${ROOT}charts/failwatch/crds`).sort();
    assert.deepEqual(chart, top, 'sync them: cp crds/*.yaml charts/failwatch/crds/ (and delete stale ones)');
    for (const file of top)
      assert.equal(
        read(`charts/failwatch/crds/${file}`),
        read(`crds/${file}`),
        `charts/failwatch/crds/${file} differs from crds/${file}: cp crds/*.yaml charts/failwatch/crds/`,
      );
  });

  it('has a dashboard whose queries use only metrics defined in src/server/metrics.ts', () => {
    const defined = definedMetrics();
    assert.ok(defined.size >= 14, `found ${defined.size} metric definitions`);
    const queries = dashboardQueries();
    assert.ok(queries.length >= 20, `${queries.length} queries`);
    const unknown: string[] = [];
    const used = new Set<string>();
    for (const { where, expr } of queries)
      for (const [name] of expr.matchAll(/failwatch_[a-z_]+/g)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        if (defined.has(name) || defined.has(base)) used.add(defined.has(name) ? name : base);
        else unknown.push(`${where}: ${name}`);
      }
    assert.deepEqual(unknown, []);
    // Every metric has a panel, except none: a new metric should get one.
    assert.deepEqual(
      [...defined].filter((m) => !used.has(m)),
      [],
    );
  });

  it('has the panels, variables and Grafana sidecar label the install docs promise', () => {
    const dash = JSON.parse(read('charts/failwatch/dashboards/failwatch.json'));
    const titles = dash.panels.filter((p: any) => p.type !== 'row').map((p: any) => p.title);
    for (const t of [
      'Probe success rate',
      'Attempt latency p50 / p99',
      'Attempts by error class',
      'Last downtime per endpoint',
      'Downtime history across runs',
      'Verdicts',
    ])
      assert.ok(titles.includes(t), `panel ${t} in ${titles.join(', ')}`);
    assert.deepEqual(
      dash.templating.list.map((v: any) => v.name),
      ['datasource', 'namespace', 'experiment', 'endpoint'],
    );
    const ids = dash.panels.map((p: any) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    assert.match(read('charts/failwatch/values.yaml'), /grafana_dashboard: "1"/);
  });

  it("lets failwatch's own namespace and endpoint labels win in both monitors (honorLabels)", () => {
    for (const file of ['podmonitor.yaml', 'servicemonitor.yaml']) {
      const text = read(`charts/failwatch/templates/${file}`);
      const endpoints = text.split('\n').filter((line) => /^\s+- port: /.test(line)).length;
      assert.equal(endpoints, 1, `${file}: one scrape endpoint`);
      assert.match(text, /^\s+honorLabels: true$/m, `${file}: honorLabels: true`);
    }
  });

  it('builds the image on the Node version the tests run on', () => {
    const pinned = JSON.parse(read('package.json')).devDependencies.node;
    const base = /^ARG NODE_IMAGE=node:([0-9.]+)-bookworm-slim$/m.exec(read('Dockerfile'));
    assert.ok(base, 'Dockerfile pins ARG NODE_IMAGE=node:<version>-bookworm-slim');
    assert.equal(base[1], pinned);
    assert.match(read('Dockerfile'), /^USER 65532:65532$/m);
    assert.match(read('Dockerfile'), /^ENTRYPOINT \["node", "\/app\/src\/cli\/main.ts"\]$/m);
  });
});
