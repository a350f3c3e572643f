// tls.caSecretRef in a prober pod: the Secret's one key mounted read-only and FAILWATCH_CA_FILE
// naming it; endpoints without it get neither. The pod's env is what `failwatch probe` parses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateExperimentSpec } from '../../src/api/validate-experiment.ts';
import { CA_MOUNT_PATH, proberPod, setupHint } from '../../src/controller/prober-pods.ts';
import { parseProbePodEnv } from '../../src/server/probe-pod-env.ts';

function endpoints(tls: Record<string, unknown>[]) {
  const r = validateExperimentSpec(
    {
      trigger: { type: 'none' },
      endpoints: tls.map((t, i) => ({
        name: `e${i}`,
        role: 'cluster',
        dialect: 'aurora-postgresql',
        host: 'db.example',
        database: 'app',
        tls: t,
        credentials: { secretRef: { name: 'pg-probe' } },
      })),
    },
    '',
  );
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.value.endpoints;
}

const exp = { namespace: 'payments', name: 'x', uid: 'u1', runId: 'r1' };
const TOKEN = { name: 'x-run-token', key: 'token' };

test('caSecretRef: a read-only secret volume with one item, mounted, and FAILWATCH_CA_FILE', () => {
  const [withCa, without] = endpoints([
    { mode: 'verify-full', caSecretRef: { name: 'rds-ca-bundle', key: 'global-bundle.pem' } },
    { mode: 'require' },
  ]);
  const pod = proberPod(exp, withCa!, 'failwatch:test', TOKEN);
  assert.deepEqual(pod.spec!.volumes, [
    {
      name: 'ca-bundle',
      secret: {
        secretName: 'rds-ca-bundle',
        items: [{ key: 'global-bundle.pem', path: 'ca.crt' }],
        defaultMode: 0o444,
      },
    },
  ]);
  const c = pod.spec!.containers[0]!;
  assert.deepEqual(c.volumeMounts, [{ name: 'ca-bundle', mountPath: CA_MOUNT_PATH, readOnly: true }]);
  const caEnv = c.env!.find((e) => e.name === 'FAILWATCH_CA_FILE');
  assert.equal(caEnv?.value, `${CA_MOUNT_PATH}/ca.crt`);
  assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
  // What the pod's own parser makes of it (secretKeyRef values as the kubelet resolves them).
  const env = Object.fromEntries(c.env!.map((e) => [e.name, e.value ?? 'from-secret-0123456789abcdef']));
  assert.equal(parseProbePodEnv(env).caFile, `${CA_MOUNT_PATH}/ca.crt`);

  const plain = proberPod(exp, without!, 'failwatch:test', TOKEN);
  assert.equal(plain.spec!.volumes, undefined);
  assert.equal(plain.spec!.containers[0]!.volumeMounts, undefined);
  assert.ok(!plain.spec!.containers[0]!.env!.some((e) => e.name === 'FAILWATCH_CA_FILE'));
});

test('a TLS setup failure points at the TLS settings, others at the credentials Secret', () => {
  const [e] = endpoints([{ mode: 'verify-full', caSecretRef: { name: 'rds-ca-bundle' } }]);
  assert.equal(
    setupHint(e!, 'tls_error'),
    'check tls.mode verify-full, the CA bundle in Secret rds-ca-bundle key ca.crt and that the certificate names host db.example',
  );
  assert.equal(setupHint(e!, 'auth_error'), 'check Secret pg-probe');
});

test('the prober container gets V8 limits sized for its memory limit: old space under half of it', () => {
  const [endpoint] = endpoints([{ mode: 'require' }]);
  const c = proberPod(exp, endpoint!, 'failwatch:test', TOKEN).spec!.containers[0]!;
  assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '192Mi' }, limits: { memory: '384Mi' } });
  const nodeOptions = c.env!.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
  const oldSpaceMiB = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions)?.[1]);
  assert.ok(oldSpaceMiB > 0 && oldSpaceMiB <= 384 / 2, `NODE_OPTIONS ${nodeOptions}`);
});
