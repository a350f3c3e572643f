// What the operator's end-to-end suites share: a control plane prepared for the controller
// (CRDs, namespaces, its least-privilege RBAC and a kubeconfig for its ServiceAccount, the
// lab's credentials Secrets), `failwatch operator` as a child process, the lab experiment as a
// manifest, a small client for the failwatch.io objects, and waiting with the logs on timeout.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type CustomObjectsApi } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { MAIN } from './cli.ts';
import type { ControlPlane } from './kube.ts';
import { labManifest, type TestLab } from './lab.ts';

/** The controller's namespace (config/rbac.yaml puts its ServiceAccount there). */
export const SYSTEM_NS = 'failwatch-system';
/** The lab's database user and password, and a password the lab rejects. */
export const LAB_PASSWORD = 'failwatch-lab';
export const WRONG_PASSWORD = 'not-the-password';

type Doc = Record<string, any>;

export interface OperatorNamespaceOptions {
  /** Where the controller kubeconfig is written (`controller.kubeconfig`). */
  dir: string;
  /** The experiments' namespace; the Secrets go there. */
  namespace: string;
  /** More namespaces to create (besides failwatch-system and `namespace`). */
  alsoNamespaces?: string[];
  /** Secret name → password, user `failwatch`, created in `namespace`. */
  secrets?: Record<string, string>;
  /** How long the controller's token lives (kubectl create token --duration). */
  tokenDuration?: string;
}

/**
 * Applies crds/ and config/rbac.yaml, creates the namespaces, waits for the CRDs to be
 * Established, writes a kubeconfig with a token of the failwatch-controller ServiceAccount and
 * creates the credentials Secrets. Returns the kubeconfig's path.
 */
export async function prepareOperatorNamespace(
  cp: ControlPlane,
  opts: OperatorNamespaceOptions,
): Promise<string> {
  const crds = cp.kubectl(['apply', '-f', 'crds/']);
  assert.equal(crds.code, 0, crds.out);
  for (const ns of [SYSTEM_NS, opts.namespace, ...(opts.alsoNamespaces ?? [])]) {
    const r = cp.kubectl(['create', 'namespace', ns]);
    assert.equal(r.code, 0, r.out);
  }
  const rbac = cp.kubectl(['apply', '-f', 'config/rbac.yaml']);
  assert.equal(rbac.code, 0, rbac.out);
  for (const crd of ['failoverexperiments', 'failoverschedules'])
    cp.kubectl(['wait', '--for=condition=Established', `crd/${crd}.failwatch.io`, '--timeout=30s']);
  const kubeconfig = join(opts.dir, 'controller.kubeconfig');
  writeFileSync(
    kubeconfig,
    cp
      .kubeConfig(serviceAccountToken(cp, 'failwatch-controller', SYSTEM_NS, opts.tokenDuration))
      .exportConfig(),
  );
  const core = cp.kubeConfig().makeApiClient(CoreV1Api);
  for (const [name, password] of Object.entries(opts.secrets ?? {}))
    await core.createNamespacedSecret({
      namespace: opts.namespace,
      body: { metadata: { name }, stringData: { username: 'failwatch', password } },
    });
  return kubeconfig;
}

/** A bearer token of a ServiceAccount (kubectl create token). */
export function serviceAccountToken(
  cp: ControlPlane,
  sa: string,
  namespace: string,
  duration = '3h',
): string {
  const r = cp.kubectl(['create', 'token', sa, '-n', namespace, `--duration=${duration}`]);
  assert.equal(r.code, 0, r.out);
  return r.out.trim();
}

export interface OperatorProcessOptions {
  kubeconfig: string;
  /** --metrics-listen: metrics, health and report pages. */
  listen: string;
  /** stdout and stderr are appended here. */
  logFile: string;
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** More command-line flags. */
  args?: string[];
  /** Start without --allow-rds-endpoint-override (the chart's default). */
  noRdsEndpointOverride?: boolean;
}

/** `failwatch operator` in failwatch-system with the test node agent's prober image. */
export function spawnOperator(opts: OperatorProcessOptions): ChildProcess {
  const log = openSync(opts.logFile, 'a');
  try {
    return spawn(
      process.execPath,
      [
        MAIN,
        'operator',
        '--kubeconfig',
        opts.kubeconfig,
        '--namespace',
        SYSTEM_NS,
        '--prober-image',
        'failwatch:test',
        '--metrics-listen',
        opts.listen,
        // The lab's RDS API is an rdsEndpoint override; set noRdsEndpointOverride to leave it off.
        ...(opts.noRdsEndpointOverride ? [] : ['--allow-rds-endpoint-override']),
        ...(opts.args ?? []),
      ],
      { stdio: ['ignore', log, log], env: { ...process.env, ...opts.env } },
    );
  } finally {
    closeSync(log);
  }
}

/** Sends `signal` to a child that still runs and waits for it to exit (SIGKILL after 10 s). */
export async function stopProcess(
  child: ChildProcess | undefined,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export interface LabExperimentOptions {
  /** The Secret every endpoint's credentials come from (default lab-db). */
  secret?: string;
  /** Each endpoint's connectTimeout where the manifest sets none. */
  connectTimeout?: string;
  /** Last changes to the manifest. */
  edit?: (doc: Doc) => void;
}

/**
 * The lab experiment as a Kubernetes manifest: 2 s of baseline, recovered after 2 s, and the
 * credentials of every endpoint from a Secret.
 */
export function labExperiment(
  lab: TestLab,
  name: string,
  namespace: string,
  opts: LabExperimentOptions = {},
): Doc {
  const doc = parse(labManifest(lab)) as Doc;
  doc.metadata = { name, namespace };
  doc.spec.baseline.duration = '2s';
  doc.spec.observe.recoveredFor = '2s';
  for (const e of doc.spec.endpoints) {
    e.credentials = { secretRef: { name: opts.secret ?? 'lab-db' } };
    if (opts.connectTimeout) e.connectTimeout ??= opts.connectTimeout;
  }
  opts.edit?.(doc);
  return doc;
}

/** Create, read, list, patch and delete one kind of failwatch.io object in a namespace. */
export function failwatchObjects(custom: CustomObjectsApi, namespace: string, plural: string) {
  const ref = { group: 'failwatch.io', version: 'v1alpha1', namespace, plural };
  return {
    create: async (body: Doc): Promise<Doc> =>
      (await custom.createNamespacedCustomObject({ ...ref, body })) as Doc,
    get: async (name: string): Promise<Doc> =>
      (await custom.getNamespacedCustomObject({ ...ref, name })) as Doc,
    list: async (labelSelector?: string): Promise<Doc[]> =>
      ((await custom.listNamespacedCustomObject({ ...ref, labelSelector })) as { items: Doc[] }).items,
    /** A JSON patch. */
    patch: async (name: string, ops: Doc[]): Promise<void> => {
      await custom.patchNamespacedCustomObject({ ...ref, name, body: ops });
    },
    replaceStatus: async (body: Doc): Promise<void> => {
      await custom.replaceNamespacedCustomObjectStatus({ ...ref, name: body.metadata.name, body });
    },
    delete: async (name: string): Promise<void> => {
      await custom.deleteNamespacedCustomObject({ ...ref, name });
    },
  };
}

/** FailoverExperiments in a namespace, with checks for waitFor(). */
export function experimentClient(custom: CustomObjectsApi, namespace: string) {
  const objects = failwatchObjects(custom, namespace, 'failoverexperiments');
  return {
    ...objects,
    /** A waitFor() check: the experiment once its phase is one of `phases`. */
    phaseIs: (name: string, phases: string[]) => async (): Promise<Doc | undefined> => {
      const o = await objects.get(name);
      return phases.includes(o.status?.phase) ? o : undefined;
    },
    /** The runs of a FailoverSchedule, by name. */
    runsOf: async (schedule: string): Promise<Doc[]> =>
      (await objects.list(`failwatch.io/schedule=${schedule}`)).sort((a, b) =>
        a.metadata.name < b.metadata.name ? -1 : 1,
      ),
  };
}

/** FailoverSchedules in a namespace. */
export const scheduleClient = (custom: CustomObjectsApi, namespace: string) =>
  failwatchObjects(custom, namespace, 'failoverschedules');

/** A waitFor() check: the lab is available and not failing over. */
export const labIdle = (lab: TestLab) => async (): Promise<true | undefined> => {
  const st = lab.state();
  const last = st.groundTruth.at(-1)?.step;
  // failover-ignored, operation-ignored: the lab's noop failover profile accepted a call and
  // did nothing; instance-available ends a reboot or class change, switchover-completed (or
  // -failed) a Blue/Green switchover.
  const ended = [
    'failover-completed',
    'failover-ignored',
    'instance-available',
    'operation-ignored',
    'switchover-completed',
    'switchover-failed',
  ];
  const cluster = st.clusters[0]!;
  return cluster.status === 'available' &&
    cluster.instances.every((i) => i.status === 'available') &&
    (!last || ended.includes(last))
    ? true
    : undefined;
};

/** Thrown from a waitFor() check: stop waiting at once. */
export class GiveUp extends Error {}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Label → log file whose tail a failure shows (`operator` → "operator log:"). */
  logs?: Record<string, string>;
}

/** The tails of `logs` (label → file), for a failure's message. */
export function logTails(logs: Record<string, string>): string {
  return Object.entries(logs)
    .map(([label, file]) => {
      let tail: string;
      try {
        tail = readFileSync(file, 'utf8').slice(-3000);
      } catch {
        tail = '(none)';
      }
      return `; ${label} log:\n${tail}`;
    })
    .join('');
}

/**
 * Calls `fn` until it returns something other than undefined (a rejection counts as undefined,
 * a GiveUp ends the wait) and returns that; fails after the timeout with the logs' tails.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  opts: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 90_000, intervalMs = 250, logs = {} } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch((err) => {
      if (err instanceof GiveUp) throw new Error(`${what}: ${err.message}${logTails(logs)}`);
      return undefined;
    });
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${logTails(logs)}`);
    await sleep(intervalMs);
  }
}

/** waitFor() with a suite's defaults; a call may give its own timeout. */
export function waiter(defaults: WaitOptions) {
  return <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = defaults.timeoutMs): Promise<T> =>
    waitFor(what, fn, { ...defaults, timeoutMs });
}
