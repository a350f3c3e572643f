// The development control plane is a real Kubernetes: the apiserver serves and enforces RBAC,
// the node agent runs pods as processes, the controller-manager collects garbage and
// finishes namespace deletion.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  ApiException,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type V1Container,
  type V1Pod,
  type V1Volume,
  VersionApi,
} from '@kubernetes/client-node';
import { type ControlPlane, startControlPlane } from '../helpers/kube.ts';

let cp: ControlPlane;
let core: CoreV1Api;

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const status = (err: unknown) => (err instanceof ApiException ? err.code : undefined);

async function gone(read: () => Promise<unknown>): Promise<true | undefined> {
  try {
    await read();
    return undefined;
  } catch (err) {
    if (status(err) === 404) return true;
    throw err;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (briefly: an orphan killed with its group may stay a zombie until init reaps it). */
async function dead(pid: number): Promise<boolean> {
  return (
    (await until(`pid ${pid} gone`, async () => (alive(pid) ? undefined : true), 3_000).catch(
      () => false,
    )) === true
  );
}

async function createNamespace(name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name } } });
  // Pods need the namespace's default ServiceAccount (the serviceaccount controller makes it).
  await until(`ServiceAccount ${name}/default`, async () =>
    (await gone(() => core.readNamespacedServiceAccount({ name: 'default', namespace: name })))
      ? undefined
      : true,
  );
}

async function runPod(
  namespace: string,
  name: string,
  containers: V1Container[],
  restartPolicy = 'Never',
  volumes?: V1Volume[],
) {
  return core.createNamespacedPod({
    namespace,
    body: { metadata: { name }, spec: { restartPolicy, containers, ...(volumes ? { volumes } : {}) } },
  });
}

async function podIn(namespace: string, name: string, phases: string[], timeoutMs = 30_000): Promise<V1Pod> {
  return until(
    `pod ${namespace}/${name} in ${phases.join('/')}`,
    async () => {
      const pod = await core.readNamespacedPod({ namespace, name });
      return phases.includes(pod.status?.phase ?? '') ? pod : undefined;
    },
    timeoutMs,
  );
}

const pidOf = (pod: V1Pod) =>
  Number(pod.status?.containerStatuses?.[0]?.containerID?.replace('failwatch://', ''));

describe('development control plane', () => {
  before(
    async () => {
      cp = await startControlPlane();
      core = cp.kubeConfig().makeApiClient(CoreV1Api);
    },
    { timeout: 30 * 60_000 }, // a cold build of the binaries takes minutes
  );
  after(() => cp?.stop());

  it('serves the pinned Kubernetes version, also to kubectl with the admin kubeconfig', async () => {
    const version = await cp.kubeConfig().makeApiClient(VersionApi).getCode();
    assert.match(version.gitVersion, /^v1\.\d+\.\d+$/);
    const out = execFileSync('kubectl', ['--kubeconfig', cp.kubeconfigPath, 'get', 'ns', '-o', 'name'], {
      encoding: 'utf8',
    });
    for (const ns of ['default', 'kube-system', 'kube-public'])
      assert.match(out, new RegExp(`namespace/${ns}\\b`));
    const node = await core.readNode({ name: cp.nodeName });
    assert.equal(node.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  });

  it('denies a ServiceAccount what RBAC does not grant it', async () => {
    const namespace = 'rbac';
    await createNamespace(namespace);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'nobody' } } });
    const tr = await core.createNamespacedServiceAccountToken({
      namespace,
      name: 'nobody',
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const asNobody = cp.kubeConfig(tr.status!.token).makeApiClient(CoreV1Api);
    await assert.rejects(asNobody.listNamespacedPod({ namespace }), (err) => status(err) === 403);
    await assert.rejects(asNobody.listNamespace(), (err) => status(err) === 403);

    // The token is valid: a Role binding grants exactly what it names.
    const rbac = cp.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'pod-reader' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'nobody-reads-pods' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'nobody', namespace }],
      },
    });
    await until(
      'the RoleBinding to take effect',
      async () =>
        (await asNobody.listNamespacedPod({ namespace }).then(
          () => true,
          () => undefined,
        )) ?? undefined,
    );
    await assert.rejects(asNobody.listNamespacedSecret({ namespace }), (err) => status(err) === 403);
  });

  it('runs a pod as a process with env from a Secret and the downward API', async () => {
    const namespace = 'pods';
    await createNamespace(namespace);
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'db' }, stringData: { password: 's3cret' } },
    });
    await runPod(namespace, 'hello', [
      {
        name: 'main',
        image: 'busybox',
        command: [
          'sh',
          '-c',
          'echo "password=$DB_PASSWORD ip=$POD_IP pod=$POD_NAME.$POD_NAMESPACE greeting=$GREETING"',
        ],
        env: [
          { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'GREETING', value: 'hi $(POD_NAME)' },
        ],
      },
    ]);
    const pod = await podIn(namespace, 'hello', ['Succeeded', 'Failed']);
    assert.equal(pod.status?.phase, 'Succeeded');
    assert.equal(pod.spec?.nodeName, cp.nodeName);
    const ip = pod.status?.podIP ?? '';
    assert.match(ip, /^127\.\d+\.\d+\.\d+$/);
    assert.deepEqual(
      pod.status?.podIPs?.map((p) => p.ip),
      [ip],
    );
    assert.equal(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
    assert.equal(
      readFileSync(cp.containerLogPath(pod, 'main'), 'utf8'),
      `password=s3cret ip=${ip} pod=hello.pods greeting=hi hello\n`,
    );

    // A failing container fails the pod with its exit code; each pod has its own IP.
    await runPod(namespace, 'fails', [{ name: 'main', image: 'busybox', command: ['sh', '-c', 'exit 3'] }]);
    const failed = await podIn(namespace, 'fails', ['Succeeded', 'Failed']);
    assert.equal(failed.status?.phase, 'Failed');
    assert.equal(failed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 3);
    assert.notEqual(failed.status?.podIP, ip);

    // Without a command, the args go to the default command (the failwatch CLI).
    await runPod(namespace, 'cli', [{ name: 'failwatch', image: 'failwatch', args: ['help'] }]);
    const cli = await podIn(namespace, 'cli', ['Succeeded', 'Failed']);
    assert.equal(cli.status?.phase, 'Succeeded');
    assert.match(readFileSync(cp.containerLogPath(cli, 'failwatch'), 'utf8'), /Usage: failwatch/);
  });

  it('keeps a pod with a missing Secret Pending with CreateContainerConfigError, and starts it once it exists', async () => {
    const namespace = 'config-error';
    await createNamespace(namespace);
    await runPod(namespace, 'waits', [
      {
        name: 'main',
        image: 'busybox',
        command: ['sh', '-c', 'echo "$TOKEN"'],
        env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'later', key: 'token' } } }],
      },
    ]);
    const waiting = await until('CreateContainerConfigError', async () => {
      const pod = await core.readNamespacedPod({ namespace, name: 'waits' });
      const w = pod.status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'CreateContainerConfigError' ? { pod, w } : undefined;
    });
    assert.equal(waiting.pod.status?.phase, 'Pending');
    assert.match(waiting.w.message ?? '', /secret "later" not found/);
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'later' }, stringData: { token: 't0k' } },
    });
    const pod = await podIn(namespace, 'waits', ['Succeeded', 'Failed']);
    assert.equal(pod.status?.phase, 'Succeeded');
    assert.equal(readFileSync(cp.containerLogPath(pod, 'main'), 'utf8'), 't0k\n');
  });

  it("keeps a pod whose Secret volume cannot be set up ContainerCreating, with the kubelet's FailedMount Events", async () => {
    const namespace = 'mount-error';
    await createNamespace(namespace);
    await runPod(
      namespace,
      'mounts',
      [
        {
          name: 'main',
          image: 'busybox',
          command: ['cat', '/ca/ca.crt'],
          volumeMounts: [{ name: 'ca', mountPath: '/ca', readOnly: true }],
        },
      ],
      'Never',
      [{ name: 'ca', secret: { secretName: 'ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }],
    );
    const mountEvents = async () =>
      (
        await core.listNamespacedEvent({
          namespace,
          fieldSelector: 'involvedObject.name=mounts,reason=FailedMount',
        })
      ).items.map((e) => `${e.type} ${e.message}`);
    await until('FailedMount: not found', async () => ((await mountEvents()).length > 0 ? true : undefined));
    assert.deepEqual(await mountEvents(), [
      'Warning MountVolume.SetUp failed for volume "ca" : secret "ca" not found',
    ]);
    const pod = await core.readNamespacedPod({ namespace, name: 'mounts' });
    assert.equal(pod.status?.phase, 'Pending');
    assert.equal(pod.status?.containerStatuses?.[0]?.state?.waiting?.reason, 'ContainerCreating');
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'ca' }, stringData: { other: 'x' } },
    });
    await until('FailedMount: the key', async () => ((await mountEvents()).length > 1 ? true : undefined));
    assert.ok(
      (await mountEvents()).includes(
        'Warning MountVolume.SetUp failed for volume "ca" : references non-existent secret key: ca.crt',
      ),
    );
    await core.replaceNamespacedSecret({
      namespace,
      name: 'ca',
      body: { metadata: { name: 'ca' }, stringData: { 'ca.crt': 'PEM' } },
    });
    const done = await podIn(namespace, 'mounts', ['Succeeded', 'Failed']);
    assert.equal(done.status?.phase, 'Succeeded');
    assert.equal(readFileSync(cp.containerLogPath(done, 'main'), 'utf8'), 'PEM');
  });

  it('restarts a failing container under OnFailure until it succeeds', async () => {
    const namespace = 'restarts';
    await createNamespace(namespace);
    // Fails on the first run, succeeds on the second (the marker file survives the restart).
    const marker = `${cp.dir}/restart-marker`;
    await runPod(
      namespace,
      'flaky',
      [
        {
          name: 'main',
          image: 'busybox',
          command: ['sh', '-c', `[ -e ${marker} ] || { touch ${marker}; exit 1; }`],
        },
      ],
      'OnFailure',
    );
    const pod = await podIn(namespace, 'flaky', ['Succeeded', 'Failed']);
    assert.equal(pod.status?.phase, 'Succeeded');
    const cs = pod.status?.containerStatuses?.[0];
    assert.equal(cs?.restartCount, 1);
    assert.equal(cs?.lastState?.terminated?.exitCode, 1);
  });

  it('kills the process group when a running pod is deleted, after the grace period if need be', async () => {
    const namespace = 'deletion';
    await createNamespace(namespace);
    await runPod(namespace, 'sleeper', [{ name: 'main', image: 'busybox', command: ['sleep', '300'] }]);
    // This one ignores SIGTERM (and so does its child), so only SIGKILL ends it.
    await runPod(namespace, 'stubborn', [
      { name: 'main', image: 'busybox', command: ['sh', '-c', "trap '' TERM; sleep 300 & wait; sleep 300"] },
    ]);
    const sleeper = pidOf(await podIn(namespace, 'sleeper', ['Running']));
    const stubborn = pidOf(await podIn(namespace, 'stubborn', ['Running']));
    assert.ok(alive(sleeper) && alive(stubborn));

    const deleted = Date.now();
    await core.deleteNamespacedPod({ namespace, name: 'sleeper' });
    await core.deleteNamespacedPod({ namespace, name: 'stubborn', gracePeriodSeconds: 2 });
    await until(
      'sleeper gone',
      () => gone(() => core.readNamespacedPod({ namespace, name: 'sleeper' })),
      10_000,
    );
    assert.ok(await dead(-sleeper)); // the whole process group
    await until(
      'stubborn gone',
      () => gone(() => core.readNamespacedPod({ namespace, name: 'stubborn' })),
      15_000,
    );
    assert.ok(await dead(-stubborn));
    const took = Date.now() - deleted;
    assert.ok(took >= 1_800 && took < 10_000, `stubborn took ${took} ms to go`);
  });

  it('garbage-collects a child whose owner was deleted', async () => {
    const namespace = 'gc';
    await createNamespace(namespace);
    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: 'child',
          ownerReferences: [
            { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! },
          ],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ namespace, name: 'owner' });
    await until('child collected', () =>
      gone(() => core.readNamespacedConfigMap({ namespace, name: 'child' })),
    );
  });

  it('completes the deletion of a namespace with a running pod in it', async () => {
    const namespace = 'doomed';
    await createNamespace(namespace);
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'settings' } } });
    await runPod(namespace, 'runner', [{ name: 'main', image: 'busybox', command: ['sleep', '300'] }]);
    const pid = pidOf(await podIn(namespace, 'runner', ['Running']));
    await core.deleteNamespace({ name: namespace });
    await until('namespace gone', () => gone(() => core.readNamespace({ name: namespace })), 60_000);
    assert.ok(await dead(pid));
  });
});
