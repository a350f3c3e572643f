// `npm run bench`: accuracy against ground truth (Toxiproxy), efficiency and the operator at
// scale (1,000 FailoverExperiment objects on a real control plane), printed as tables.
// Options:
//   --only accuracy|efficiency|scale|longrun|prober-memory   run one part (longrun and prober-memory
//                                run only when asked: they take minutes to hours)
//   --duration SECONDS           prober-memory: how long the prober runs (default 300)
//   --client driver|wrapper      prober-memory: the client stack (default driver)
//   --interval DURATION          prober-memory: write/read interval (default 10ms; 100ms or more
//                                with the wrapper)
//   --endpoints N                prober-memory: endpoints probed by the one process (a shared
//                                prober pod, spec.probers.sharing Zone; default 1)
//   --compile-cache on|off       prober-memory: load the prober from a warmed compile cache, as
//                                the image does (default on; off: every module is stripped)
//   --minutes N                  longrun: length of the streamed run (default 60)
//   --before-minutes N           longrun: length of the old path's run (default 10; 0: skip it)
//   --cases SUBSTRING            accuracy cases whose label (db/fault/interval/mode/length) contains it
//   --quick                      a small accuracy subset and shorter efficiency runs
//   --json                       also print the raw results as one JSON document at the end
//   --budget N                   accuracy concurrency budget (default 6; fresh 10 ms = 10, run alone)
// Figures outside their targets are reported in the tables; the exit code is non-zero only
// when the benchmark itself could not run.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as pgLab from '../src/lab/postgres.ts';
import { Toxiproxy } from '../test/helpers/toxiproxy.ts';
import {
  type AccuracyCase,
  accuracyHeader,
  allCases,
  caseLabel,
  formatAccuracyTable,
  runAccuracy,
  summarizeAccuracy,
} from './accuracy.ts';
import { formatEfficiency, psqlVersion, runEfficiency } from './efficiency.ts';
import {
  accuracyBeforeAfter,
  efficiencyBeforeAfter,
  LoadSpan,
  proberMemoryBeforeAfter,
} from './issue-15-before.ts';
import { formatLongrun, runLongrun } from './longrun.ts';
import { formatProberMemory, runProberMemory } from './prober-memory.ts';
import { formatScale, runScale } from './scale.ts';
import { type BenchDb, BenchServers, stopOnSignal } from './servers.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    cases: { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    budget: { type: 'string', default: '6' },
    duration: { type: 'string', default: '300' },
    client: { type: 'string', default: 'driver' },
    interval: { type: 'string' },
    endpoints: { type: 'string', default: '1' },
    'compile-cache': { type: 'string', default: 'on' },
    minutes: { type: 'string', default: '60' },
    'before-minutes': { type: 'string' },
  },
});
const PARTS = ['accuracy', 'efficiency', 'scale', 'longrun', 'prober-memory'];
if (values.only && !PARTS.includes(values.only)) {
  console.error('--only must be accuracy, efficiency, scale, longrun or prober-memory');
  process.exit(2);
}
if (values.client !== 'driver' && values.client !== 'wrapper') {
  console.error(`--client must be driver or wrapper, got ${values.client}`);
  process.exit(2);
}
const client = values.client;
const interval = values.interval ?? (client === 'wrapper' ? '100ms' : '10ms');
const durationSeconds = Number(values.duration);
if (!(durationSeconds >= 10)) {
  console.error(`--duration must be a number of seconds >= 10, got ${values.duration}`);
  process.exit(2);
}
const endpoints = Number(values.endpoints);
if (!(Number.isInteger(endpoints) && endpoints >= 1 && endpoints <= 64)) {
  console.error(`--endpoints must be an integer from 1 to 64, got ${values.endpoints}`);
  process.exit(2);
}
if (values['compile-cache'] !== 'on' && values['compile-cache'] !== 'off') {
  console.error(`--compile-cache must be on or off, got ${values['compile-cache']}`);
  process.exit(2);
}
const want = (part: string) => !values.only || values.only === part;
const wantAccuracy = want('accuracy');
const wantEfficiency = want('efficiency');
const wantScale = want('scale');
const wantLongrun = values.only === 'longrun';
const wantProberMemory = values.only === 'prober-memory';

function selectedCases(): AccuracyCase[] {
  let cases = allCases();
  if (values.quick)
    cases = cases.filter((c) => c.injectMs === 1000 && (c.mode === 'fresh' || c.fault === 'refuse'));
  if (values.cases) cases = cases.filter((c) => caseLabel(c).includes(values.cases!));
  return cases;
}

const started = performance.now();
const elapsed = () => ((performance.now() - started) / 1000).toFixed(1);
const log = (line: string) => process.stderr.write(`[bench ${elapsed()} s] ${line}\n`);
const servers = new BenchServers();
let toxiproxy: Toxiproxy | undefined;
const cleanup = async () => {
  await toxiproxy?.stop();
  await servers.stop();
};
stopOnSignal(cleanup);

const report: Record<string, unknown> = {};
let exitCode = 0;
try {
  const dbs: BenchDb[] = ['postgresql', 'mariadb'];
  if (wantAccuracy || wantEfficiency) {
    log(`starting PostgreSQL and MariaDB (load average ${loadavg()[0]!.toFixed(2)})`);
    await servers.start(dbs);
  }
  const targets = { postgresql: servers.target('postgresql'), mariadb: servers.target('mariadb') };

  if (wantAccuracy) {
    toxiproxy = await Toxiproxy.start({ logFile: servers.dir.sub('toxiproxy.log') });
    // BENCH_DEBUG: PostgreSQL logs its logins, printed around each fault's end.
    if (process.env.BENCH_DEBUG) {
      await pgLab.psqlLocal(servers.pg, 'ALTER SYSTEM SET log_connections = on');
      await pgLab.psqlLocal(servers.pg, 'SELECT pg_reload_conf()');
    }
    const cases = selectedCases();
    const accuracyLoad = new LoadSpan();
    log(`accuracy: ${cases.length} cases with Toxiproxy ${toxiproxy.version}`);
    const accuracyStarted = performance.now();
    const { results, failed, serverBound, setupMs } = await runAccuracy({
      toxiproxy,
      targets,
      cases,
      budget: Number(values.budget),
      ...(process.env.BENCH_DEBUG ? { pgLog: join(servers.pg.runDir, 'postgres.log') } : {}),
      onResult: (r) =>
        log(
          `${caseLabel(r.case)}: injected ${(r.injectedMs / 1000).toFixed(3)} s, reference ${r.referenceMs === null ? '-' : (r.referenceMs / 1000).toFixed(3)} s, measured ${r.measuredMs === null ? '-' : (r.measuredMs / 1000).toFixed(3)} s${r.within ? '' : ' OUTSIDE'}${r.withinReference ? '' : ' (vs reference: OUTSIDE)'}`,
        ),
    });
    await toxiproxy.stop();
    const summary = summarizeAccuracy(results, failed);
    const accuracySeconds = (performance.now() - accuracyStarted) / 1000;
    console.log(accuracyHeader(toxiproxy.version));
    console.log('');
    console.log(formatAccuracyTable(results, failed));
    console.log('');
    console.log(
      `${summary.within}/${summary.cases} cases within interval + 10 ms (measured = the point estimate); ` +
        `upper bound alone within: ${summary.upperWithin}/${summary.cases}; ` +
        `injected length within [lower - 10 ms, upper + 10 ms]: ${summary.bracketed}/${summary.cases}; ` +
        `${summary.failed} failed to run; ${accuracySeconds.toFixed(0)} s`,
    );
    for (const line of summary.outside) console.log(`  outside: ${line}`);
    console.log(
      `${summary.withinReference}/${summary.cases} within interval + 10 ms of the reference ` +
        `(a raw-driver client asking SELECT 1 every 2 ms on the same proxy, judged by failwatch's analysis; it saw an outage in ${summary.withReference})`,
    );
    for (const line of summary.offReference) console.log(`  off the reference: ${line}`);
    console.log(
      `${summary.withinReferenceOrCalls}/${summary.cases} within the reference, or with both instruments' edges inside the calls that began and ended the fault ` +
        '(± interval + 10 ms: Toxiproxy changes each live connection within its call, so clients on different connections may see an edge anywhere in it)',
    );
    for (const line of summary.referenceDiffers) console.log(`  reference differs: ${line}`);
    console.log(
      `connection set-up at the server (median of 15, raw driver, no proxy): ${Object.entries(setupMs)
        .map(([db, ms]) => `${db} ${ms!.toFixed(1)} ms`)
        .join(', ')}`,
    );
    console.log(accuracyBeforeAfter(summary, accuracyLoad));
    if (serverBound.length > 0)
      console.log(
        `${serverBound.length} cases not run, server-bound (fresh connections every interval, more often than the server sets one up): ${serverBound.map((b) => caseLabel(b.case)).join(', ')}`,
      );
    console.log('');
    report.accuracy = { results, failed, serverBound, setupMs, summary };
  }

  if (wantEfficiency) {
    log('efficiency: failwatch pooled, fresh, the psql loop, then schedule lag');
    const efficiencyLoad = new LoadSpan();
    const efficiency = await runEfficiency({ targets, dir: servers.dir.path, quick: values.quick });
    console.log(formatEfficiency(efficiency));
    console.log(`  (${psqlVersion()}; Node ${process.version})`);
    console.log(
      efficiencyBeforeAfter(
        { pooledMs: efficiency.pooled.cpuMsPerProbe, floorMs: efficiency.rawDriver.cpuMsPerProbe },
        efficiencyLoad,
      ),
    );
    console.log('');
    report.efficiency = efficiency;
  }

  if (wantScale) {
    log('scale: the operator with 1,000 FailoverExperiment objects on a real control plane');
    const scale = await runScale({ log, rssSampleSeconds: values.quick ? 10 : 20 });
    console.log(formatScale(scale));
    console.log('');
    report.scale = scale;
  }
  if (wantProberMemory) {
    log(
      `prober-memory: failwatch probe (${client}, ${endpoints} endpoints, every ${interval}) for ${durationSeconds} s`,
    );
    const memoryLoad = new LoadSpan();
    const memory = await runProberMemory({
      durationSeconds,
      endpoints,
      client,
      interval,
      compileCache: values['compile-cache'] === 'on',
      everySeconds: Math.min(60, Math.max(10, Math.round(durationSeconds / 30))),
      onPoint: (p) =>
        log(
          `prober RSS ${p.rssMiB.toFixed(1)} MiB, heap ${p.heapUsedMiB.toFixed(1)} MiB, ${p.samples} samples, CPU ${p.cpuPercent.toFixed(1)} %, load ${p.load1.toFixed(2)}`,
        ),
    });
    console.log(formatProberMemory(memory));
    console.log(proberMemoryBeforeAfter(memory, memoryLoad));
    console.log('');
    report.proberMemory = memory;
  }
  if (wantLongrun) {
    log('longrun: the controller following a long 10 ms run of 16 endpoints (real prober HTTP servers)');
    const longrun = await runLongrun({
      log,
      minutes: Number(values.minutes),
      beforeMinutes: Number(values['before-minutes'] ?? (values.quick ? 2 : 10)),
    });
    console.log(formatLongrun(longrun));
    console.log('');
    report.longrun = longrun;
  }
  console.log(`bench finished in ${elapsed()} s (load average now ${loadavg()[0]!.toFixed(2)})`);
  if (values.json) console.log(JSON.stringify(report));
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
