// IAM database authentication without a database: the token cache, the lab's token check
// against tokens from the real @aws-sdk/rds-signer, the spec's rules and the prober pod.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateExperimentManifest } from '../../src/api/validate-experiment.ts';
import { proberPod } from '../../src/controller/prober-pods.ts';
import { credentialsFromEnv, probeConfigFor } from '../../src/engine/endpoint-config.ts';
import {
  type IamTokenExpectation,
  LAB_IAM_CREDENTIALS,
  LAB_IAM_REGION,
  verifyIamToken,
} from '../../src/lab/iam-token.ts';
import { defaultSigner, IamTokenCache, type IamTokenRequest } from '../../src/probe/iam-auth.ts';
import { parseProbePodEnv } from '../../src/server/probe-pod-env.ts';

const REQUEST: IamTokenRequest = { host: 'db.lab', port: 5432, user: 'probe_iam', region: 'us-east-1' };

function countingCache(nowRef: { ms: number }, refreshAfterMs?: number) {
  const signed: IamTokenRequest[] = [];
  const cache = new IamTokenCache({
    sign: async (r) => {
      signed.push(r);
      return `token-${signed.length}`;
    },
    now: () => nowRef.ms,
    ...(refreshAfterMs ? { refreshAfterMs } : {}),
  });
  return { cache, signed };
}

describe('IAM token cache', () => {
  it('signs once and reuses the token for 10 minutes, then signs again', async () => {
    const now = { ms: 1_000_000 };
    const { cache, signed } = countingCache(now);
    const tokens = [];
    for (let i = 0; i < 50; i++) {
      tokens.push(await cache.token(REQUEST));
      now.ms += 10_000; // 50 logins over 8 min 20 s
    }
    assert.equal(signed.length, 1);
    assert.deepEqual(new Set(tokens), new Set(['token-1']));
    now.ms = 1_000_000 + 10 * 60_000;
    assert.equal(await cache.token(REQUEST), 'token-2');
    assert.equal(cache.signCount, 2);
  });

  it('signs once for concurrent logins, and per host, port, user and region', async () => {
    const { cache, signed } = countingCache({ ms: 0 });
    await Promise.all(Array.from({ length: 20 }, () => cache.token(REQUEST)));
    assert.equal(signed.length, 1);
    await cache.token({ ...REQUEST, host: 'other.lab' });
    await cache.token({ ...REQUEST, port: 5433 });
    await cache.token({ ...REQUEST, user: 'other' });
    await cache.token({ ...REQUEST, region: 'eu-west-1' });
    assert.equal(signed.length, 5);
  });

  it('drops a token the server rejected, but not a newer one', async () => {
    const { cache, signed } = countingCache({ ms: 0 });
    const first = await cache.token(REQUEST);
    await cache.rejected(REQUEST, first);
    const second = await cache.token(REQUEST);
    assert.equal(second, 'token-2');
    await cache.rejected(REQUEST, first); // a late rejection of the old token
    assert.equal(await cache.token(REQUEST), 'token-2');
    assert.equal(signed.length, 2);
  });

  it('does not cache a failed signing', async () => {
    let fail = true;
    const cache = new IamTokenCache({
      sign: async () => {
        if (fail) throw new Error('no credentials');
        return 'token';
      },
    });
    await assert.rejects(cache.token(REQUEST), /no credentials/);
    fail = false;
    assert.equal(await cache.token(REQUEST), 'token');
  });
});

describe("the lab's IAM token check (tokens from @aws-sdk/rds-signer)", () => {
  const host = 'lab-pg.cluster-cfwlab0.lab.failwatch.local';
  const expect = (over: Partial<IamTokenExpectation> = {}): IamTokenExpectation => ({
    ...LAB_IAM_CREDENTIALS,
    region: LAB_IAM_REGION,
    user: 'failwatch_iam',
    hosts: [`${host}:5432`],
    nowMs: Date.now(),
    ...over,
  });
  const sign = (
    over: Partial<IamTokenRequest> = {},
    credentials: { accessKeyId: string; secretAccessKey: string } = LAB_IAM_CREDENTIALS,
  ) =>
    defaultSigner(credentials)({ host, port: 5432, user: 'failwatch_iam', region: LAB_IAM_REGION, ...over });

  it('accepts a good token for 15 minutes and not after', async () => {
    const token = await sign();
    assert.ok(token.startsWith(`${host}:5432/?Action=connect&DBUser=failwatch_iam&`), token.slice(0, 60));
    assert.deepEqual(verifyIamToken(token, expect()), { ok: true });
    assert.deepEqual(verifyIamToken(token, expect({ nowMs: Date.now() + 890_000 })), { ok: true });
    const late = verifyIamToken(token, expect({ nowMs: Date.now() + 902_000 }));
    assert.equal(late.ok ? 'ok' : late.reason, 'expired');
  });

  const rejections: [string, () => Promise<string>, Partial<IamTokenExpectation>, string][] = [
    ['a wrong secret', () => sign({}, { ...LAB_IAM_CREDENTIALS, secretAccessKey: 'wrong' }), {}, 'signature'],
    [
      'another access key',
      () => sign({}, { ...LAB_IAM_CREDENTIALS, accessKeyId: 'AKIAOTHER' }),
      {},
      'unknown-access-key',
    ],
    ['another region', () => sign({ region: 'eu-west-1' }), {}, 'region'],
    ['another host', () => sign({ host: 'evil.example' }), {}, 'host'],
    ['another port', () => sign({ port: 5433 }), {}, 'host'],
    ['another user', () => sign({ user: 'postgres' }), {}, 'user'],
    [
      'an altered user',
      async () => (await sign()).replace('DBUser=failwatch_iam', 'DBUser=postgres'),
      {
        user: 'postgres',
      },
      'signature',
    ],
    ['a token from the future', () => sign(), { nowMs: Date.now() - 600_000 }, 'not-yet-valid'],
    ['a password', async () => 'failwatch-lab', {}, 'malformed'],
  ];
  for (const [what, make, over, reason] of rejections)
    it(`rejects ${what} as ${reason}`, async () => {
      const verdict = verifyIamToken(await make(), expect(over));
      assert.equal(verdict.ok ? 'ok' : verdict.reason, reason);
    });
});

function manifest(endpoint: Record<string, unknown>, target?: Record<string, unknown>) {
  return {
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverExperiment',
    metadata: { name: 'iam', namespace: 'db' },
    spec: {
      ...(target ? { target } : {}),
      trigger: { type: target ? 'aws-rds' : 'none' },
      endpoints: [
        { name: 'cluster', dialect: 'aurora-mysql', host: 'db.example', database: 'app', ...endpoint },
      ],
    },
  };
}

describe('credentials.iam in the spec', () => {
  const iam = { iam: { username: 'probe_iam' } };

  it('is accepted alone, with TLS require by default', () => {
    const r = validateExperimentManifest(manifest({ credentials: iam }));
    assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
    assert.equal(r.value.spec.endpoints[0]!.tls.mode, 'require');
  });

  for (const [what, credentials] of [
    ['with secretRef', { ...iam, secretRef: { name: 's' } }],
    ['with username', { ...iam, username: 'u', passwordEnv: 'P' }],
  ] as const)
    it(`is rejected ${what}: exactly one way to log in`, () => {
      const r = validateExperimentManifest(manifest({ credentials }));
      assert.ok(!r.ok);
      assert.deepEqual(
        r.errors.map((e) => e.path),
        ['spec.endpoints[0].credentials'],
      );
      assert.match(r.errors[0]!.message, /exactly one of secretRef .* username .* iam/);
    });

  it('is rejected with tls.mode disable, at tls.mode', () => {
    const r = validateExperimentManifest(manifest({ credentials: iam, tls: { mode: 'disable' } }));
    assert.ok(!r.ok);
    assert.deepEqual(
      r.errors.map((e) => [e.path, e.message]),
      [
        [
          'spec.endpoints[0].tls.mode',
          'IAM database authentication sends its token as a clear-text password: it needs TLS (tls.mode require or verify-full)',
        ],
      ],
    );
  });

  it('carries the same rules as CEL in the CRD', async () => {
    const { CRD_FILES } = await import('../../src/api/crd-manifests.ts');
    const text = JSON.stringify(CRD_FILES['failwatch.io_failoverexperiments.yaml']!());
    assert.ok(
      text.includes('[has(self.secretRef), has(self.username), has(self.iam)].filter(x, x).size() == 1'),
    );
    assert.ok(
      text.includes(
        "!has(self.credentials.iam) || !has(self.tls) || !has(self.tls.mode) || self.tls.mode != 'disable'",
      ),
    );
    assert.ok(text.includes('"fieldPath":".tls.mode"'));
  });

  it("defaults the region to the target's, then to AWS_REGION, and names the user", () => {
    const ok = (m: ReturnType<typeof manifest>) => {
      const r = validateExperimentManifest(m);
      assert.ok(r.ok);
      return r.value.spec;
    };
    const spec = ok(manifest({ credentials: iam }, { clusterIdentifier: 'c', region: 'ap-northeast-1' }));
    const endpoint = spec.endpoints[0]!;
    const c = credentialsFromEnv(endpoint, {}, spec.target?.region);
    assert.deepEqual(c, { user: 'probe_iam', password: '', iam: { region: 'ap-northeast-1' } });
    assert.deepEqual(probeConfigFor(endpoint, c).iam, { region: 'ap-northeast-1' });
    assert.equal(credentialsFromEnv(endpoint, { AWS_REGION: 'eu-west-1' }).iam?.region, 'eu-west-1');
    const own = ok(manifest({ credentials: { iam: { ...iam.iam, region: 'us-west-2' } } })).endpoints[0]!;
    assert.equal(
      credentialsFromEnv(own, { AWS_REGION: 'eu-west-1' }, 'ap-northeast-1').iam?.region,
      'us-west-2',
    );
    assert.throws(() => credentialsFromEnv(endpoint, {}), /needs a region: set credentials.iam.region/);
  });
});

const TOKEN = { name: 'iam-run-token', key: 'token' };
const API_TOKEN = 'iam-unit-api-token-0123456789abcdef';

describe('prober pods with credentials.iam', () => {
  const exp = { namespace: 'db', name: 'iam', uid: 'u', runId: 'r' };
  const r = validateExperimentManifest(
    manifest({ credentials: { iam: { username: 'probe_iam', serviceAccountName: 'failwatch-prober' } } }),
  );
  assert.ok(r.ok);
  const endpoint = r.value.spec.endpoints[0]!;

  it('get no database Secret, run as the named ServiceAccount and carry the resolved region', () => {
    const pod = proberPod({ ...exp, targetRegion: 'ap-northeast-1' }, endpoint, 'img', TOKEN);
    assert.equal(pod.spec?.serviceAccountName, 'failwatch-prober');
    const env = pod.spec!.containers[0]!.env!;
    // No database Secret: only the run's API token comes from a Secret.
    assert.deepEqual(
      env.filter((e) => e.valueFrom?.secretKeyRef).map((e) => e.name),
      ['FAILWATCH_API_TOKEN'],
    );
    const podEnv = {
      ...Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value])),
      FAILWATCH_API_TOKEN: API_TOKEN,
    };
    const config = parseProbePodEnv(podEnv);
    assert.deepEqual(config.credentials(), {
      user: 'probe_iam',
      password: '',
      iam: { region: 'ap-northeast-1' },
    });
  });

  it('need a region from somewhere', () => {
    const podEnv = {
      ...Object.fromEntries(
        proberPod(exp, endpoint, 'img', TOKEN)
          .spec!.containers[0]!.env!.filter((e) => e.value !== undefined)
          .map((e) => [e.name, e.value]),
      ),
      FAILWATCH_API_TOKEN: API_TOKEN,
    };
    assert.throws(() => parseProbePodEnv(podEnv), /needs a region/);
    assert.equal(
      parseProbePodEnv({ ...podEnv, AWS_REGION: 'eu-west-1' }).credentials().iam?.region,
      'eu-west-1',
    );
  });
});
