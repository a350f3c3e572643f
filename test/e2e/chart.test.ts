// The Helm chart and the container image, against a real kube-apiserver:
//   - `helm lint` is clean and `helm template` renders (helm built by scripts/build-helm);
//   - values.schema.json rejects bad values with messages a person can act on;
//   - the chart's RBAC rules are config/rbac.yaml's (the ones the operator e2e test uses);
//   - every rendered manifest passes a server-side dry-run;
//   - the Dockerfile's COPY/RUN steps replayed in a clean directory (production
//     dependencies only) start the ENTRYPOINT with the chart's own Deployment args, under
//     the chart's ServiceAccount and RBAC: /healthz and /readyz answer 200, and an
//     experiment whose target is not in allowedTargets fails with reason TargetNotAllowed.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = join(ROOT, 'charts/failwatch');
const NS = 'failwatch-system';
const tmp = mkdtempSync(join(tmpdir(), 'fw-chart-'));
let helmBin: string;
let cp: ControlPlane;
let operator: ChildProcess | undefined;

type Doc = Record<string, any>;

function run(cmd: string, args: string[], input?: string): { code: number; out: string } {
  try {
    const out = execFileSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    return { code: 0, out };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, out: `${e.stdout}${e.stderr}` };
  }
}

const helm = (args: string[]) => run(helmBin, args);
const kubectl = (args: string[], input?: string) =>
  run('kubectl', ['--kubeconfig', cp.kubeconfigPath, ...args], input);

function template(set: string[] = []): { code: number; out: string; docs: Doc[] } {
  const res = helm(['template', 'failwatch', CHART, '--namespace', NS, ...set.flatMap((s) => ['--set', s])]);
  const docs = res.code === 0 ? parseAllDocuments(res.out).map((d) => d.toJSON() as Doc) : [];
  return { ...res, docs: docs.filter((d) => d) };
}

/** Rules as sorted `apiGroup resource verb` triples: equal permissions however they are grouped. */
function ruleTriples(docs: Doc[], kind: 'ClusterRole' | 'Role'): string[] {
  const triples = new Set<string>();
  for (const doc of docs.filter((d) => d.kind === kind))
    for (const rule of doc.rules ?? [])
      for (const group of rule.apiGroups ?? [''])
        for (const resource of rule.resources ?? [])
          for (const verb of rule.verbs ?? [])
            triples.add(
              `${group || 'core'} ${resource} ${verb}${rule.resourceNames ? ` [${rule.resourceNames.join(',')}]` : ''}`,
            );
  return [...triples].sort();
}

/** The image, without Docker: replays the Dockerfile's COPY/RUN/ENV in `dir` (= /app). */
function replayDockerfile(dir: string): {
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  /** The USER in effect: at the end, and for each RUN (the replay runs them all as itself). */
  user: string;
  runs: { command: string; user: string }[];
} {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const image = {
    entrypoint: [] as string[],
    cmd: [] as string[],
    env: {} as Record<string, string>,
    user: 'root',
    runs: [] as { command: string; user: string }[],
  };
  const inApp = (path: string) =>
    join(dir, relative('/app', path.startsWith('/') ? path : join('/app', path)));
  for (const line of text.split('\n')) {
    const m = /^([A-Z]+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, instruction, rest] = m as unknown as [string, string, string];
    const words = rest.trim().split(/\s+/);
    switch (instruction) {
      case 'FROM':
        image.user = 'root';
        break;
      case 'USER':
        image.user = rest.trim();
        break;
      case 'WORKDIR':
        assert.equal(rest.trim(), '/app', 'the replay assumes WORKDIR /app');
        break;
      case 'COPY': {
        // --from=<stage> copies a directory of an earlier stage: the replay built it in place.
        if (words[0]!.startsWith('--from=')) {
          const source = words.find((w) => !w.startsWith('--'))!;
          assert.ok(source.startsWith('/app/'), `COPY ${rest}`);
          break;
        }
        const dest = words.at(-1)!;
        const sources = words.slice(0, -1);
        for (const src of sources) {
          const target =
            dest.endsWith('/') || sources.length > 1 ? join(inApp(dest), basename(src)) : inApp(dest);
          cpSync(join(ROOT, src), target, { recursive: true });
        }
        break;
      }
      case 'RUN': {
        // A clean npm cache, as in a Docker build (and `npm cache clean` must not touch ours).
        const env = { ...process.env, npm_config_cache: join(dir, '..', 'npm-cache') };
        image.runs.push({ command: rest, user: image.user });
        const res = spawnSync('sh', ['-c', rest], { cwd: dir, env, encoding: 'utf8' });
        assert.equal(res.status, 0, `RUN ${rest}\n${res.stdout}${res.stderr}`);
        break;
      }
      case 'ENV':
        for (const kv of words) {
          const [k, v] = kv.split('=') as [string, string];
          image.env[k] = v;
        }
        break;
      case 'ENTRYPOINT':
        image.entrypoint = JSON.parse(rest);
        break;
      case 'CMD':
        image.cmd = JSON.parse(rest);
        break;
    }
  }
  return image;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      let log = '';
      try {
        log = readFileSync(join(tmp, 'operator.log'), 'utf8').slice(-3000);
      } catch {}
      throw new Error(`timed out waiting for ${what}; operator log:\n${log}`);
    }
    await sleep(200);
  }
}

describe('Helm chart and image', { timeout: 600_000 }, () => {
  before(async () => {
    const [helmPath, plane] = await Promise.all([
      promisify(execFile)('bash', [join(ROOT, 'scripts/build-helm')], { maxBuffer: 1 << 24 }),
      startControlPlane({ nodeAgent: false }),
    ]);
    helmBin = helmPath.stdout.trim();
    cp = plane;
  });

  after(async () => {
    if (operator && operator.exitCode === null) {
      const exited = new Promise((r) => operator!.once('exit', r));
      operator.kill('SIGKILL');
      await exited;
    }
    await cp?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('passes helm lint without warnings, with defaults and with every option on', () => {
    for (const set of [[], ['metrics.serviceMonitor.enabled=true,metrics.podMonitor.enabled=true']]) {
      const res = helm(['lint', '--strict', CHART, ...set.flatMap((s) => ['--set', s])]);
      assert.equal(res.code, 0, res.out);
      assert.match(res.out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(res.out, /\[(WARNING|ERROR)\]/);
    }
  });

  it('renders the controller, its RBAC, Service and dashboard; monitors only when asked', () => {
    const plain = template();
    assert.equal(plain.code, 0, plain.out);
    assert.deepEqual(plain.docs.map((d) => `${d.kind}/${d.metadata.name}`).sort(), [
      'ClusterRole/failwatch',
      'ClusterRole/failwatch-auth',
      'ClusterRoleBinding/failwatch',
      'ClusterRoleBinding/failwatch-auth',
      'ConfigMap/failwatch-dashboard',
      'Deployment/failwatch',
      'Role/failwatch-own-namespace',
      'RoleBinding/failwatch-own-namespace',
      'Service/failwatch-metrics',
      'ServiceAccount/failwatch',
    ]);
    const deploy = plain.docs.find((d) => d.kind === 'Deployment')!;
    const container = deploy.spec.template.spec.containers[0];
    assert.deepEqual(container.args.slice(0, -1), [
      'operator',
      '--metrics-listen=0.0.0.0:8080',
      '--prober-image=ghcr.io/failwatch/failwatch:0.1.0',
      '--concurrency=4',
    ]);
    const policyFlag = container.args.at(-1) as string;
    assert.ok(policyFlag.startsWith('--prober-network-policy='), policyFlag);
    assert.deepEqual(JSON.parse(policyFlag.slice('--prober-network-policy='.length)), {
      controllerPodSelector: { matchLabels: deploy.spec.selector.matchLabels },
      scraperNamespaceSelector: {},
      scraperPodSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
    });
    // The chart never lets experiments point the AWS requests elsewhere.
    assert.ok(!container.args.some((a: string) => a.includes('allow-rds-endpoint-override')));
    const off = template(['networkPolicy.enabled=false']);
    const offArgs = off.docs.find((d) => d.kind === 'Deployment')!.spec.template.spec.containers[0].args;
    assert.ok(!offArgs.some((a: string) => a.startsWith('--prober-network-policy')), offArgs.join(' '));
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    assert.equal(deploy.spec.template.spec.securityContext.runAsUser, 65532);
    const dashboard = plain.docs.find((d) => d.kind === 'ConfigMap')!;
    assert.equal(dashboard.metadata.labels.grafana_dashboard, '1');
    assert.equal(
      JSON.parse(dashboard.data['failwatch.json']).uid,
      JSON.parse(readFileSync(join(CHART, 'dashboards/failwatch.json'), 'utf8')).uid,
    );

    const full = template([
      'metrics.serviceMonitor.enabled=true',
      'metrics.podMonitor.enabled=true',
      'allowedTargets={orders-staging-pg,eu-west-1/lab-*}',
      'requireAllowedTargets=true',
      'leaderElection.enabled=false',
      'aws.existingSecret=aws-creds',
      'aws.region=eu-west-1',
      'serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::123456789012:role/failwatch',
    ]);
    assert.equal(full.code, 0, full.out);
    const kinds = full.docs.map((d) => d.kind);
    assert.ok(kinds.includes('ServiceMonitor') && kinds.includes('PodMonitor'), kinds.join(', '));
    const c = full.docs.find((d) => d.kind === 'Deployment')!.spec.template.spec.containers[0];
    assert.ok(c.args.includes('--allowed-targets=orders-staging-pg,eu-west-1/lab-*'), c.args.join(' '));
    assert.ok(c.args.includes('--no-leader-elect'));
    assert.deepEqual(
      c.env.filter((e: Doc) => e.valueFrom?.secretKeyRef).map((e: Doc) => e.name),
      ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'],
    );
    const sa = full.docs.find((d) => d.kind === 'ServiceAccount')!;
    assert.equal(
      sa.metadata.annotations['eks.amazonaws.com/role-arn'],
      'arn:aws:iam::123456789012:role/failwatch',
    );
  });

  it('rejects bad values through values.schema.json with clear messages', () => {
    const cases: Array<[string[], string]> = [
      [['replicaCount=-1'], "at '/replicaCount': minimum: got -1, want 1"],
      [
        ['logLevel=verbose'],
        "at '/logLevel': value must be one of 'trace', 'debug', 'info', 'warn', 'error', 'fatal'",
      ],
      [['requireAllowedTargets=true'], "at '/allowedTargets': minItems: got 0, want 1"],
    ];
    for (const [set, message] of cases) {
      const res = template(set);
      assert.notEqual(res.code, 0, `helm template --set ${set.join(' ')} must fail`);
      assert.match(res.out, /values don't meet the specifications of the schema/);
      assert.ok(res.out.includes(message), `expected ${message} in:\n${res.out}`);
    }
    assert.equal(template(['requireAllowedTargets=true', 'allowedTargets={lab-*}']).code, 0);
  });

  it('grants exactly the permissions of config/rbac.yaml', () => {
    const rendered = template().docs;
    const reference = parseAllDocuments(readFileSync(join(ROOT, 'config/rbac.yaml'), 'utf8')).map(
      (d) => d.toJSON() as Doc,
    );
    for (const kind of ['ClusterRole', 'Role'] as const) {
      const expected = ruleTriples(reference, kind);
      assert.ok(expected.length > 0, `config/rbac.yaml has ${kind} rules`);
      assert.deepEqual(ruleTriples(rendered, kind), expected, `${kind} rules differ from config/rbac.yaml`);
    }
  });

  it('watchNamespaces: the same rules in a Role per namespace, TokenReview/SAR still cluster-wide', () => {
    const { code, out, docs } = template(['watchNamespaces={team-a,team-b}']);
    assert.equal(code, 0, out);
    const reference = parseAllDocuments(readFileSync(join(ROOT, 'config/rbac.yaml'), 'utf8')).map(
      (d) => d.toJSON() as Doc,
    );
    const tenant = ruleTriples(
      reference.filter((d) => d?.metadata?.name === 'failwatch-controller'),
      'ClusterRole',
    );
    for (const ns of ['team-a', 'team-b']) {
      const inNs = docs.filter((d) => d.metadata.namespace === ns);
      assert.deepEqual(inNs.map((d) => `${d.kind}/${d.metadata.name}`).sort(), [
        'Role/failwatch',
        'RoleBinding/failwatch',
      ]);
      assert.deepEqual(ruleTriples(inNs, 'Role'), tenant, ns);
      assert.deepEqual(inNs.find((d) => d.kind === 'RoleBinding')!.subjects, [
        { kind: 'ServiceAccount', name: 'failwatch', namespace: NS },
      ]);
    }
    assert.deepEqual(
      docs.filter((d) => d.kind === 'ClusterRole').map((d) => d.metadata.name),
      ['failwatch-auth'],
    );
    assert.deepEqual(ruleTriples(docs, 'ClusterRole'), [
      'authentication.k8s.io tokenreviews create',
      'authorization.k8s.io subjectaccessreviews create',
    ]);
    const args = docs.find((d) => d.kind === 'Deployment')!.spec.template.spec.containers[0].args as string[];
    assert.ok(args.includes('--namespaces=team-a,team-b'), args.join(' '));
    const bad = template(['watchNamespaces={Team_A}']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /watchNamespaces/);
  });

  it('passes a server-side dry-run of every rendered manifest, CRDs applied first', () => {
    const crds = kubectl(['apply', '--server-side', '-f', join(CHART, 'crds')]);
    assert.equal(crds.code, 0, crds.out);
    assert.equal(kubectl(['create', 'namespace', NS]).code, 0);
    for (const set of [
      [],
      ['allowedTargets={lab-*}', 'requireAllowedTargets=true', 'aws.existingSecret=aws', 'replicaCount=2'],
    ]) {
      const rendered = template(set);
      assert.equal(rendered.code, 0, rendered.out);
      assert.ok(rendered.docs.length >= 8);
      const res = kubectl(['apply', '--dry-run=server', '-f', '-'], rendered.out);
      assert.equal(res.code, 0, res.out);
      for (const d of rendered.docs)
        assert.match(
          res.out,
          new RegExp(`${d.metadata.name}.*(created|configured|unchanged) \\(server dry run\\)`),
        );
    }
  });

  it('starts the image (production dependencies only) with the chart install: /healthz, /readyz, TargetNotAllowed', async () => {
    const app = join(tmp, 'app');
    mkdirSync(app);
    const image = replayDockerfile(app);
    assert.deepEqual(image.entrypoint, ['node', '/app/src/cli/main.ts']);
    assert.deepEqual(image.cmd, ['operator']);
    const entry = [
      process.execPath,
      ...image.entrypoint.slice(1).map((a) => a.replace(/^\/app\//, `${app}/`)),
    ];
    const dev = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies as object;
    // @types/* may come in with production packages; the tools must not.
    for (const name of Object.keys(dev).filter((n) => !n.startsWith('@types/')))
      assert.throws(
        () => readFileSync(join(app, 'node_modules', name, 'package.json')),
        `${name} not installed`,
      );
    const help = run(entry[0]!, [...entry.slice(1), 'operator', '--help']);
    assert.equal(help.code, 0, help.out);
    assert.match(help.out, /--allowed-targets/);
    // The image's processes load every module from the compile cache its build made: not one
    // TypeScript file is stripped again (Node's debug log names each hit and each miss). The
    // cache is per UID: it is made as the user the image runs as, and readable by all (Node
    // writes 0600, and the runtime stage's copy belongs to root).
    const warm = image.runs.filter((r) => r.command.includes('warm-compile-cache'));
    assert.deepEqual(
      warm.map((r) => r.user),
      [image.user],
      'the compile cache is made once, as the USER of the image',
    );
    const unreadable = readdirSync(join(app, '.compile-cache'), { recursive: true, withFileTypes: true })
      .filter((e) => (statSync(join(e.parentPath, e.name)).mode & (e.isDirectory() ? 0o005 : 0o004)) === 0)
      .map((e) => join(e.parentPath, e.name));
    assert.deepEqual(unreadable, [], 'every compile cache file readable by all');
    const imageEnv = Object.fromEntries(
      Object.entries(image.env).map(([k, v]) => [k, v.replace(/^\/app\//, `${app}/`)]),
    );
    assert.equal(imageEnv.NODE_COMPILE_CACHE, join(app, '.compile-cache'));
    const cached = spawnSync(entry[0]!, [...entry.slice(1), 'probe', '--help'], {
      env: { PATH: process.env.PATH, ...imageEnv, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' },
      encoding: 'utf8',
    });
    assert.equal(cached.status, 0, cached.stderr);
    const hits = cached.stderr.match(/for StrippedTypeScript .*success/g) ?? [];
    const misses = cached.stderr.match(/Creating temporary .*StrippedTypeScript/g) ?? [];
    assert.ok(hits.length >= 40, `${hits.length} TypeScript modules read from the compile cache`);
    assert.equal(misses.length, 0, misses.join('\n'));

    // `helm install`, the equivalent: apply the rendered chart, then run its Deployment's
    // container as the chart's ServiceAccount.
    const rendered = template(['allowedTargets={lab-*}', 'requireAllowedTargets=true']);
    const applied = kubectl(['apply', '-f', '-'], rendered.out);
    assert.equal(applied.code, 0, applied.out);
    const token = kubectl(['create', 'token', 'failwatch', '-n', NS, '--duration=1h']);
    assert.equal(token.code, 0, token.out);
    const kubeconfig = join(tmp, 'controller.kubeconfig');
    writeFileSync(kubeconfig, cp.kubeConfig(token.out.trim()).exportConfig());
    const container = rendered.docs.find((d) => d.kind === 'Deployment')!.spec.template.spec.containers[0];
    const listen = '127.0.78.9:18081';
    const args = (container.args as string[]).map((a) =>
      a.startsWith('--metrics-listen=') ? `--metrics-listen=${listen}` : a,
    );
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, ...imageEnv, HOME: tmp, POD_NAMESPACE: NS };
    for (const e of container.env as Doc[]) if (e.value !== undefined) env[e.name] = e.value;
    const log = openSync(join(tmp, 'operator.log'), 'a');
    operator = spawn(entry[0]!, [...entry.slice(1), ...args, '--kubeconfig', kubeconfig], {
      cwd: app,
      stdio: ['ignore', log, log],
      env,
    });
    const status = (path: string) => async () => {
      const res = await fetch(`http://${listen}${path}`);
      return res.status === 200 ? res.status : undefined;
    };
    assert.equal(await waitFor('/healthz 200', status('/healthz')), 200);
    assert.equal(await waitFor('/readyz 200 (leader, informer synced)', status('/readyz')), 200);

    assert.equal(kubectl(['create', 'namespace', 'payments']).code, 0);
    const example = parse(readFileSync(join(ROOT, 'examples/aws-aurora-postgresql.yaml'), 'utf8')) as Doc;
    const created = kubectl(['apply', '-f', '-'], stringify(example));
    assert.equal(created.code, 0, created.out);
    const failed = await waitFor('the experiment to fail', async () => {
      const out = kubectl([
        'get',
        'failoverexperiment',
        example.metadata.name,
        '-n',
        'payments',
        '-o',
        'json',
      ]);
      const obj = JSON.parse(out.out) as Doc;
      return obj.status?.phase === 'Failed' ? obj : undefined;
    });
    const condition = failed.status.conditions.find((c: Doc) => c.type === 'Failed');
    assert.equal(condition.reason, 'TargetNotAllowed');
    assert.match(
      condition.message,
      /target ap-northeast-1\/orders-prod-pg is not in the controller's allowed targets \(lab-\*\)/,
    );
    // The reconcile that wrote the Failed status is counted once it returns.
    await waitFor('a successful reconcile in /metrics', async () => {
      const metrics = await (await fetch(`http://${listen}/metrics`)).text();
      return /^failwatch_reconcile_total\{controller="failoverexperiment",result="success"\} [1-9]/m.test(
        metrics,
      )
        ? true
        : undefined;
    });
  });
});
