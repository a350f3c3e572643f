// A real Kubernetes control plane for tests and development: etcd, kube-apiserver (RBAC,
// ServiceAccount tokens), kube-controller-manager (garbage collector, namespace and
// serviceaccount controllers) and the failwatch test node agent, all on loopback, built from
// the Kubernetes Go modules by test/k8s/build.sh. See test/k8s/README.md.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';

const K8S_DIR = fileURLToPath(new URL('../k8s/', import.meta.url));
const BIN = join(K8S_DIR, 'bin');
const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/** The checkout: the image's /app (Dockerfile WORKDIR with src/, bin/, node_modules/). */
const CHECKOUT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');

/** The kube-controller-manager controllers the dev cluster runs (the chart's Deployment needs the last two). */
export const DEV_CLUSTER_CONTROLLERS = [
  'garbagecollector',
  'namespace',
  'serviceaccount',
  'deployment',
  'replicaset',
];

export interface ControlPlaneOptions {
  /** State directory (etcd data, certificates, logs); a new temporary one by default. */
  dir?: string;
  /** Keep `dir` on stop() (always kept when it was given). */
  keepDir?: boolean;
  /** Ports on 127.0.0.1; free ones by default. */
  apiserverPort?: number;
  etcdClientPort?: number;
  etcdPeerPort?: number;
  /** kube-controller-manager --controllers. */
  controllers?: string[];
  /** Run the node agent (default true). */
  nodeAgent?: boolean;
  nodeName?: string;
  /**
   * Nodes the agent registers instead of the one `nodeName` (its --nodes): names, labels (e.g.
   * topology.kubernetes.io/zone) and taints. It binds each pod to a node the pod fits
   * (nodeSelector, required node affinity, tolerations), as kube-scheduler's filters would.
   */
  nodes?: AgentNode[];
  /**
   * Loopback range the node agent takes pod IPs from (default 127.0.32.0/19). Suites that may
   * run at the same time as others give their own, so their pods never share an address.
   */
  podCidr?: string;
  /**
   * What a container without `command` runs, followed by its args (the "image entrypoint").
   * Default: $FAILWATCH_NODE_DEFAULT_COMMAND, else the failwatch CLI (`node src/cli/main.ts`).
   */
  defaultCommand?: string[];
  /**
   * Image paths mapped onto this machine in containers' commands, args and workingDir
   * (IMAGEPATH=LOCALPATH,...). Default: the image's /app is the checkout.
   */
  imagePathMap?: string;
  /** Milliseconds to wait for each component to become ready. */
  timeoutMs?: number;
  /**
   * An audit log of every request at level Metadata (who, verb, resource, response code; no
   * bodies) in <dir>/audit.log, JSON lines (--audit-policy-file, --audit-log-path).
   */
  audit?: boolean;
  /** kube-apiserver --enable-admission-plugins (besides the default set). */
  admissionPlugins?: string[];
}

export interface AgentNode {
  name: string;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
}

export interface ControlPlane {
  /** Admin kubeconfig (token user `admin` in group system:masters). */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** The admin bearer token. */
  token: string;
  /** PEM bundle that verifies the apiserver's serving certificate. */
  caPem: string;
  dir: string;
  /** Component logs: <logDir>/{etcd,kube-apiserver,kube-controller-manager,node-agent}.log */
  logDir: string;
  /** Container logs: <podLogDir>/<namespace>_<pod>_<uid>/<container>.log */
  podLogDir: string;
  nodeName: string;
  /** A KubeConfig for the admin, or for another bearer token (a ServiceAccount's, say). */
  kubeConfig(token?: string): KubeConfig;
  /** Where the node agent writes a container's stdout and stderr. */
  containerLogPath(pod: V1Pod, container: string): string;
  /** Runs kubectl as the admin; a failure comes back as a non-zero code with its output. */
  kubectl(args: string[], input?: string): { code: number; out: string };
  /** The audit log (with `audit: true`). */
  auditLogPath?: string;
  /** Stops every process (node agent first, so pod processes die) and removes a temporary dir. */
  stop(): Promise<void>;
}

let built: Promise<void> | undefined;

/** Builds test/k8s/bin/ when its pinned versions or sources changed (cold: minutes). */
export function buildControlPlane(): Promise<void> {
  built ??= new Promise((resolve, reject) => {
    const child = spawn('bash', [join(K8S_DIR, 'build.sh')], { stdio: ['ignore', 2, 2] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`test/k8s/build.sh exited ${code}`)),
    );
  });
  return built;
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  await buildControlPlane();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'failwatch-kube-'));
  // FAILWATCH_KEEP_KUBE_DIR=1 keeps every control plane's logs and pod logs to read after a failure.
  const removeDir = opts.dir === undefined && !opts.keepDir && !process.env.FAILWATCH_KEEP_KUBE_DIR;
  if (!removeDir) console.log(`control plane logs: ${dir}`);
  const logDir = join(dir, 'logs');
  const podLogDir = join(dir, 'pods');
  const pkiDir = join(dir, 'pki');
  for (const d of [logDir, podLogDir, pkiDir]) mkdirSync(d, { recursive: true });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const nodeName = opts.nodes?.[0]?.name ?? opts.nodeName ?? 'failwatch-node-1';
  const procs: Proc[] = [];

  const stop = async (): Promise<void> => {
    for (const p of [...procs].reverse()) await p.stop();
    procs.length = 0;
    if (removeDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const [etcdClient, etcdPeer, apiPort] = [
      opts.etcdClientPort ?? (await freePort()),
      opts.etcdPeerPort ?? (await freePort()),
      opts.apiserverPort ?? (await freePort()),
    ];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    rmSync(join(dir, 'etcd'), { recursive: true, force: true });
    const etcd = launch(procs, logDir, 'etcd', [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-url=${etcdUrl}`,
      `--listen-peer-url=http://127.0.0.1:${etcdPeer}`,
    ]);
    await waitFor('etcd /health', timeoutMs, [etcd], async () => {
      const res = await get(`${etcdUrl}/health`);
      return res.status === 200 && res.body.includes('"true"');
    });

    const token = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${token},admin,admin,"system:masters"\n`, { mode: 0o600 });
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    writeFileSync(join(pkiDir, 'sa.pub'), publicKey);
    writeFileSync(join(pkiDir, 'sa.key'), privateKey, { mode: 0o600 });
    const server = `https://127.0.0.1:${apiPort}`;
    const auditLogPath = opts.audit ? join(dir, 'audit.log') : undefined;
    if (auditLogPath)
      writeFileSync(
        join(dir, 'audit-policy.yaml'),
        'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n',
      );
    const apiserver = launch(procs, logDir, 'kube-apiserver', [
      ...(auditLogPath
        ? [`--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLogPath}`]
        : []),
      ...(opts.admissionPlugins ? [`--enable-admission-plugins=${opts.admissionPlugins.join(',')}`] : []),
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${pkiDir}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      '--authorization-mode=RBAC',
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(pkiDir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(pkiDir, 'sa.key')}`,
      // The "kubernetes" Service's endpoints cannot be a loopback address.
      '--endpoint-reconciler-type=none',
    ]);
    const certFile = join(pkiDir, 'apiserver.crt'); // self-signed, written by the apiserver
    let caPem = '';
    await waitFor('kube-apiserver /readyz', timeoutMs, [apiserver], async () => {
      if (!existsSync(certFile)) return false;
      caPem = readFileSync(certFile, 'utf8');
      const res = await get(`${server}/readyz`, caPem, token);
      return res.status === 200;
    });

    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, caPem, 'admin', token), { mode: 0o600 });
    const kubeConfig = (bearer = token): KubeConfig => {
      const kc = new KubeConfig();
      kc.loadFromString(kubeconfigYaml(server, caPem, 'user', bearer));
      return kc;
    };

    const controllers = opts.controllers ?? ['garbagecollector', 'namespace', 'serviceaccount'];
    const kcm = launch(procs, logDir, 'kube-controller-manager', [
      `--kubeconfig=${kubeconfigPath}`,
      `--controllers=${controllers.join(',')}`,
      '--leader-elect=false',
      '--secure-port=0',
    ]);
    const apiGet = (path: string) => get(`${server}${path}`, caPem, token);
    if (controllers.includes('serviceaccount')) {
      await waitFor('ServiceAccount default/default', timeoutMs, [kcm], async () => {
        return (await apiGet('/api/v1/namespaces/default/serviceaccounts/default')).status === 200;
      });
    }

    if (opts.nodeAgent ?? true) {
      const defaultCommand =
        opts.defaultCommand !== undefined
          ? JSON.stringify(opts.defaultCommand)
          : (process.env.FAILWATCH_NODE_DEFAULT_COMMAND ?? JSON.stringify([process.execPath, CLI_MAIN]));
      const agent = launch(
        procs,
        logDir,
        'node-agent',
        [
          `--kubeconfig=${kubeconfigPath}`,
          `--node-name=${nodeName}`,
          ...(opts.nodes ? [`--nodes=${JSON.stringify(opts.nodes)}`] : []),
          `--log-dir=${podLogDir}`,
          ...(opts.podCidr ? [`--pod-cidr=${opts.podCidr}`] : []),
        ],
        'failwatch-node-agent',
        {
          FAILWATCH_NODE_DEFAULT_COMMAND: defaultCommand,
          FAILWATCH_NODE_IMAGE_PATH_MAP: opts.imagePathMap ?? `/app=${CHECKOUT}`,
        },
      );
      for (const name of opts.nodes?.map((n) => n.name) ?? [nodeName])
        await waitFor(`Node ${name}`, timeoutMs, [agent], async () => {
          const res = await apiGet(`/api/v1/nodes/${name}`);
          return res.status === 200 && res.body.includes('"KubeletReady"');
        });
    }

    return {
      kubeconfigPath,
      auditLogPath,
      server,
      token,
      caPem,
      dir,
      logDir,
      podLogDir,
      nodeName,
      kubeConfig,
      containerLogPath: (pod, container) =>
        join(
          podLogDir,
          `${pod.metadata?.namespace}_${pod.metadata?.name}_${pod.metadata?.uid}`,
          `${container}.log`,
        ),
      kubectl: (args, input) => runKubectl(kubeconfigPath, args, input),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function kubeconfigYaml(server: string, caPem: string, user: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'failwatch-dev',
        cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
      },
    ],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'failwatch-dev', context: { cluster: 'failwatch-dev', user, namespace: 'default' } }],
    'current-context': 'failwatch-dev',
  });
}

// ---- processes -------------------------------------------------------------------------

interface Proc {
  name: string;
  logPath: string;
  child: ChildProcess;
  exited: boolean;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

let setprivPath: string | null | undefined;
/** setpriv --pdeathsig KILL makes a child die with this process, even on SIGKILL. */
function setpriv(): string | null {
  if (setprivPath === undefined) {
    try {
      setprivPath = execFileSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).trim() || null;
    } catch {
      setprivPath = null;
    }
  }
  return setprivPath;
}

function launch(
  procs: Proc[],
  logDir: string,
  name: string,
  args: string[],
  binary = name,
  env: Record<string, string> = {},
): Proc {
  const logPath = join(logDir, `${name}.log`);
  const fd = openSync(logPath, 'a');
  const bin = join(BIN, binary);
  const wrapper = setpriv();
  const child = wrapper
    ? spawn(wrapper, ['--pdeathsig', 'KILL', bin, ...args], {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...env },
      })
    : spawn(bin, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  closeSync(fd);
  live.add(child);
  const exit = new Promise<void>((resolve) => {
    child.on('exit', () => {
      proc.exited = true;
      live.delete(child);
      resolve();
    });
    child.on('error', () => resolve());
  });
  const proc: Proc = {
    name,
    logPath,
    child,
    exited: false,
    async stop() {
      if (proc.exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exit;
      clearTimeout(timer);
    },
  };
  procs.push(proc);
  return proc;
}

async function waitFor(
  what: string,
  timeoutMs: number,
  procs: Proc[],
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = procs.find((p) => p.exited);
    if (dead) throw new Error(`${dead.name} exited while waiting for ${what}:\n${tail(dead.logPath)}`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}:\n${procs.map((p) => tail(p.logPath)).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(path: string, lines = 30): string {
  try {
    return `--- ${path}\n${readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n')}`;
  } catch {
    return `--- ${path} (no log)`;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function get(url: string, ca?: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { ca, headers, timeout: 5_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function runKubectl(kubeconfig: string, args: string[], input?: string): { code: number; out: string } {
  try {
    const out = execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], {
      input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return { code: 0, out };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, out: `${e.stdout}${e.stderr}` };
  }
}
