// The `failwatch` command: one entry point, a subcommand per job. Each command is imported
// only when it runs: a prober pod (`probe`) never loads the operator's Kubernetes client or
// the lab's AWS SDK, about 60 MiB of RSS it would carry for nothing.
import { fileURLToPath } from 'node:url';
import { ExperimentValidationError } from '../api/field-errors.ts';
import { LabError } from '../lab/exec.ts';
import { EXIT } from './exit-codes.ts';
import { UsageError } from './usage.ts';

const HELP = `Usage: failwatch <command> [options]

Measures how long a database is really unavailable during a failover, per endpoint.

Commands:
  run        run one FailoverExperiment from this machine (no Kubernetes needed)
  lab        the local Aurora-like lab (up, status, failover, down)
  operator   the Kubernetes controller (FailoverExperiment, FailoverSchedule)
  probe      a prober pod's process (started by the operator; configured by environment)
  help       this text

Run \`failwatch <command> --help\` for a command's options.

Exit codes: 0 verdict Pass (or DryRun), 1 verdict Fail, 2 invalid manifest or usage,
            3 the run failed, 4 internal error, 5 verdict Inconclusive, 130 interrupted.
`;

const mainScript = fileURLToPath(import.meta.url);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return (await import('./run.ts')).runCommand(rest);
    case 'lab':
      return (await import('./lab.ts')).labCommand(rest, mainScript);
    case 'operator':
      return (await import('./operator.ts')).operatorCommand(rest);
    case 'probe':
      return (await import('./probe.ts')).probeCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return command === undefined ? EXIT.usage : EXIT.pass;
    default:
      throw new UsageError(`unknown command "${command}"; run \`failwatch --help\``);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code < 0) return;
    process.exitCode = code;
    // A finished command ends here even when a library keeps a timer or a socket (the AWS
    // Advanced NodeJS Wrapper's monitors): it had a second to let go of them.
    setTimeout(() => process.exit(), 1000).unref();
  },
  (err: unknown) => {
    const e = err as Error & { code?: string };
    if (err instanceof ExperimentValidationError) {
      process.stderr.write(`failwatch: ${e.message}\n`);
      process.exitCode = EXIT.usage;
    } else if (err instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`failwatch: ${e.message}\n`);
      process.exitCode = EXIT.usage;
    } else if (err instanceof LabError) {
      process.stderr.write(`failwatch: ${e.message}\n`);
      process.exitCode = EXIT.runFailed;
    } else {
      process.stderr.write(`failwatch: internal error (please report it): ${e.stack ?? e.message}\n`);
      process.exitCode = EXIT.internal;
    }
    setTimeout(() => process.exit(), 1000).unref();
  },
);
