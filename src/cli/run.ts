// `failwatch run FILE` — one experiment without Kubernetes: live progress, the summary
// table, results.json and the one-page report.
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { RESULTS_API_VERSION, RESULTS_KIND } from '../analysis/results.ts';
import { parseExperimentManifest } from '../api/load-experiment.ts';
import type { ExperimentManifest } from '../api/validate-experiment.ts';
import { DRY_RUN } from '../engine/dry-run.ts';
import { credentialsFromEnv } from '../engine/endpoint-config.ts';
import { type RunOutcome, runExperiment } from '../engine/run-experiment.ts';
import { renderReportHtml } from '../report/report-html.ts';
import { formatSummaryTable } from '../report/table.ts';
import { triggerFor } from '../trigger/from-spec.ts';
import { runExitCode } from './exit-codes.ts';
import { Progress } from './progress.ts';
import { UsageError } from './usage.ts';

export const RUN_HELP = `Usage: failwatch run FILE [--dry-run] [--output results.json] [--report report.html]

Runs one FailoverExperiment (the same YAML as \`kubectl apply\`) from this machine:
preflight, baseline, trigger, observe until recovery, lost-write audit, analysis.
Passwords come from the environment variables named by credentials.passwordEnv; with
credentials.iam, IAM auth tokens are signed with the AWS SDK's default credentials.

Options:
  --dry-run        everything up to the trigger (credentials, TLS, preflight against the RDS
                   API, baseline), then stop with verdict DryRun; the failover is not called
                   (the same as spec.dryRun: true)
  --output FILE    write the results document (failwatch.io/results/v1, see docs/results.md)
  --report FILE    write the one-page HTML timeline report
  --quiet          no live progress, only the summary table

Exit codes: 0 verdict Pass (or DryRun: healthy up to the trigger), 1 verdict Fail,
            2 invalid manifest, unreadable file or bad options,
            3 the run failed (preflight, baseline, trigger), 4 internal error,
            5 verdict Inconclusive (the data cannot show the SLOs held), 130 interrupted.
`;

/** Reads and validates FILE; a file that cannot be read is a usage error (one line, exit 2). */
async function readManifest(path: string): Promise<ExperimentManifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT'
        ? 'no such file'
        : e.code === 'EACCES'
          ? 'permission denied'
          : e.code === 'EISDIR'
            ? 'is a directory'
            : (e.code ?? e.message);
    throw new UsageError(`cannot read the experiment file ${path}: ${why}`);
  }
  return parseExperimentManifest(text, path);
}

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      report: { type: 'string' },
      'dry-run': { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) {
    process.stdout.write(RUN_HELP);
    return values.help ? 0 : 2;
  }
  const loaded = await readManifest(positionals[0]!);
  const manifest: ExperimentManifest = values['dry-run']
    ? { ...loaded, spec: { ...loaded.spec, dryRun: true } }
    : loaded;
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
        onPhase: (phase, message) => {
          // The last progress line: observation ended, the counts are final.
          if (phase === 'Analyzing') say(progress.line(Date.now(), 'observing ended'));
          say(`${phase}: ${message}`);
        },
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
  if (!outcome.triggered && !progress.empty) say(progress.line(Date.now(), 'probing ended'));
  if (outcome.results) process.stdout.write(`${formatSummaryTable(outcome.results)}\n`);
  if (outcome.end === 'Failed')
    process.stderr.write(`failwatch: run failed (${outcome.reason}): ${outcome.message}\n`);
  if (outcome.end === 'Completed' && outcome.reason === DRY_RUN)
    process.stdout.write(`verdict: ${DRY_RUN.toUpperCase()}\n  ${outcome.message}\n`);
  return runExitCode(outcome);
}

function runSummary(outcome: RunOutcome) {
  return {
    end: outcome.end,
    reason: outcome.reason ?? null,
    message: outcome.message,
    triggered: outcome.triggered,
  };
}
