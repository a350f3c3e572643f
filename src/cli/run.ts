// `failwatch run FILE` — one experiment without Kubernetes: live progress, the summary
// table, results.json and the one-page report.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RESULTS_API_VERSION, RESULTS_KIND } from '../analysis/results.ts';
import { loadExperimentFile } from '../api/load-experiment.ts';
import { credentialsFromEnv } from '../engine/endpoint-config.ts';
import { type RunOutcome, runExperiment } from '../engine/run-experiment.ts';
import type { ProbeSample } from '../probe/types.ts';
import { renderReportHtml } from '../report/report-html.ts';
import { formatSummaryTable } from '../report/table.ts';
import { triggerFor } from '../trigger/from-spec.ts';

export const RUN_HELP = `Usage: failwatch run FILE [--output results.json] [--report report.html]

Runs one FailoverExperiment (the same YAML as \`kubectl apply\`) from this machine:
preflight, baseline, trigger, observe until recovery, lost-write audit, analysis.
Passwords come from the environment variables named by credentials.passwordEnv; with
credentials.iam, IAM auth tokens are signed with the AWS SDK's default credentials.

Options:
  --output FILE    write the results document (failwatch.io/results/v1, see docs/results.md)
  --report FILE    write the one-page HTML timeline report
  --quiet          no live progress, only the summary table

Exit codes: 0 verdict Pass, 1 verdict Fail, 2 invalid manifest or options,
            3 the run failed (preflight, baseline, trigger), 130 interrupted.
`;

/** A compact live line per endpoint: state of the last attempt and errors so far. */
class Progress {
  private readonly counts = new Map<string, { attempts: number; errors: number; last: string }>();
  private t0Ms: number | undefined;
  add(s: ProbeSample): void {
    const key = `${s.endpoint}/${s.kind}`;
    const c = this.counts.get(key) ?? { attempts: 0, errors: 0, last: 'ok' };
    c.attempts++;
    if (s.class !== 'ok') c.errors++;
    c.last = s.class;
    this.counts.set(key, c);
  }
  setT0(ms: number): void {
    this.t0Ms = ms;
  }
  line(): string {
    const at = this.t0Ms === undefined ? 'baseline' : `T0+${((Date.now() - this.t0Ms) / 1000).toFixed(1)}s`;
    const parts = [...this.counts.entries()].map(
      ([k, c]) => `${k} ${c.last === 'ok' ? 'up' : `DOWN(${c.last})`} err ${c.errors}`,
    );
    return `[${at}] ${parts.join(' | ')}`;
  }
}

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      report: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) {
    process.stdout.write(RUN_HELP);
    return values.help ? 0 : 2;
  }
  const manifest = await loadExperimentFile(positionals[0]!);
  const quiet = values.quiet === true;
  const say = (line: string) => {
    if (!quiet) process.stderr.write(`${line}\n`);
  };
  const progress = new Progress();
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    say('interrupted: stopping the probes and analyzing what was measured (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const ticker = setInterval(() => say(progress.line()), 2000);
  ticker.unref();
  let outcome: RunOutcome;
  try {
    outcome = await runExperiment({
      manifest,
      trigger: triggerFor(manifest, process.env),
      credentials: (endpoint) => credentialsFromEnv(endpoint, process.env, manifest.spec.target?.region),
      signal: controller.signal,
      hooks: {
        onPhase: (phase, message) => say(`${phase}: ${message}`),
        onSample: (s) => progress.add(s),
        afterTrigger: async (fired) => {
          progress.setT0(fired.t0Ms);
          say(`T0 ${new Date(fired.t0Ms).toISOString()}: ${fired.action}`);
        },
      },
    });
  } finally {
    clearInterval(ticker);
    process.off('SIGINT', onSigint);
  }

  const document = outcome.results
    ? { ...outcome.results, run: runSummary(outcome) }
    : {
        apiVersion: RESULTS_API_VERSION,
        kind: RESULTS_KIND,
        experiment: {
          name: manifest.metadata.name,
          namespace: manifest.metadata.namespace,
          runId: outcome.runId,
        },
        run: runSummary(outcome),
      };
  if (values.output) writeFileSync(values.output, `${JSON.stringify(document, null, 2)}\n`);
  if (values.report && outcome.results)
    writeFileSync(values.report, renderReportHtml(outcome.results, outcome.samples));
  if (outcome.results) process.stdout.write(`${formatSummaryTable(outcome.results)}\n`);
  if (outcome.end === 'Failed') {
    process.stderr.write(`failwatch: run failed (${outcome.reason}): ${outcome.message}\n`);
    return 3;
  }
  if (outcome.end === 'Aborted') return 130;
  return outcome.results?.verdict.result === 'Pass' ? 0 : 1;
}

function runSummary(outcome: RunOutcome) {
  return {
    end: outcome.end,
    reason: outcome.reason ?? null,
    message: outcome.message,
    triggered: outcome.triggered,
  };
}
