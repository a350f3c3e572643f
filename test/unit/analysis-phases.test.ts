// Failover phases (src/analysis/phases.ts): an endpoint's outage split by the writer gap the
// topology probe saw and by its own DNS flip, through analyzeRun, the report and the table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeRun, type RunInput } from '../../src/analysis/analyze-run.ts';
import type { Sample } from '../../src/analysis/sample.ts';
import { statusSummary } from '../../src/analysis/status-summary.ts';
import { renderReportHtml } from '../../src/report/report-html.ts';
import { formatSummaryTable } from '../../src/report/table.ts';
import { fixedRateLane, T0_MS } from './analysis-synthetic-run.ts';

const at = (seconds: number) => T0_MS + seconds * 1000;
const OLD_DNS = ['pg-1.lab.local', '127.0.10.11'];
const NEW_DNS = ['pg-2.lab.local', '127.0.10.12'];

/** Writes fail for attempts started in [1.05 s, until) and succeed otherwise. */
function writes(endpoint: string, until: number): Sample[] {
  return fixedRateLane({
    endpoint,
    kind: 'write',
    fromMs: at(-5),
    toMs: at(20),
    intervalMs: 100,
    outcomeAt: (startMs) =>
      startMs >= at(1.05) && startMs < at(until)
        ? { class: 'connection_refused', durationMs: 1 }
        : { class: 'ok', server: startMs < at(1) ? 'pg-1' : 'pg-2' },
  });
}

function dns(endpoint: string): Sample[] {
  return fixedRateLane({
    endpoint,
    kind: 'dns',
    fromMs: at(-5),
    toMs: at(20),
    intervalMs: 100,
    outcomeAt: (startMs) => ({ class: 'ok', dnsAnswer: startMs < at(11.9) ? OLD_DNS : NEW_DNS }),
  });
}

/** The cluster reports no writer for attempts started in [1.0 s, 5.0 s), then pg-2. */
function topology(endpoint: string, opts: { missing?: [number, number]; neverFound?: boolean } = {}) {
  return fixedRateLane({
    endpoint,
    kind: 'topology',
    fromMs: at(-5),
    toMs: at(20),
    intervalMs: 100,
    outcomeAt: (startMs) => {
      if (startMs < at(1)) return { class: 'ok', server: 'pg-1' };
      if (startMs < at(5) || opts.neverFound) return { class: 'read_only', code: 'NO_WRITER' };
      return { class: 'ok', server: 'pg-2' };
    },
  }).filter((s) => !opts.missing || s.startMs < at(opts.missing[0]) || s.startMs >= at(opts.missing[1]));
}

function run(samples: Sample[], topologyOn: string[] = ['cluster']): RunInput {
  const lane = (name: string, probes: RunInput['endpoints'][number]['probes']) => ({
    name,
    probes: topologyOn.includes(name) ? [...probes, 'topology' as const] : probes,
    intervalMs: 100,
    dnsIntervalMs: 100,
    topologyIntervalMs: 100,
  });
  return {
    experiment: { name: 'phases', runId: 'r1' },
    phases: { baselineStartMs: at(-5), triggerMs: T0_MS, observeEndMs: at(20) },
    trigger: { type: 'aws-rds', action: 'failover-db-cluster', events: [] },
    endpoints: [
      lane('cluster', ['write', 'dns']),
      lane('wrapper', ['write', 'dns']),
      lane('proxy', ['write']),
    ],
    samples,
  };
}

const base = () => [
  ...writes('cluster', 12),
  ...dns('cluster'),
  ...writes('wrapper', 5.2),
  ...dns('wrapper'),
  ...writes('proxy', 5.5),
];

describe('failover phases', () => {
  const results = analyzeRun(run([...base(), ...topology('cluster')]));
  const endpoint = (name: string) => results.endpoints.find((e) => e.name === name)!;

  it("the topology lane's outage window is the time the cluster had no writer", () => {
    const cluster = endpoint('cluster');
    assert.equal(cluster.topology!.windows.length, 1);
    assert.equal(cluster.topology!.windows[0]!.start.seconds, 0.902); // end of the last attempt that found pg-1
    assert.equal(cluster.topology!.windows[0]!.end!.seconds, 5.002);
    assert.deepEqual(cluster.topology!.errors, { read_only: 40 });
    assert.deepEqual(
      [cluster.writerFlip!.seconds, cluster.writerFlip!.fromServer, cluster.writerFlip!.toServer],
      [5.002, 'pg-1', 'pg-2'],
    );
    // The clients' errors leave the database's answers out.
    assert.deepEqual(cluster.errors, { connection_refused: 109 });
  });

  it('splits a DNS-following client into detection, promotion, DNS and recovery', () => {
    const p = endpoint('cluster').phases!;
    assert.deepEqual([p.window.start.seconds, p.window.end.seconds], [1.002, 12.002]);
    assert.equal(p.topologyFrom, 'cluster');
    assert.equal(p.kind, 'write');
    assert.deepEqual(
      [p.detectionSeconds, p.promotionSeconds, p.dnsSeconds, p.recoverySeconds],
      [0, 4, 6.9, 0.1],
    );
    assert.equal(p.dnsFlip!.seconds, 11.902);
    assert.deepEqual([p.writerBefore, p.writerAfter], ['pg-1', 'pg-2']);
  });

  it('gives no DNS phase to a client that recovered before DNS moved, nor to one without a dns probe', () => {
    const w = endpoint('wrapper').phases!;
    assert.equal(w.topologyFrom, 'cluster');
    assert.deepEqual(
      [w.detectionSeconds, w.promotionSeconds, w.dnsSeconds, w.recoverySeconds],
      [0, 4, null, 0.2],
    );
    const p = endpoint('proxy').phases!;
    assert.deepEqual(
      [p.detectionSeconds, p.promotionSeconds, p.dnsSeconds, p.recoverySeconds],
      [0, 4, null, 0.5],
    );
  });

  it('counts a DNS flip seen up to one dns interval after the recovery', () => {
    // Recovered at 11.902 (first good start 11.9): the flip seen at 11.902 came with it.
    const r = analyzeRun(
      run([
        ...writes('cluster', 11.9),
        ...dns('cluster'),
        ...writes('wrapper', 5.2),
        ...dns('wrapper'),
        ...topology('cluster'),
      ]),
    );
    const p = r.endpoints.find((e) => e.name === 'cluster')!.phases!;
    assert.deepEqual([p.promotionSeconds, p.dnsSeconds, p.recoverySeconds], [4, 6.9, 0]);
  });

  it('adds up to the outage window, whatever the order of events', () => {
    for (const e of results.endpoints) {
      const p = e.phases!;
      const sum = p.detectionSeconds + p.promotionSeconds + (p.dnsSeconds ?? 0) + p.recoverySeconds;
      assert.ok(Math.abs(sum - (p.window.end.seconds - p.window.start.seconds)) < 0.0015, e.name);
    }
  });

  it('says nothing for an outage that does not overlap the writer gap, or two that do', () => {
    /** The proxy's phases when its writes fail while `down(startMs)`, beside the cluster's failover. */
    const proxyPhases = (down: (startMs: number) => boolean) => {
      const proxy = fixedRateLane({
        endpoint: 'proxy',
        kind: 'write',
        fromMs: at(-5),
        toMs: at(20),
        intervalMs: 100,
        outcomeAt: (startMs) =>
          down(startMs) ? { class: 'connection_refused' } : { class: 'ok', server: 'pg-2' },
      });
      const r = analyzeRun(
        run([...writes('cluster', 12), ...dns('cluster'), ...proxy, ...topology('cluster')]),
      );
      return r.endpoints.find((e) => e.name === 'proxy')!.phases;
    };
    // An outage (8-9 s) after the writer was found (5 s), as a reader restarting later.
    assert.equal(
      proxyPhases((t) => t >= at(8) && t < at(9)),
      null,
    );
    // Two outages inside the gap (1.1-2 s and 3-4 s): which one is the failover's?
    assert.equal(
      proxyPhases((t) => (t >= at(1.1) && t < at(2)) || (t >= at(3) && t < at(4))),
      null,
    );
    // One outage inside the gap: split.
    assert.ok(proxyPhases((t) => t >= at(1.1) && t < at(2)));
  });

  it('says nothing when the topology saw two no-writer windows, or a new writer without any', () => {
    const blip = topology('cluster').map((s) =>
      s.startMs >= at(-3) && s.startMs < at(-2.5) ? { ...s, class: 'connect_timeout' as const } : s,
    );
    // A blip before T0 does not count (the window must end after T0); one after it does.
    const before = analyzeRun(run([...base(), ...blip]));
    assert.ok(before.endpoints.find((e) => e.name === 'cluster')!.phases);
    const afterT0 = topology('cluster').map((s) =>
      s.startMs >= at(10) && s.startMs < at(10.5) ? { ...s, class: 'connect_timeout' as const } : s,
    );
    const blipAfter = analyzeRun(run([...base(), ...afterT0]));
    assert.ok(blipAfter.endpoints.every((e) => e.phases === null));
    // The writer changed between two attempts: no window, so no promotion figure at all.
    const instant = fixedRateLane({
      endpoint: 'cluster',
      kind: 'topology',
      fromMs: at(-5),
      toMs: at(20),
      intervalMs: 100,
      outcomeAt: (startMs) => ({ class: 'ok', server: startMs < at(3) ? 'pg-1' : 'pg-2' }),
    });
    const flipOnly = analyzeRun(run([...base(), ...instant]));
    assert.ok(flipOnly.endpoints.find((e) => e.name === 'cluster')!.writerFlip);
    assert.ok(flipOnly.endpoints.every((e) => e.phases === null));
  });

  it('says nothing rather than something wrong: a gap in the topology lane, or no writer found', () => {
    const gap = analyzeRun(run([...base(), ...topology('cluster', { missing: [3, 6] })]));
    assert.ok(gap.endpoints.every((e) => e.phases === null));
    const never = analyzeRun(run([...base(), ...topology('cluster', { neverFound: true })]));
    assert.ok(never.endpoints.every((e) => e.phases === null));
    const none = analyzeRun(run(base(), []));
    assert.ok(none.endpoints.every((e) => e.phases === undefined && e.topology === undefined));
  });

  it('puts the phases into the status summary (no dns field where the endpoint did not wait for DNS)', () => {
    const status = statusSummary(results);
    const of = (name: string) => status.endpoints!.find((e) => e.name === name)!.phases;
    assert.deepEqual(of('cluster'), {
      detectionSeconds: 0,
      promotionSeconds: 4,
      dnsSeconds: 6.9,
      recoverySeconds: 0.1,
      dnsWait: 'waited',
    });
    assert.deepEqual(of('wrapper'), {
      detectionSeconds: 0,
      promotionSeconds: 4,
      recoverySeconds: 0.2,
      dnsWait: 'not-waited',
    });
    assert.equal(of('proxy')!.dnsWait, 'not-probed');
  });

  it('shows the phases in the terminal table and as a bar in the report', () => {
    const table = formatSummaryTable(results);
    assert.match(table, /cluster: detection 0, promotion 4, dns 6\.9, recovery 0\.1/);
    assert.match(table, /wrapper: detection 0, promotion 4, dns -, recovery 0\.2/);
    const html = renderReportHtml(results, [...base(), ...topology('cluster')]);
    assert.match(html, /<h2>Failover phases<\/h2>/);
    // One bar per endpoint: cluster has four segments (detection is 0 s: not drawn), 3 each others.
    const bars = html.split('<h2>Failover phases</h2>')[1]!.split('<h2>')[0]!;
    assert.equal((bars.match(/<rect /g) ?? []).length, 3 + 2 + 2);
    assert.match(bars, /cluster: dns 6\.9s \(\+5\.002s \.\. \+11\.902s\)/);
    assert.match(bars, /pg-1 -&gt; pg-2, no writer \+0\.902s \.\. \+5\.002s \(topology of cluster\)/);
  });
});
