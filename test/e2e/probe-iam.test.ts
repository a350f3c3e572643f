// IAM database authentication against real servers that check the tokens: PostgreSQL (pg_hba
// `pam`) and MariaDB (the PAM plugin with the clear-text client plugin), both with TLS on, each
// asking pam_exec to run the lab's verifier (src/lab/iam-verify.ts) on the token the probe sent.
// Tokens come from @aws-sdk/rds-signer with the default credential chain (environment here).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it, mock } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { validateExperimentManifest } from '../../src/api/validate-experiment.ts';
import { proberPod } from '../../src/controller/prober-pods.ts';
import { LAB_ZONE, startDns, stopDns } from '../../src/lab/dns.ts';
import {
  enableMariaIam,
  enablePgIam,
  type IamService,
  installIamService,
  removeIamServices,
} from '../../src/lab/iam.ts';
import { LAB_IAM_CREDENTIALS, LAB_IAM_REGION, LAB_IAM_USER } from '../../src/lab/iam-token.ts';
import * as maria from '../../src/lab/mariadb.ts';
import * as pg from '../../src/lab/postgres.ts';
import { defaultSigner, IamTokenCache, type SignIamToken } from '../../src/probe/iam-auth.ts';
import { createProbeDriver } from '../../src/probe/sql-driver.ts';
import type { AttemptOutcome, Dialect, ProbeDriver } from '../../src/probe/types.ts';
import { failwatch, MAIN } from '../helpers/cli.ts';
import { labEndpoint, mariaInstance, pgInstance, stopAll, TempDir } from '../helpers/probe-servers.ts';

const API_TOKEN = 'iam-e2e-api-token-0123456789abcdef';

const dir = new TempDir();
const pgServer = pgInstance(dir, 'pg-iam', '127.0.40.51');
const myServer = mariaInstance(dir, 'my-iam', '127.0.41.51', 51);
const dns = { dir: dir.sub('dns'), host: '127.0.0.1', port: 15351 };
const PG_NAME = `pg-iam.${LAB_ZONE}`;
const MY_NAME = `my-iam.${LAB_ZONE}`;
const services: Partial<Record<'postgresql' | 'mysql', IamService>> = {};
let dnsPid = 0;

function selfSignedCert(into: string, owner: string): { cert: string; key: string } {
  const cert = `${into}/server.crt`;
  const key = `${into}/server.key`;
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=failwatch-iam-test',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'pipe' },
  );
  const { uid, gid } = pg.userIds(owner);
  for (const f of [cert, key]) chownSync(f, uid, gid);
  return { cert, key };
}

before(async () => {
  // The default credential chain reads these (never real AWS credentials).
  process.env.AWS_ACCESS_KEY_ID = LAB_IAM_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = LAB_IAM_CREDENTIALS.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  services.postgresql = installIamService(dir.path, 'postgresql', [`${PG_NAME}:${pgServer.port}`]);
  services.mysql = installIamService(dir.path, 'mysql', [`${MY_NAME}:${myServer.port}`]);
  await Promise.all([
    (async () => {
      await pg.initPrimary(pgServer);
      const { cert, key } = selfSignedCert(pgServer.runDir, pg.PG_USER);
      await pg.psqlLocal(pgServer, `ALTER SYSTEM SET ssl_cert_file = '${cert}'`);
      await pg.psqlLocal(pgServer, `ALTER SYSTEM SET ssl_key_file = '${key}'`);
      await pg.psqlLocal(pgServer, 'ALTER SYSTEM SET ssl = on');
      await enablePgIam(pgServer, services.postgresql!.name); // reloads
    })(),
    (async () => {
      // initPrimary creates the run directory; the certificates go next to it.
      const tlsDir = dir.sub('my-iam-tls');
      execFileSync('mkdir', ['-p', tlsDir]);
      const { cert, key } = selfSignedCert(tlsDir, maria.MYSQL_USER);
      myServer.extraArgs = [`--ssl-cert=${cert}`, `--ssl-key=${key}`];
      await maria.initPrimary(myServer);
      await enableMariaIam(myServer, services.mysql!.name);
    })(),
  ]);
  dnsPid = await startDns(dns, [
    { name: PG_NAME, type: 'A', value: pgServer.host },
    { name: MY_NAME, type: 'A', value: myServer.host },
  ]);
});

after(async () => {
  mock.timers.reset();
  await stopDns(dnsPid);
  await stopAll([pgServer], [myServer]);
  removeIamServices(dir.path);
  dir.remove();
});

const ENGINES: { engine: 'postgresql' | 'mysql'; dialect: Dialect; name: string; port: number }[] = [
  { engine: 'postgresql', dialect: 'aurora-postgresql', name: PG_NAME, port: pgServer.port },
  { engine: 'mysql', dialect: 'aurora-mysql', name: MY_NAME, port: myServer.port },
];

function iamDriver(e: (typeof ENGINES)[number], tokens: IamTokenCache): ProbeDriver {
  return createProbeDriver(
    labEndpoint(
      e.dialect,
      { host: e.name, port: e.port },
      {
        user: LAB_IAM_USER,
        password: 'not-used-with-iam',
        iam: { region: LAB_IAM_REGION, tokens },
        tls: { mode: 'require' },
        dnsServer: `${dns.host}:${dns.port}`,
        connectTimeoutMs: 5000,
        queryTimeoutMs: 5000,
      },
    ),
    `iam-${e.engine}`,
  );
}

/** The verifier's lines since `from` (pam_exec's log of that engine's service). */
function verifierLines(engine: 'postgresql' | 'mysql', from = 0): string[] {
  return readFileSync(services[engine]!.logFile, 'utf8')
    .slice(from)
    .split('\n')
    .filter((l) => l.includes('failwatch-lab-iam'));
}
const logSize = (engine: 'postgresql' | 'mysql') => readFileSync(services[engine]!.logFile, 'utf8').length;

async function oneAttempt(e: (typeof ENGINES)[number], sign: SignIamToken): Promise<AttemptOutcome> {
  const driver = iamDriver(e, new IamTokenCache({ sign }));
  try {
    return await driver.attempt('read', { seq: 0, clientMs: Date.now() });
  } finally {
    await driver.close();
  }
}

for (const e of ENGINES) {
  describe(`IAM tokens checked by ${e.engine}`, () => {
    it('logs in with a good token on every new connection, signing it once', async () => {
      const tokens = new IamTokenCache(); // default chain: the environment's credentials
      const driver = iamDriver(e, tokens);
      const from = logSize(e.engine);
      const N = 8;
      try {
        await driver.setup(true);
        const outcomes: AttemptOutcome[] = [];
        for (let seq = 1; seq <= N; seq++) {
          outcomes.push(await driver.attempt('write', { seq, clientMs: Date.now() }));
          outcomes.push(await driver.attempt('read', { seq, clientMs: Date.now() }));
        }
        assert.deepEqual(
          outcomes.map((o) => o.class),
          Array(2 * N).fill('ok'),
          outcomes.map((o) => o.message).join('\n'),
        );
        const rows = await driver.readBack(`cluster`);
        assert.equal(rows.length, N);
      } finally {
        await driver.close();
      }
      assert.equal(tokens.signCount, 1);
      // Every connection went through the verifier: setup, 2N attempts, read-back.
      const lines = verifierLines(e.engine, from);
      assert.equal(lines.filter((l) => l.endsWith(': accepted')).length, 2 * N + 2, lines.join('\n'));
      assert.equal(lines.filter((l) => l.includes('rejected')).length, 0, lines.join('\n'));
    });

    it('is refused an expired token (signed with a clock 16 minutes behind) as auth_error', async () => {
      const from = logSize(e.engine);
      const signer = defaultSigner();
      const o = await oneAttempt(e, async (r) => {
        mock.timers.enable({ apis: ['Date'], now: Date.now() - 16 * 60_000 });
        try {
          return await signer(r);
        } finally {
          mock.timers.reset();
        }
      });
      assert.equal(o.class, 'auth_error', o.message);
      assert.match(o.message ?? '', /IAM token for failwatch_iam@.* rejected: check/);
      assert.doesNotMatch(o.message ?? '', /X-Amz-Signature/);
      const lines = verifierLines(e.engine, from);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(
        lines[0]!,
        /rejected \(expired\): token signed at .*, valid 900 s, expired (5[5-9]|6[0-9]) s ago/,
      );
    });

    it('is refused a token signed with the wrong secret as auth_error', async () => {
      const from = logSize(e.engine);
      const o = await oneAttempt(
        e,
        defaultSigner({ accessKeyId: LAB_IAM_CREDENTIALS.accessKeyId, secretAccessKey: 'wrong-secret' }),
      );
      assert.equal(o.class, 'auth_error', o.message);
      // PostgreSQL reports a failed PAM login as 28000 (28P01 is for password methods).
      assert.equal(o.code, e.engine === 'postgresql' ? '28000' : 'ER_ACCESS_DENIED_ERROR');
      const lines = verifierLines(e.engine, from);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, /rejected \(signature\): signature does not match/);
    });

    it('is refused a token signed for the resolved address instead of the endpoint name', async () => {
      const from = logSize(e.engine);
      const signer = defaultSigner();
      const address = e.engine === 'postgresql' ? pgServer.host : myServer.host;
      const o = await oneAttempt(e, (r) => signer({ ...r, host: address }));
      assert.equal(o.class, 'auth_error', o.message);
      assert.match(verifierLines(e.engine, from)[0] ?? '', /rejected \(host\): token signed for 127\.0\.4/);
    });
  });
}

describe('IAM tokens and the servers', () => {
  it('PostgreSQL logs pam_exec exit codes for rejected tokens, and never the token', () => {
    const log = readFileSync(`${pgServer.runDir}/postgres.log`, 'utf8');
    assert.match(log, /error from underlying PAM layer: .* failed: exit code 16/); // expired
    assert.match(log, /error from underlying PAM layer: .* failed: exit code 15/); // signature
    assert.match(log, /PAM authentication failed for user "failwatch_iam"/);
    for (const engine of ['postgresql', 'mysql'] as const)
      assert.doesNotMatch(readFileSync(services[engine]!.logFile, 'utf8'), /X-Amz-Signature|Action=connect/);
    assert.doesNotMatch(log, /X-Amz-Signature/);
  });

  it('PostgreSQL refuses IAM users without TLS, and their password login', async () => {
    const driver = createProbeDriver(
      labEndpoint('postgresql', pgServer, { user: LAB_IAM_USER, password: 'anything' }),
      'iam-plain',
    );
    try {
      const o = await driver.attempt('read', { seq: 0, clientMs: Date.now() });
      assert.equal(o.class, 'auth_error', o.message);
      assert.match(o.message ?? '', /pg_hba.conf rejects connection/);
    } finally {
      await driver.close();
    }
  });
});

describe('IAM tokens in a prober pod', () => {
  it('`failwatch probe` with the environment the controller gives an IAM endpoint: no password, only AWS credentials', async () => {
    const manifest = validateExperimentManifest({
      apiVersion: 'failwatch.io/v1alpha1',
      kind: 'FailoverExperiment',
      metadata: { name: 'iam', namespace: 'team-a' },
      spec: {
        target: { clusterIdentifier: 'lab-pg', region: LAB_IAM_REGION },
        trigger: { type: 'none' },
        endpoints: [
          {
            name: 'cluster',
            dialect: 'aurora-postgresql',
            host: PG_NAME,
            port: pgServer.port,
            database: pg.LAB_DB_NAME,
            interval: '250ms',
            connectTimeout: '5s', // docs/lab.md: the lab's IAM check is a process per login
            dns: { server: `${dns.host}:${dns.port}` },
            credentials: { iam: { username: LAB_IAM_USER, serviceAccountName: 'prober' } },
          },
        ],
      },
    });
    assert.ok(manifest.ok, JSON.stringify(!manifest.ok && manifest.errors));
    const spec = manifest.value.spec;
    const pod = proberPod(
      { namespace: 'team-a', name: 'iam', uid: 'u', runId: 'iam-pod', targetRegion: spec.target?.region },
      spec.endpoints[0]!,
      'img',
      { name: 'iam-run-token', key: 'token' },
    );
    const env = pod.spec!.containers[0]!.env!;
    // No database Secret: only the run's API token comes from a Secret.
    assert.deepEqual(
      env.filter((e) => e.valueFrom?.secretKeyRef).map((e) => e.name),
      ['FAILWATCH_API_TOKEN'],
    );
    const listen = '127.0.40.52:19151';
    const from = logSize('postgresql');
    const child = spawn(process.execPath, [MAIN, 'probe'], {
      env: {
        PATH: process.env.PATH,
        ...Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value])),
        // What IRSA / Pod Identity would provide; the environment provider stands in here.
        AWS_ACCESS_KEY_ID: LAB_IAM_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LAB_IAM_CREDENTIALS.secretAccessKey,
        FAILWATCH_LISTEN: listen,
        FAILWATCH_API_TOKEN: API_TOKEN,
      },
    });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      let status: { state?: string; message?: string } = {};
      for (let i = 0; i < 100 && status.state !== 'probing'; i++) {
        await sleep(200);
        status = await fetch(`http://${listen}/status`, { headers: { authorization: `Bearer ${API_TOKEN}` } })
          .then((r) => r.json() as Promise<{ state?: string }>)
          .catch(() => ({}));
      }
      assert.equal(status.state, 'probing', `${JSON.stringify(status)}\n${output}`);
      // Every login succeeds; on a busy 2-core machine (a process per IAM login) some take
      // longer than the slow threshold, so wait (up to 20 s) for 10 that got in.
      let classes: string[] = [];
      for (let i = 0; i < 40; i++) {
        await sleep(500);
        const page = (await (
          await fetch(`http://${listen}/samples?from=0`, {
            headers: { authorization: `Bearer ${API_TOKEN}` },
          })
        ).json()) as {
          samples: { class: string }[];
        };
        classes = page.samples.map((s) => s.class);
        if (classes.filter((c) => c === 'ok' || c === 'slow').length >= 10) break;
      }
      assert.ok(
        classes.filter((c) => c === 'ok' || c === 'slow').length >= 10,
        `${classes.length} samples: ${classes.join(', ')}`,
      );
      assert.deepEqual(
        classes.filter((c) => c !== 'ok' && c !== 'slow'),
        [],
        'no failed attempt',
      );
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const accepted = verifierLines('postgresql', from).filter((l) => l.endsWith(': accepted')).length;
    assert.ok(accepted >= 10, `${accepted} logins accepted`);
    assert.doesNotMatch(output, /X-Amz-Signature|Action=connect/);
  });
});

describe('IAM tokens with failwatch run', () => {
  it('runs an experiment whose MySQL endpoint logs in with IAM tokens from the environment', async () => {
    const file = dir.sub('iam-run.yaml');
    const out = dir.sub('iam-run.json');
    writeFileSync(
      file,
      stringify({
        apiVersion: 'failwatch.io/v1alpha1',
        kind: 'FailoverExperiment',
        metadata: { name: 'iam-run' },
        spec: {
          trigger: { type: 'none' },
          baseline: { duration: '2s' },
          observe: { recoveredFor: '1s', maxDuration: '3s' },
          audit: { lostWrites: true },
          endpoints: [
            {
              name: 'cluster',
              dialect: 'aurora-mysql',
              host: MY_NAME,
              port: myServer.port,
              database: pg.LAB_DB_NAME,
              interval: '250ms',
              connectTimeout: '5s', // docs/lab.md: the lab's IAM check is a process per login
              // and a fresh IAM login here can pass 500 ms (the baseline counts slow as bad)
              slowThreshold: '2s',
              queryTimeout: '5s',
              dns: { server: `${dns.host}:${dns.port}` },
              credentials: { iam: { username: LAB_IAM_USER, region: LAB_IAM_REGION } },
            },
          ],
        },
      }),
    );
    const from = logSize('mysql');
    const r = await failwatch(['run', file, '--output', out], {
      AWS_ACCESS_KEY_ID: LAB_IAM_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LAB_IAM_CREDENTIALS.secretAccessKey,
    });
    const doc = JSON.parse(readFileSync(out, 'utf8')) as { run: { end: string; message: string } };
    assert.equal(doc.run.end, 'Completed', `${doc.run.message}\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    const accepted = verifierLines('mysql', from).filter((l) => l.endsWith(': accepted')).length;
    assert.ok(accepted >= 12, `${accepted} logins accepted`);
    assert.doesNotMatch(r.stdout + r.stderr, /X-Amz-Signature|Action=connect/);
  });
});
