// A missing Secret or key, told by the kubelet (the container's CreateContainerConfigError, a
// FailedMount Event for the CA volume) and turned into SecretNotFound / SecretKeyNotFound with
// the Secret's name and the key, never a value. The messages are the kubelet's own
// (pkg/kubelet/kubelet_pods.go, pkg/volume/secret/secret.go at v1.36).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { validateExperimentSpec } from '../../src/api/validate-experiment.ts';
import { runToken } from '../../src/controller/prober-access.ts';
import {
  ProberSecretProblems,
  secretProblemOfConfigError,
  secretProblemOfMountEvent,
} from '../../src/controller/prober-secret-problems.ts';

function endpoint(tls: Record<string, unknown> = { mode: 'require' }) {
  const r = validateExperimentSpec(
    {
      trigger: { type: 'none' },
      endpoints: [
        {
          name: 'cluster',
          role: 'cluster',
          dialect: 'aurora-postgresql',
          host: 'db.example',
          database: 'app',
          tls,
          credentials: { secretRef: { name: 'pg-probe' } },
        },
      ],
    },
    '',
  );
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.value.endpoints[0]!;
}

test('CreateContainerConfigError: a missing Secret is SecretNotFound with its name and namespace', () => {
  assert.deepEqual(secretProblemOfConfigError('secret "pg-probe" not found', 'team', endpoint()), {
    reason: 'SecretNotFound',
    message: 'Secret pg-probe not found in namespace team: create it',
  });
});

test('CreateContainerConfigError: a missing key is SecretKeyNotFound naming the key', () => {
  const p = secretProblemOfConfigError(
    "couldn't find key password in Secret team/pg-probe",
    'team',
    endpoint(),
  );
  assert.deepEqual(p, {
    reason: 'SecretKeyNotFound',
    message: 'Secret pg-probe has no key password: add the key or set usernameKey/passwordKey',
  });
  assert.equal(secretProblemOfConfigError('failed to sync configmap cache', 'team', endpoint()), undefined);
});

test('FailedMount of the CA volume: not found and a missing key, other volumes ignored', () => {
  const ep = endpoint({ mode: 'verify-full', caSecretRef: { name: 'rds-ca', key: 'ca.crt' } });
  assert.deepEqual(
    secretProblemOfMountEvent(
      'MountVolume.SetUp failed for volume "ca-bundle" : secret "rds-ca" not found',
      'team',
      ep,
      'ca-bundle',
    ),
    {
      reason: 'SecretNotFound',
      message: 'Secret rds-ca not found in namespace team: create it (tls.caSecretRef, the CA bundle)',
    },
  );
  assert.deepEqual(
    secretProblemOfMountEvent(
      'MountVolume.SetUp failed for volume "ca-bundle" : references non-existent secret key: ca.crt',
      'team',
      ep,
      'ca-bundle',
    )?.reason,
    'SecretKeyNotFound',
  );
  assert.equal(
    secretProblemOfMountEvent(
      'MountVolume.SetUp failed for volume "other" : secret "x" not found',
      'team',
      ep,
      'ca-bundle',
    ),
    undefined,
  );
});

test('a CA volume waiting in ContainerCreating: its FailedMount Events, listed at most every 3 s', async () => {
  const ep = endpoint({ mode: 'verify-full', caSecretRef: { name: 'rds-ca', key: 'ca.crt' } });
  let nowMs = Date.parse('2026-01-01T00:00:10Z');
  const lists: string[] = [];
  const kube = {
    core: {
      listNamespacedEvent: async (req: { namespace: string; fieldSelector?: string }) => {
        lists.push(`${req.namespace} ${req.fieldSelector}`);
        return {
          items: [
            {
              message: 'MountVolume.SetUp failed for volume "ca-bundle" : secret "rds-ca" not found',
              lastTimestamp: new Date('2026-01-01T00:00:02Z'),
            },
            {
              message:
                'MountVolume.SetUp failed for volume "ca-bundle" : references non-existent secret key: ca.crt',
              lastTimestamp: new Date('2026-01-01T00:00:08Z'),
            },
          ],
        };
      },
    },
  } as never;
  const problems = new ProberSecretProblems(kube, () => nowMs);
  const pod = (created: string): V1Pod => ({
    metadata: { name: 'x-probe-cluster', namespace: 'team', uid: 'p1', creationTimestamp: new Date(created) },
    status: {
      phase: 'Pending',
      containerStatuses: [{ state: { waiting: { reason: 'ContainerCreating' } } } as never],
    },
  });
  assert.equal(await problems.problem(pod('2026-01-01T00:00:09Z'), ep), undefined, 'within the grace');
  assert.equal(lists.length, 0);
  const p = await problems.problem(pod('2026-01-01T00:00:00Z'), ep);
  assert.equal(p?.reason, 'SecretKeyNotFound', 'the newest Event wins');
  assert.deepEqual(lists, ['team involvedObject.uid=p1,reason=FailedMount']);
  nowMs += 1000;
  await problems.problem(pod('2026-01-01T00:00:00Z'), ep);
  assert.equal(lists.length, 1, 'no second list within 3 s');
  nowMs += 3000;
  await problems.problem(pod('2026-01-01T00:00:00Z'), ep);
  assert.equal(lists.length, 2);
});

test('run tokens: 32 bytes, the same for a uid under one key, different across uids and keys', () => {
  const key = Buffer.alloc(32, 7);
  const a = runToken(key, 'uid-a');
  assert.equal(Buffer.from(a, 'base64url').length, 32);
  assert.equal(runToken(key, 'uid-a'), a);
  assert.notEqual(runToken(key, 'uid-b'), a);
  assert.notEqual(runToken(Buffer.alloc(32, 8), 'uid-a'), a);
});
