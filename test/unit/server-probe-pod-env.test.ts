import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseListenAddress } from '../../src/server/http.ts';
import { ProbePodConfigError, parseProbePodEnv } from '../../src/server/probe-pod-env.ts';

const ENDPOINT = { name: 'cluster', dialect: 'aurora-postgresql', host: 'db.example', database: 'app' };

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    FAILWATCH_RUN_ID: 'run-1',
    FAILWATCH_EXPERIMENT: 'team-a/weekly',
    FAILWATCH_ENDPOINT: JSON.stringify(ENDPOINT),
    FAILWATCH_DB_USERNAME: 'probe',
    FAILWATCH_DB_PASSWORD: 'pw',
    FAILWATCH_API_TOKEN: 'token-0123456789abcdef',
    ...extra,
  };
}

function problemsOf(e: NodeJS.ProcessEnv): string[] {
  try {
    parseProbePodEnv(e);
  } catch (err) {
    assert.ok(err instanceof ProbePodConfigError);
    return err.problems;
  }
  assert.fail('expected a ProbePodConfigError');
}

describe('prober pod environment', () => {
  it('requires the run token (env or file) and a metrics port apart from the API', () => {
    assert.equal(parseProbePodEnv(env()).apiToken, 'token-0123456789abcdef');
    assert.equal(parseProbePodEnv(env()).metricsPort, 9091);
    assert.deepEqual(problemsOf(env({ FAILWATCH_API_TOKEN: undefined })), [
      'FAILWATCH_API_TOKEN (or FAILWATCH_API_TOKEN_FILE) is required: the API answers only bearers of the run token',
    ]);
    assert.match(problemsOf(env({ FAILWATCH_API_TOKEN: 'short' }))[0]!, /at least 16 printable/);
    assert.match(
      problemsOf(env({ FAILWATCH_METRICS_PORT: '9090' }))[0]!,
      /must differ from the API port 9090/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'fw-token-'));
    try {
      writeFileSync(join(dir, 'token'), 'from-a-file-0123456789\n');
      const config = parseProbePodEnv(
        env({ FAILWATCH_API_TOKEN: undefined, FAILWATCH_API_TOKEN_FILE: join(dir, 'token') }),
      );
      assert.equal(config.apiToken, 'from-a-file-0123456789');
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('applies the spec defaults to the endpoint and splits namespace/name', () => {
    const config = parseProbePodEnv(env());
    assert.equal(config.namespace, 'team-a');
    assert.equal(config.experiment, 'weekly');
    assert.equal(config.endpoint.interval, '100ms');
    assert.deepEqual(config.endpoint.probes, ['write', 'read']);
    assert.equal(config.endpoint.tls.mode, 'require');
    assert.deepEqual(config.credentials(), { user: 'probe', password: 'pw' });
    assert.deepEqual(config.listen, { host: '0.0.0.0', port: 9090 });
    assert.equal(config.setupRetryMs, 5000);
    assert.equal(config.maxSamples, 2_000_000);
    assert.equal(config.seqBase, 0);
  });

  it('reads the first seq of a replacement prober, and refuses a bad one', () => {
    assert.equal(parseProbePodEnv(env({ FAILWATCH_SEQ_BASE: '123000' })).seqBase, 123_000);
    assert.match(
      problemsOf(env({ FAILWATCH_SEQ_BASE: '-1' })).join(),
      /FAILWATCH_SEQ_BASE must be an integer from 0/,
    );
  });

  it('ignores the credentials of the spec (the pod has its own)', () => {
    const config = parseProbePodEnv(
      env({
        FAILWATCH_ENDPOINT: JSON.stringify({ ...ENDPOINT, credentials: { secretRef: { name: 'pg' } } }),
      }),
    );
    assert.equal(config.endpoint.name, 'cluster');
  });

  it('listens on FAILWATCH_LISTEN, else on POD_IP and FAILWATCH_LISTEN_PORT', () => {
    assert.deepEqual(parseProbePodEnv(env({ FAILWATCH_LISTEN: '127.0.90.50:19090' })).listen, {
      host: '127.0.90.50',
      port: 19090,
    });
    assert.deepEqual(parseProbePodEnv(env({ POD_IP: '127.0.0.7', FAILWATCH_LISTEN_PORT: '9090' })).listen, {
      host: '127.0.0.7',
      port: 9090,
    });
    assert.deepEqual(parseListenAddress('[::1]:9090'), { host: '::1', port: 9090 });
  });

  it('lists every problem at once, with the field path inside the endpoint', () => {
    const problems = problemsOf({
      FAILWATCH_EXPERIMENT: 'weekly',
      FAILWATCH_ENDPOINT: JSON.stringify({ ...ENDPOINT, interval: '-5ms', dialect: 'oracle' }),
      FAILWATCH_LISTEN: 'nowhere',
      FAILWATCH_SETUP_RETRY: 'soon',
    });
    const text = problems.join('\n');
    assert.match(text, /FAILWATCH_RUN_ID is required/);
    assert.match(text, /FAILWATCH_EXPERIMENT must be namespace\/name/);
    assert.match(text, /FAILWATCH_ENDPOINT\.interval: must be a duration/);
    assert.match(text, /FAILWATCH_ENDPOINT\.dialect: /);
    assert.match(text, /FAILWATCH_DB_USERNAME \(or FAILWATCH_DB_USERNAME_FILE\) is required/);
    assert.match(text, /FAILWATCH_LISTEN: listen address must be host:port/);
    assert.match(text, /FAILWATCH_SETUP_RETRY must be a duration/);
    assert.match(
      problemsOf(env({ FAILWATCH_ENDPOINT: '{not json' })).join(),
      /FAILWATCH_ENDPOINT is not JSON/,
    );
  });

  it('re-reads credential files at every call, so a fixed Secret is picked up in place', () => {
    const dir = mkdtempSync(join(tmpdir(), 'failwatch-env-'));
    try {
      writeFileSync(join(dir, 'username'), 'probe\n');
      writeFileSync(join(dir, 'password'), 'old');
      const config = parseProbePodEnv(
        env({
          FAILWATCH_DB_USERNAME: undefined,
          FAILWATCH_DB_PASSWORD: undefined,
          FAILWATCH_DB_USERNAME_FILE: join(dir, 'username'),
          FAILWATCH_DB_PASSWORD_FILE: join(dir, 'password'),
        }),
      );
      assert.deepEqual(config.credentials(), { user: 'probe', password: 'old' });
      writeFileSync(join(dir, 'password'), 'new');
      assert.deepEqual(config.credentials(), { user: 'probe', password: 'new' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
