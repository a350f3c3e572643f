// Every shipped example, end to end, against the TLS lab (PostgreSQL and MariaDB clusters, a
// lab CA, verify-full): examples/aws-aurora-postgresql.yaml and examples/aws-aurora-mysql.yaml
// through the operator on a real control plane, changed only by `forLab` below (the
// substitution their header comments document), and examples/lab-aurora-mysql.yaml through
// `failwatch run` (examples/lab-aurora-postgresql.yaml runs in run-lab and operator tests).
// Also: a CA Secret that is missing blocks the run, and verify-full against a certificate for
// another name (or from another CA) fails it with TlsFailed before any failover.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { Results } from '../../src/analysis/results.ts';
import { parseDurationMs } from '../../src/api/duration.ts';
import type { LabState } from '../../src/lab/control.ts';
import type { GroundTruthStep, LabCluster } from '../../src/lab/model.ts';
import { makeCa } from '../../src/lab/tls.ts';
import { failwatch } from '../helpers/cli.ts';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';
import { labManifest, startTestLab, type TestLab } from '../helpers/lab.ts';
import {
  experimentClient,
  LAB_PASSWORD,
  prepareOperatorNamespace,
  spawnOperator,
  stopProcess,
  waiter,
} from '../helpers/operator-env.ts';
import { assertEdge, assertEdgeBetween, assertSameDuration } from '../helpers/timing.ts';

type Doc = Record<string, any>;

const tmp = mkdtempSync(join(tmpdir(), 'fw-examples-'));
const LOG = join(tmp, 'operator.log');
const METRICS = '127.0.81.5:18480';
let cp: ControlPlane;
let lab: TestLab;
let operator: ChildProcess | undefined;
let core: CoreV1Api;
let custom: CustomObjectsApi;
const waitFor = waiter({ timeoutMs: 90_000, intervalMs: 250, logs: { operator: LOG } });

const readExample = (file: string): Doc =>
  parse(readFileSync(new URL(`../../examples/${file}`, import.meta.url), 'utf8')) as Doc;

/**
 * The one substitution an AWS example gets to run against the lab: each endpoint's host name
 * becomes the lab's name for the same role (cluster, reader or proxy endpoint) with the lab's
 * port and DNS server (standing in for the VPC resolver, which knows the RDS names), the
 * database name becomes the lab's, the cluster and target instance identifiers become the lab's,
 * and the target gets the lab's RDS endpoint; fresh endpoints probe every 300 ms at most (the
 * lab's servers share the test machine); a wrapper endpoint gets the lab's
 * clusterInstanceHostPattern. Namespace, probes, other intervals, timeouts, TLS
 * (verify-full with caSecretRef rds-ca-bundle), credentials Secrets and SLOs stay as shipped.
 */
export function forLab(doc: Doc, cluster: LabCluster, state: LabState): Doc {
  const out = structuredClone(doc);
  // The AWS examples watch 30 s before and after the failover (production pacing); the lab's
  // failover takes 3-5 s, so 8 s each is the same run, 44 s shorter per example.
  out.spec.baseline.duration = '8s';
  out.spec.observe.recoveredFor = '8s';
  out.spec.target.clusterIdentifier = cluster.id;
  out.spec.target.rdsEndpoint = state.apiUrl;
  if (out.spec.trigger.targetInstanceIdentifier)
    out.spec.trigger.targetInstanceIdentifier = cluster.instances.find((i) => i.id !== cluster.writerId)!.id;
  for (const e of out.spec.endpoints) {
    const byRole: Record<string, { host: string; port: number }> = {
      cluster: { host: cluster.endpoint, port: cluster.port },
      reader: { host: cluster.readerEndpoint, port: cluster.port },
      ...(cluster.proxy ? { proxy: { host: cluster.proxy.endpoint, port: cluster.proxy.port } } : {}),
    };
    const lab = byRole[e.role];
    assert.ok(lab, `the lab has no ${e.role} endpoint for ${cluster.id}`);
    e.host = lab.host;
    e.port = lab.port;
    e.dns = { ...e.dns, server: `${state.dns.host}:${state.dns.port}` };
    e.database = cluster.databaseName;
    // The wrapper derives instance names from RDS names; the lab's need the pattern.
    if (e.client?.stack === 'aws-advanced-nodejs-wrapper')
      e.client.clusterInstanceHostPattern = `?.${cluster.instances[0]!.dnsName.split('.').slice(1).join('.')}`;
    // The lab runs every server on the test machine, where a fresh TLS login costs ~37 ms of
    // CPU: fresh endpoints at 100 ms (30 logins/s here) beside the control plane saturate two
    // cores and every baseline comes out slow, so fresh endpoints probe every 300 ms at most.
    if ((e.connectionMode ?? 'fresh') === 'fresh' && parseDurationMs(e.interval ?? '100ms') < 300)
      e.interval = '300ms';
  }
  return out;
}

const clusterOf = (id: string): LabCluster => lab.state().clusters.find((c) => c.id === id)!;
const failovers = () => lab.state().groundTruth.filter((s) => s.step === 'failover-requested').length;

/** The steps of the last failover of `clusterId`. */
function lastFailover(clusterId: string): GroundTruthStep[] {
  const truth = lab.state().groundTruth.filter((s) => s.cluster === clusterId);
  const n = truth.filter((s) => s.step === 'failover-requested').at(-1)?.failover;
  return truth.filter((s) => s.failover === n);
}

const labIdle = async (): Promise<true | undefined> => {
  const st = lab.state();
  const last = st.groundTruth.at(-1)?.step;
  return st.clusters.every((c) => c.status === 'available') &&
    (!last || last === 'failover-completed' || last === 'failover-failed')
    ? true
    : undefined;
};

async function secret(namespace: string, name: string, stringData: Record<string, string>) {
  await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData } });
}

/** Waits for a terminal phase of an experiment and returns it. */
async function finished(namespace: string, name: string, timeoutMs = 300_000): Promise<Doc> {
  return waitFor(
    `${namespace}/${name} to finish`,
    experimentClient(custom, namespace).phaseIs(name, ['Completed', 'Failed']),
    timeoutMs,
  );
}

/** A condition of type `type` with status True, once there is one. */
const condition = (namespace: string, name: string, type: string, reason?: string) => async () => {
  const o = await experimentClient(custom, namespace).get(name);
  return o.status?.conditions?.find(
    (c: Doc) => c.type === type && c.status === 'True' && (!reason || c.reason === reason),
  ) as Doc | undefined;
};

/** Checks a completed run against the lab's ground truth; returns the cluster endpoint's summary. */
function checkAgainstTruth(done: Doc, clusterId: string): Doc {
  assert.equal(done.status.phase, 'Completed', JSON.stringify(done.status.conditions));
  assert.equal(done.status.verdict, 'Pass', JSON.stringify(done.status.verdictReasons));
  const truth = lastFailover(clusterId);
  const at = (step: string) => {
    const s = truth.find((x) => x.step === step);
    assert.ok(s, `ground truth has ${step}`);
    return s.atMs;
  };
  const t0 = Date.parse(done.status.triggerTime);
  for (const e of done.status.endpoints)
    assert.equal(
      e.errors?.tls_error ?? 0,
      0,
      `endpoint ${e.name}: no tls_error (${JSON.stringify(e.errors)})`,
    );
  const cluster = done.status.endpoints.find((e: Doc) => e.name === 'cluster');
  const w = cluster.windows.find((x: Doc) => x.kind === 'write');
  assert.ok(w, 'a write outage on the cluster endpoint');
  const wStart = t0 + w.startSeconds * 1000;
  const wEnd = t0 + w.endSeconds * 1000;
  const truthSeconds = (at('cluster-endpoint-updated') - at('old-writer-stopped')) / 1000;
  console.log(
    `${done.metadata.name}: cluster write downtime ${cluster.writeDowntimeSeconds} s (window ${w.startSeconds}..${w.endSeconds} s after T0); ground truth: writer stopped ${(at('old-writer-stopped') - t0) / 1000} s, DNS moved ${(at('cluster-endpoint-updated') - t0) / 1000} s (${truthSeconds.toFixed(3)} s apart); errors ${JSON.stringify(cluster.errors)}`,
  );
  // Each edge belongs to its event (test/helpers/timing.ts: how late a loaded machine may be).
  const start = truth.some((s) => s.step === 'proxy-paused') ? at('proxy-paused') : at('failover-requested');
  assertEdgeBetween(
    wStart,
    start,
    at('old-writer-stopped'),
    300,
    'the window opens when the writer goes away',
  );
  assertEdge(wEnd, at('cluster-endpoint-updated'), 300, 'the window closes when DNS names the new writer');
  assertSameDuration(cluster.writeDowntimeSeconds, truthSeconds, 300, 'write downtime vs ground truth');
  assert.equal(cluster.lostWrites, 0);
  return cluster;
}

describe('every shipped example against the TLS lab', { timeout: 1_800_000 }, () => {
  before(async () => {
    cp = await startControlPlane();
    lab = await startTestLab({
      base: '127.0.81',
      dnsPort: 11453,
      apiPort: 11480,
      engines: 'postgresql,mysql',
    });
    const admin = cp.kubeConfig();
    core = admin.makeApiClient(CoreV1Api);
    custom = admin.makeApiClient(CustomObjectsApi);
    // The examples' own namespaces, Secrets and CA bundle, as docs/install.md has users make them.
    const kubeconfig = await prepareOperatorNamespace(cp, {
      dir: tmp,
      namespace: 'payments',
      alsoNamespaces: ['catalog'],
    });
    const caFile = lab.state().tls.caFile!;
    for (const [ns, name] of [
      ['payments', 'pg-probe'],
      ['catalog', 'mysql-probe'],
    ] as const) {
      await secret(ns, name, { username: 'failwatch', password: LAB_PASSWORD });
      const r = cp.kubectl([
        'create',
        'secret',
        'generic',
        'rds-ca-bundle',
        '-n',
        ns,
        `--from-file=ca.crt=${caFile}`,
      ]);
      assert.equal(r.code, 0, r.out);
    }
    operator = spawnOperator({ kubeconfig, listen: METRICS, logFile: LOG });
  });

  after(async () => {
    await stopProcess(operator);
    await cp?.stop();
    await lab?.down();
  });

  it('the lab serves TLS: status gives the CA bundle, PostgreSQL refuses plain text (force_ssl)', async () => {
    const st = lab.state();
    assert.equal(st.tls.enabled, true);
    assert.equal(st.tls.caFile, join(lab.dir, 'tls', 'ca.crt'));
    assert.match(readFileSync(st.tls.caFile!, 'utf8'), /BEGIN CERTIFICATE/);
    const status = await failwatch(['lab', 'status', '--dir', lab.dir, '--json']);
    assert.equal(JSON.parse(status.stdout).tls.caFile, st.tls.caFile);
    const manifest = join(tmp, 'plain.yaml');
    writeFileSync(
      manifest,
      labManifest(lab, (t) =>
        t
          .replace(/tls: \{ mode: verify-full, caFile: [^}]+\}/g, 'tls: { mode: disable }')
          .replace('duration: 3s', 'duration: 1s'),
      ),
    );
    const before = failovers();
    const r = await failwatch(['run', manifest, '--quiet'], { FAILWATCH_LAB_PASSWORD: LAB_PASSWORD });
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /pg_hba\.conf|SSL|encryption/i);
    assert.equal(failovers(), before, 'no failover');
  });

  it('a missing CA Secret, then a missing key, blocks the run without failing over', async () => {
    const before = failovers();
    const experiments = experimentClient(custom, 'payments');
    const doc = forLab(readExample('aws-aurora-postgresql.yaml'), clusterOf('lab-pg'), lab.state());
    doc.metadata.name = 'noca';
    for (const e of doc.spec.endpoints) e.tls.caSecretRef.name = 'ca-missing';
    await experiments.create(doc);
    const blocked = await waitFor('Blocked', condition('payments', 'noca', 'Blocked', 'SecretNotFound'));
    assert.match(blocked.message, /Secret ca-missing not found in namespace payments/);
    await secret('payments', 'ca-missing', { 'other.crt': 'x' });
    const keyless = await waitFor(
      'Blocked on the key',
      condition('payments', 'noca', 'Blocked', 'SecretKeyNotFound'),
      30_000,
    );
    assert.match(keyless.message, /Secret ca-missing has no key ca\.crt/);
    assert.equal((await experiments.get('noca')).status.phase, 'Pending');
    await experiments.delete('noca');
    assert.equal(failovers(), before, 'no failover');
  });

  it('verify-full against a certificate for another name, or from another CA, fails with TlsFailed and no failover', async () => {
    const before = failovers();
    const experiments = experimentClient(custom, 'payments');
    const pg = clusterOf('lab-pg');
    // A CNAME of one's own onto the cluster endpoint: the certificate does not name it.
    const alias = forLab(readExample('aws-aurora-postgresql.yaml'), pg, lab.state());
    alias.metadata.name = 'wrong-name';
    alias.spec.endpoints[0].host = pg.aliasEndpoint;
    // A name of one's own is not an RDS name: the topology probe needs the instance host pattern.
    alias.spec.endpoints[0].topology = {
      instanceHostPattern: `?.${pg.instances[0]!.dnsName.split('.').slice(1).join('.')}`,
    };
    await experiments.create(alias);
    const failed = await finished('payments', 'wrong-name', 120_000);
    const cond = failed.status.conditions.find((c: Doc) => c.type === 'Failed');
    console.log(`wrong name: ${cond.reason}: ${cond.message}`);
    assert.equal(failed.status.phase, 'Failed');
    assert.equal(cond.reason, 'TlsFailed', cond.message);
    assert.match(cond.message, /endpoint `cluster`/);
    assert.match(cond.message, /altnames/, 'the verification error');
    assert.ok(cond.message.includes(pg.aliasEndpoint!), 'the name dialled');

    const other = makeCa(join(tmp, 'other-ca'), 'not the lab CA');
    const r = cp.kubectl([
      'create',
      'secret',
      'generic',
      'other-ca',
      '-n',
      'payments',
      `--from-file=ca.crt=${other.certFile}`,
    ]);
    assert.equal(r.code, 0, r.out);
    const wrongCa = forLab(readExample('aws-aurora-postgresql.yaml'), pg, lab.state());
    wrongCa.metadata.name = 'wrong-ca';
    for (const e of wrongCa.spec.endpoints) e.tls.caSecretRef.name = 'other-ca';
    await experiments.create(wrongCa);
    const failed2 = await finished('payments', 'wrong-ca', 120_000);
    const cond2 = failed2.status.conditions.find((c: Doc) => c.type === 'Failed');
    console.log(`wrong CA: ${cond2.reason}: ${cond2.message}`);
    assert.equal(cond2.reason, 'TlsFailed', cond2.message);
    assert.match(cond2.message, /endpoint `\w+`: .*(certificate|verify)/i);
    assert.equal(failovers(), before, "the lab's ground truth shows no failover");
  });

  it('examples/aws-aurora-postgresql.yaml: verify-full through the operator, cluster, reader and proxy', async () => {
    await waitFor('the lab to be idle', labIdle);
    const before = failovers();
    const doc = forLab(readExample('aws-aurora-postgresql.yaml'), clusterOf('lab-pg'), lab.state());
    await experimentClient(custom, 'payments').create(doc);
    const done = await finished('payments', doc.metadata.name);
    assert.equal(failovers(), before + 1, 'exactly one failover');
    checkAgainstTruth(done, 'lab-pg');
    const truth = lastFailover('lab-pg');
    const t0 = Date.parse(done.status.triggerTime);
    const proxy = done.status.endpoints.find((e: Doc) => e.name === 'proxy');
    const p = proxy.windows.find((x: Doc) => x.kind === 'write');
    const resumed = truth.find((s) => s.step === 'proxy-resumed')!.atMs;
    assertEdge(t0 + p.endSeconds * 1000, resumed, 300, 'the proxy stall ends at RESUME');
    // The wrapper's prober pod: an outage that ends no later than the driver's, nothing lost.
    const cluster = done.status.endpoints.find((e: Doc) => e.name === 'cluster');
    const wrapper = done.status.endpoints.find((e: Doc) => e.name === 'cluster-wrapper');
    const ww = wrapper.windows.find((x: Doc) => x.kind === 'write');
    const cw = cluster.windows.find((x: Doc) => x.kind === 'write');
    console.log(
      `cluster-wrapper (prober pod, failover2): write ${wrapper.writeDowntimeSeconds} s, window ${ww?.startSeconds}..${ww?.endSeconds} s; driver ${cw.startSeconds}..${cw.endSeconds} s; errors ${JSON.stringify(wrapper.errors)}`,
    );
    assert.ok(ww?.endSeconds !== undefined, 'the wrapper lane saw the failover and recovered');
    assert.ok(ww.endSeconds <= cw.endSeconds + 1, 'the wrapper recovered no later than the driver');
    assert.equal(wrapper.lostWrites, 0);
    // The topology probe in the cluster's prober pod split both outages into failover phases.
    for (const e of [cluster, wrapper]) {
      const w = e.windows.find((x: Doc) => x.kind === 'write');
      const ph = e.phases;
      assert.ok(ph, `${e.name}: phases in status: ${JSON.stringify(e)}`);
      const sum = ph.detectionSeconds + ph.promotionSeconds + (ph.dnsSeconds ?? 0) + ph.recoverySeconds;
      assert.ok(Math.abs(sum - (w.endSeconds - w.startSeconds)) < 0.005, `${e.name}: ${JSON.stringify(ph)}`);
      assert.ok(ph.promotionSeconds > 0.5, `${e.name}: a promotion phase: ${JSON.stringify(ph)}`);
    }
    console.log(
      `phases (status): cluster ${JSON.stringify(cluster.phases)}, wrapper ${JSON.stringify(wrapper.phases)}`,
    );
    await waitFor('prober pods gone', async () =>
      (await core.listNamespacedPod({ namespace: 'payments' })).items.length === 0 ? true : undefined,
    );
  });

  it('examples/aws-aurora-mysql.yaml: verify-full through the operator; read-only errors are read_only', async () => {
    await waitFor('the lab to be idle', labIdle);
    const before = failovers();
    const my = clusterOf('lab-my');
    const doc = forLab(readExample('aws-aurora-mysql.yaml'), my, lab.state());
    await experimentClient(custom, 'catalog').create(doc);
    const done = await finished('catalog', doc.metadata.name);
    assert.equal(failovers(), before + 1, 'exactly one failover');
    const cluster = checkAgainstTruth(done, 'lab-my');
    assert.ok(
      (cluster.errors?.read_only ?? 0) > 0,
      `MySQL 1290/1836 from the fenced and demoted writer count as read_only: ${JSON.stringify(cluster.errors)}`,
    );
    const target = lastFailover('lab-my').find((s) => s.step === 'failover-requested')!;
    assert.match(target.detail ?? '', new RegExp(`target ${doc.spec.trigger.targetInstanceIdentifier}`));
  });

  it('examples/lab-aurora-mysql.yaml: failwatch run with verify-full against the lab CA', async () => {
    await waitFor('the lab to be idle', labIdle);
    const file = join(tmp, 'lab-aurora-mysql.yaml');
    writeFileSync(file, labManifest(lab, undefined, 'lab-aurora-mysql.yaml'));
    const output = join(tmp, 'lab-mysql-results.json');
    const r = await failwatch(['run', file, '--quiet', '--output', output], {
      FAILWATCH_LAB_PASSWORD: LAB_PASSWORD,
    });
    const doc = JSON.parse(readFileSync(output, 'utf8')) as Results & { run: { end: string } };
    assert.equal(doc.run.end, 'Completed', r.stderr);
    assert.equal(doc.verdict.result, 'Pass', JSON.stringify(doc.verdict.reasons));
    assert.equal(r.code, 0);
    const truth = lastFailover('lab-my');
    const t0 = Date.parse(doc.trigger.time);
    const cluster = doc.endpoints.find((e) => e.name === 'cluster')!;
    for (const e of doc.endpoints) assert.equal(e.errors.tls_error ?? 0, 0, `${e.name}: no tls_error`);
    assert.ok((cluster.errors.read_only ?? 0) > 0, JSON.stringify(cluster.errors));
    const [w] = cluster.write!.windows;
    const dnsMoved = truth.find((s) => s.step === 'cluster-endpoint-updated')!.atMs;
    console.log(
      `lab-aurora-mysql: cluster write downtime ${cluster.write!.downtimeSeconds} s, window ends ${w!.end!.seconds} s, DNS moved ${(dnsMoved - t0) / 1000} s after T0`,
    );
    assertEdge(t0 + w!.end!.seconds * 1000, dnsMoved, 300, 'the window closes when DNS moves');
  });
});
