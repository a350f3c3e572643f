// `kubectl logs` and `kubectl port-forward` for the test node agent, which has no kubelet API
// (test/k8s/README.md): the same command lines as on a real cluster, answered from what the node
// agent has (container log files, pods on loopback addresses). Everything else is the real kubectl.
// Used by the documented-commands suites through a `kubectl` wrapper first on PATH
// (writeKubectlShim); the environment names the real kubectl and the node's pod log directory.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);

/** A directory with a `kubectl` that sends `logs` and `port-forward` here; put it first on PATH. */
export function writeKubectlShim(realKubectl: string, podLogDir: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'fw-kubectl-shim-'));
  const script = [
    '#!/usr/bin/env bash',
    `export FW_REAL_KUBECTL=${realKubectl} FW_POD_LOG_DIR=${podLogDir}`,
    'for a in "$@"; do',
    `  case "$a" in logs|port-forward) exec ${process.execPath} ${SELF} "$@";; esac`,
    'done',
    `exec ${realKubectl} "$@"`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'kubectl'), script);
  chmodSync(join(dir, 'kubectl'), 0o755);
  return dir;
}

export interface Args {
  verb: string;
  namespace: string;
  words: string[];
  container?: string;
  passThrough: string[];
}

export function parseArgs(argv: string[]): Args {
  const out: Args = { verb: '', namespace: 'default', words: [], passThrough: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-n' || a === '--namespace') out.namespace = argv[++i]!;
    else if (a.startsWith('--namespace=')) out.namespace = a.slice('--namespace='.length);
    else if (a === '-c' || a === '--container') out.container = argv[++i]!;
    else if (a === '--kubeconfig' || a === '--context') out.passThrough.push(a, argv[++i]!);
    else if (a.startsWith('-')) continue;
    else if (!out.verb) out.verb = a;
    else out.words.push(a);
  }
  return out;
}

function get(args: Args, what: string[]): any {
  const r = spawnSync(
    process.env.FW_REAL_KUBECTL!,
    [...args.passThrough, '-n', args.namespace, 'get', ...what, '-o', 'json'],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    process.exit(1);
  }
  return JSON.parse(r.stdout);
}

/** The running pod behind deploy/X, svc/X, pod/X or X, as kubectl picks one. */
function podFor(args: Args, target: string): any {
  const [kind, name] = target.includes('/') ? target.split('/', 2) : ['pod', target];
  if (kind === 'pod' || kind === 'pods') return get(args, ['pod', name!]);
  const owner = get(args, [kind!, name!]);
  const labels: Record<string, string> =
    kind!.startsWith('svc') || kind!.startsWith('service')
      ? owner.spec.selector
      : owner.spec.selector.matchLabels;
  const selector = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const pods = get(args, ['pods', '-l', selector]).items.filter((p: any) => p.status?.phase === 'Running');
  if (pods.length === 0) {
    process.stderr.write(`error: no running pod for ${target}\n`);
    process.exit(1);
  }
  return pods[0];
}

function logs(args: Args): void {
  const pod = podFor(args, args.words[0]!);
  const container = args.container ?? pod.spec.containers[0].name;
  const file = join(
    process.env.FW_POD_LOG_DIR!,
    `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}`,
    `${container}.log`,
  );
  process.stdout.write(readFileSync(file));
}

function portForward(args: Args): void {
  const [target, ports] = args.words as [string, string];
  const [local, remote = local] = ports.split(':') as [string, string?];
  const pod = podFor(args, target);
  let podPort = Number(remote);
  if (target.startsWith('svc/') || target.startsWith('service/')) {
    const svc = get(args, ['service', target.split('/')[1]!]);
    const port = svc.spec.ports.find((p: any) => p.port === Number(remote));
    const targetPort = port?.targetPort ?? remote;
    podPort =
      typeof targetPort === 'number'
        ? targetPort
        : pod.spec.containers.flatMap((c: any) => c.ports ?? []).find((p: any) => p.name === targetPort)
            ?.containerPort;
  }
  const server = createServer((client) => {
    const upstream = connect(podPort, pod.status.podIP);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  server.listen(Number(local), '127.0.0.1', () => {
    process.stdout.write(`Forwarding from 127.0.0.1:${local} -> ${podPort}\n`);
  });
}

if (process.argv[1] === SELF) {
  const args = parseArgs(process.argv.slice(2));
  if (args.verb === 'logs') logs(args);
  else if (args.verb === 'port-forward') portForward(args);
}
