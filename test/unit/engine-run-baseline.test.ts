// `failwatch run`'s engine before the trigger: credentials never reach the run's message or
// samples (as in a prober pod), and a lane that makes no attempt in the baseline is not healthy.
// The driver is a stand-in (a careless driver that echoes the password); the trigger is never
// fired, since every case ends at the baseline.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDurationMs } from '../../src/api/duration.ts';
import { parseExperimentManifest } from '../../src/api/load-experiment.ts';
import {
  BaselineHealth,
  baselineLanes,
  describeLaneHealth,
  unhealthyLanes,
} from '../../src/engine/recovery.ts';
import { runExperiment } from '../../src/engine/run-experiment.ts';
import { Redactor } from '../../src/probe/redact.ts';
import { ProbeSetupError } from '../../src/probe/sql-driver.ts';
import type { AttemptOutcome, ProbeDriver, ProbeEndpointConfig } from '../../src/probe/types.ts';
import type { FailoverTrigger } from '../../src/trigger/types.ts';

const PASSWORD = 'pw-Vb8-do-not-show';

function manifest(probes: string, baseline = '1s') {
  return parseExperimentManifest(`
apiVersion: failwatch.io/v1alpha1
kind: FailoverExperiment
metadata: { name: redaction }
spec:
  target: { kind: aurora-cluster, clusterIdentifier: db-1, region: us-east-1, rdsEndpoint: http://127.0.0.1:1 }
  trigger: { type: aws-rds }
  baseline: { duration: ${baseline} }
  endpoints:
    - name: cluster
      role: cluster
      dialect: aurora-postgresql
      host: db-1.cluster-x.us-east-1.rds.amazonaws.com
      database: app
      probes: ${probes}
      interval: 100ms
      tls: { mode: disable }
      credentials: { username: failwatch, passwordEnv: PW }
`);
}

/** A trigger that must never be called: every case ends before the trigger. */
function unusedTrigger(): FailoverTrigger & { fired: number } {
  const t = {
    fired: 0,
    description: 'db-1',
    preflight: async () => undefined,
    state: async () => ({ status: 'available', writerId: 'a', members: [] }),
    events: async () => [],
    async fire(): Promise<never> {
      t.fired++;
      throw new Error('fired');
    },
  };
  return t;
}

/** Echoes the password in its setup error or in every attempt's error, as a careless driver might. */
function echoingDriver(config: ProbeEndpointConfig, where: 'setup' | 'attempt'): ProbeDriver {
  const echo = `password authentication failed (password=${config.password})`;
  return {
    async setup() {
      if (where === 'setup')
        throw new ProbeSetupError(config.name, 'probe setup', {
          class: 'auth_error',
          code: '28P01',
          message: echo,
        });
    },
    async attempt(): Promise<AttemptOutcome> {
      await sleep(1);
      return { class: 'auth_error', code: '28P01', message: echo };
    },
    async readBack() {
      return [];
    },
    async close() {},
  };
}

async function run(probes: string, driverFor: (c: ProbeEndpointConfig) => ProbeDriver, baseline?: string) {
  const trigger = unusedTrigger();
  const outcome = await runExperiment({
    manifest: manifest(probes, baseline),
    trigger,
    credentials: () => ({ user: 'failwatch', password: PASSWORD }),
    driverFor,
  });
  assert.equal(trigger.fired, 0);
  return outcome;
}

describe('failwatch run before the trigger', { timeout: 60_000 }, () => {
  it('hides the password in a setup failure', async () => {
    const outcome = await run('[write]', (c) => echoingDriver(c, 'setup'));
    assert.equal(outcome.end, 'Failed');
    assert.equal(outcome.reason, 'AuthenticationFailed');
    assert.match(outcome.message, /password=\[redacted\]/);
    assert.ok(!outcome.message.includes(PASSWORD), outcome.message);
  });

  it('hides the password in every sample and in the BaselineUnhealthy message', async () => {
    const outcome = await run('[write, read]', (c) => echoingDriver(c, 'attempt'));
    assert.equal(outcome.reason, 'BaselineUnhealthy');
    assert.ok(outcome.samples.length >= 20, `${outcome.samples.length} samples`);
    for (const s of outcome.samples) {
      assert.equal(s.message, 'password authentication failed (password=[redacted])');
    }
    assert.match(outcome.message, /cluster\/write \d+\/\d+ bad \(auth_error\)/);
    assert.ok(!outcome.message.includes(PASSWORD), outcome.message);
    assert.ok(!JSON.stringify(outcome).includes(PASSWORD));
  });

  it('fails the baseline of a lane that made no attempt', async () => {
    // Each read attempt takes 4 s (a driver's own deadline): none ends inside the 1 s baseline.
    const outcome = await run('[write, read]', (c) => ({
      ...echoingDriver(c, 'attempt'),
      async attempt(kind): Promise<AttemptOutcome> {
        if (kind === 'read') {
          await sleep(4000);
          return { class: 'query_timeout', message: 'read timed out' };
        }
        return { class: 'ok', server: { id: 'a', role: 'writer' } };
      },
    }));
    assert.equal(outcome.reason, 'BaselineUnhealthy', outcome.message);
    assert.match(outcome.message, /cluster\/read no attempts/);
    assert.doesNotMatch(outcome.message, /cluster\/write/);
  });
});

describe('baseline lanes', () => {
  const endpoints = manifest('[write, read, dns]').spec.endpoints;
  it('expects a lane only when three of its attempts are due in the baseline', () => {
    const dnsMs = parseDurationMs(endpoints[0]!.dns.interval);
    assert.ok(dnsMs > 100, `dns every ${dnsMs} ms`);
    assert.deepEqual(baselineLanes(endpoints, 299), []);
    assert.deepEqual(baselineLanes(endpoints, 300), ['cluster/write', 'cluster/read']);
    assert.deepEqual(baselineLanes(endpoints, 3 * dnsMs), ['cluster/write', 'cluster/read', 'cluster/dns']);
  });

  it('reports an expected lane without attempts with ratio 1, after the lanes seen', () => {
    const health = new BaselineHealth();
    for (let i = 0; i < 10; i++)
      health.add({
        endpoint: 'cluster',
        kind: 'write',
        seq: i,
        class: i < 2 ? 'slow' : 'ok',
        startMs: i,
        endMs: i + 1,
      });
    const lanes = health.lanes(['cluster/write', 'cluster/read']);
    assert.deepEqual(
      lanes.map((l) => [l.lane, l.attempts, l.bad, l.ratio]),
      [
        ['cluster/write', 10, 2, 0.2],
        ['cluster/read', 0, 0, 1],
      ],
    );
    assert.deepEqual(lanes.map(describeLaneHealth), [
      'cluster/write 2/10 bad (slow)',
      'cluster/read no attempts',
    ]);
    // A lane without attempts is unhealthy even when every error ratio is allowed.
    assert.deepEqual(
      unhealthyLanes(lanes, 1).map((l) => l.lane),
      ['cluster/read'],
    );
    assert.deepEqual(
      unhealthyLanes(lanes, 0.1).map((l) => l.lane),
      ['cluster/write', 'cluster/read'],
    );
  });
});

describe('Redactor', () => {
  it('hides passwords plain and percent-encoded, and IAM token signatures and session tokens', () => {
    const r = new Redactor(['p@ss w/rd']);
    r.add('');
    const token =
      'db:5432/?Action=connect&DBUser=app&X-Amz-Credential=AKIA%2F20261203&X-Amz-Security-Token=IQoJb3JpZ2luX2Vj%2Fxyz&X-Amz-Signature=0a1b2c3d';
    const out = r.redact(
      `login failed: password=p@ss w/rd url=postgres://app:p%40ss%20w%2Frd@db token=${token} encoded=${encodeURIComponent(token)}`,
    );
    assert.ok(!out.includes('p@ss w/rd') && !out.includes('p%40ss%20w%2Frd'), out);
    assert.ok(!out.includes('0a1b2c3d') && !out.includes('IQoJb3JpZ2luX2Vj'), out);
    assert.equal(out.match(/\[redacted\]/g)?.length, 6, out);
    assert.match(out, /X-Amz-Credential=AKIA/);
  });
});
