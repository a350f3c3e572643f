// What a user hits on the command line: each exit code means one thing (0 Pass, 1 Fail,
// 2 invalid manifest or usage, 3 the run failed, 4 internal error), a bad file or option is
// one line and never a stack trace, `--dry-run` stops before the trigger (the lab's ground
// truth shows no failover), and the live progress line counts like the final table.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { Results } from '../../src/analysis/results.ts';
import { parseDurationMs } from '../../src/api/duration.ts';
import { formatErrorCounts } from '../../src/report/format.ts';
import { failwatch } from '../helpers/cli.ts';
import { labManifest, startTestLab, type TestLab } from '../helpers/lab.ts';

const ENV = { FAILWATCH_LAB_PASSWORD: 'failwatch-lab' };
const tmp = mkdtempSync(join(tmpdir(), 'fw-cli-codes-'));
const brokenKubeconfig = join(tmp, 'broken.kubeconfig');
writeFileSync(brokenKubeconfig, 'apiVersion: v1\nkind: Config\nclusters: []\n');

/** One line on stderr, starting `failwatch: `, no stack frames. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /^failwatch: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

describe('failwatch usage errors: exit 2, one line', { timeout: 120_000 }, () => {
  const cases: [string, string[], RegExp][] = [
    [
      'a missing manifest file',
      ['run', join(tmp, 'missing.yaml')],
      /cannot read the experiment file .*missing\.yaml: no such file$/,
    ],
    ['a directory as manifest', ['run', tmp], /cannot read the experiment file .*: is a directory$/],
    [
      'a non-numeric --concurrency',
      ['operator', '--concurrency', 'abc'],
      /--concurrency must be an integer from 1 to 256 \(got "abc"\)/,
    ],
    [
      '--concurrency 0',
      ['operator', '--concurrency', '0'],
      /--concurrency must be an integer from 1 to 256 \(got "0"\)/,
    ],
    [
      'an unknown --controllers',
      ['operator', '--controllers', 'experiment'],
      /--controllers: unknown value "experiment"/,
    ],
    [
      'a bad --metrics-listen',
      ['operator', '--metrics-listen', '8080'],
      /--metrics-listen: listen address must be host:port/,
    ],
    ['a missing --kubeconfig', ['operator', '--kubeconfig', join(tmp, 'nope')], /--kubeconfig: no such file/],
    [
      'a kubeconfig without a cluster',
      ['operator', '--kubeconfig', brokenKubeconfig],
      /cannot load the kubeconfig: No active cluster!/,
    ],
    [
      'a non-numeric lab --readers',
      ['lab', 'up', '--readers', 'two'],
      /--readers must be an integer from 1 to 5 \(got "two"\)/,
    ],
    [
      'a lab --dns-port out of range',
      ['lab', 'up', '--dns-port', '70000'],
      /--dns-port must be an integer from 1 to 65535/,
    ],
    ['an unknown option', ['run', 'x.yaml', '--dryrun'], /Unknown option '--dryrun'/],
    ['an unknown command', ['rn'], /unknown command "rn"/],
  ];
  for (const [what, args, message] of cases)
    it(`${what}: exit 2`, async () => {
      const r = await failwatch(args);
      assert.equal(r.code, 2, r.stderr);
      assertOneLine(r.stderr, message);
    });

  it('an invalid manifest: exit 2, every bad field by path', async () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(
      file,
      'apiVersion: failwatch.io/v1alpha1\nkind: FailoverExperiment\nmetadata: { name: x }\nspec: { dryRun: yes-please }\n',
    );
    const r = await failwatch(['run', file]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /spec\.dryRun: /);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});

describe('failwatch run with the lab down: exit 3 and what to do', { timeout: 120_000 }, () => {
  // The lab example as written, but a lab that is not there: an unused DNS port, a missing CA.
  const labDir = join(tmp, 'no-lab');
  const downManifest = (name: string, edit: (t: string) => string) => {
    const file = join(tmp, `${name}.yaml`);
    const text = readFileSync(new URL('../../examples/lab-aurora-postgresql.yaml', import.meta.url), 'utf8');
    writeFileSync(file, edit(text.replaceAll('/tmp/failwatch-lab/', `${labDir}/`)));
    return file;
  };

  it('a DNS server that refuses (nothing on dns.server): EndpointNotResolvable, names the server, says `failwatch lab up`', async () => {
    const file = downManifest('dns-down', (t) =>
      t.replaceAll('127.0.0.1:10053', '127.0.0.1:12999').replace(/caFile: [^ }]+/g, `caFile: ${tmp}/ca.crt`),
    );
    writeFileSync(join(tmp, 'ca.crt'), 'never parsed: the name does not resolve first\n');
    const r = await failwatch(['run', file], ENV, 60_000);
    assert.equal(r.code, 3, r.stderr);
    const line = r.stderr.trimEnd().split('\n').at(-1)!;
    assert.equal(
      line,
      "failwatch: run failed (EndpointNotResolvable): endpoint `cluster`: probe setup failed (dns_error): resolving lab-pg.cluster-cfwlab0.lab.failwatch.local: the DNS server 127.0.0.1:12999 (dns.server) refused the query: nothing answers DNS there. Is that server running (the lab's: `failwatch lab up`) and is dns.server its address and port?",
    );
    assert.doesNotMatch(r.stderr, /queryA|\n\s+at /);
  });

  it('a missing tls.caFile (the lab CA of a lab that is down): TlsFailed, exit 3, not an internal error', async () => {
    const r = await failwatch(['run', downManifest('ca-missing', (t) => t)], ENV, 60_000);
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      /failwatch: run failed \(TlsFailed\): endpoint `cluster`: cannot read CA bundle \S+\/no-lab\/tls\/ca\.crt \(tls\.caFile\): no such file \(the lab's CA exists only while the lab is up: `failwatch lab up`/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});

describe('failwatch run on the lab: exit codes 0, 1, 3 and the dry run', { timeout: 600_000 }, () => {
  let lab: TestLab;
  before(async () => {
    lab = await startTestLab({ base: '127.0.94', dnsPort: 12553, apiPort: 12580 });
  });
  after(async () => {
    await lab?.down();
  });

  const failovers = () => lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length;
  const waitIdle = async () => {
    for (let i = 0; i < 600; i++) {
      const st = lab.state();
      const last = st.groundTruth.at(-1)?.step;
      if (st.clusters.every((c) => c.status === 'available') && (!last || last === 'failover-completed'))
        return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('lab did not become idle');
  };
  const manifest = (name: string, edit: (t: string) => string = (t) => t) => {
    const file = join(tmp, `${name}.yaml`);
    writeFileSync(file, labManifest(lab, edit));
    return file;
  };
  const results = (file: string) =>
    JSON.parse(readFileSync(file, 'utf8')) as Results & {
      run: { end: string; reason: string | null; message: string; triggered: boolean };
    };

  it('--dry-run: preflight and a healthy baseline, verdict DryRun, exit 0, no failover', async () => {
    const writerBefore = lab.state().clusters[0]!.writerId;
    const output = join(tmp, 'dry.json');
    const file = manifest('dry');
    const r = await failwatch(['run', file, '--dry-run', '--output', output], ENV);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^verdict: DRYRUN\n {2}dry run: the baseline was healthy \((\S+ \d+\/\d+ good, )+\S+ \d+\/\d+ good\); the failover was not called\n$/,
    );
    assert.match(r.stderr, /^Preflight: /m);
    assert.match(r.stderr, /^Baseline: probing for 3s/m);
    assert.doesNotMatch(r.stderr, /^(Triggering|Observing|T0 )/m);
    // The last progress line is printed when probing ends; every lane up.
    const last = r.stderr.split('\n').filter((l) => l.startsWith('[baseline, probing ended]'));
    assert.equal(last.length, 1, r.stderr);
    assert.match(last[0]!, /cluster\/write up: none/);
    const doc = results(output);
    assert.deepEqual(
      { end: doc.run.end, reason: doc.run.reason, triggered: doc.run.triggered },
      { end: 'Completed', reason: 'DryRun', triggered: false },
    );
    // 3 s of baseline: about 3 s / interval attempts per lane (30 at 100 ms, 10 at 300 ms), all good.
    const intervals = new Map<string, number>(
      (parse(readFileSync(file, 'utf8')) as any).spec.endpoints.map((e: any) => [
        e.name,
        parseDurationMs(e.interval),
      ]),
    );
    for (const [, endpoint, good, attempts] of doc.run.message.matchAll(
      /([\w-]+)\/(?!dns)\w+ (\d+)\/(\d+) good/g,
    )) {
      assert.equal(good, attempts, endpoint);
      const expected = 3000 / intervals.get(endpoint!)!;
      assert.ok(
        Number(attempts) >= expected * 0.66 && Number(attempts) <= expected * 1.2,
        `${endpoint}: ${attempts} attempts, about ${expected} expected`,
      );
    }
    // cluster write/read/dns, cluster-pooled write, reader read/dns, proxy write/read.
    assert.equal([...doc.run.message.matchAll(/ good/g)].length, 8, doc.run.message);
    assert.equal(failovers(), 0, 'the ground truth shows no failover');
    assert.equal(lab.state().clusters[0]!.writerId, writerBefore);
  });

  it('spec.dryRun: true in the manifest does the same', async () => {
    const file = manifest('dry-spec', (t) => t.replace('spec:\n', 'spec:\n  dryRun: true\n'));
    const r = await failwatch(['run', file, '--quiet'], ENV);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^verdict: DRYRUN$/m);
    assert.equal(failovers(), 0);
  });

  it('--dry-run with a wrong password: the run failed, exit 3, no failover', async () => {
    const r = await failwatch(['run', manifest('dry-badpw'), '--dry-run', '--quiet'], {
      FAILWATCH_LAB_PASSWORD: 'wrong',
    });
    assert.equal(r.code, 3, r.stderr);
    assertOneLine(r.stderr, /run failed \(AuthenticationFailed\)/);
    assert.equal(failovers(), 0);
  });

  it('a failover within the SLOs: verdict Pass, exit 0; the last progress line counts as the table', async () => {
    const output = join(tmp, 'pass.json');
    const r = await failwatch(['run', manifest('pass'), '--output', output], ENV);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^verdict: PASS$/m);
    assert.equal(failovers(), 1);
    const doc = results(output);
    // The line printed when observing ends, with each lane's counts as in results.json.
    const lines = r.stderr.split('\n');
    const endLine = lines.findIndex((l) => /^\[T0\+\d+\.\ds, observing ended\] /.test(l));
    assert.ok(endLine > 0, r.stderr);
    assert.match(lines[endLine + 1]!, /^Analyzing: /);
    const lanes = new Map(
      lines[endLine]!.replace(/^\[[^\]]*\] /, '')
        .split(' | ')
        .map((part) => {
          const m = /^(\S+) (?:up|SLOW|DOWN\(\w+\)): (.*)$/.exec(part);
          assert.ok(m, part);
          return [m[1]!, m[2]!] as const;
        }),
    );
    let compared = 0;
    for (const e of doc.endpoints)
      for (const kind of ['write', 'read'] as const) {
        const k = e[kind];
        if (!k) continue;
        assert.equal(lanes.get(`${e.name}/${kind}`), formatErrorCounts(k.errors), `${e.name}/${kind}`);
        compared++;
      }
    assert.equal(compared, 6);
    // The proxy stalls: its attempts are slow, counted apart from errors.
    assert.match(lanes.get('proxy/write') ?? '', /^slow \d+$/);
    await waitIdle();
  });

  it('a failover that misses an SLO: verdict Fail, exit 1', async () => {
    const file = manifest('fail', (t) => t.replace('maxWriteDowntime: 30s', 'maxWriteDowntime: 10ms'));
    const r = await failwatch(['run', file, '--quiet'], ENV);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^verdict: FAIL$/m);
    assert.equal(failovers(), 2);
    await waitIdle();
  });
});
