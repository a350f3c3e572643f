import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import type { FailoverExperimentSpec } from '../../src/api/experiment-spec.ts';
import { ExperimentValidationError, type FieldError } from '../../src/api/field-errors.ts';
import { loadExperimentFile, parseExperimentManifest } from '../../src/api/load-experiment.ts';
import { endpointPort, endpointSloSeconds, targetIdentifier } from '../../src/api/spec-accessors.ts';
import { validateExperimentManifest } from '../../src/api/validate-experiment.ts';

type Doc = any;

function manifest(): Record<string, unknown> {
  return {
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverExperiment',
    metadata: { name: 'lab-failover', namespace: 'db' },
    spec: {
      target: { kind: 'aurora-cluster', clusterIdentifier: 'lab-pg', rdsEndpoint: 'http://127.0.0.1:4599' },
      trigger: { type: 'aws-rds', action: 'failover-db-cluster' },
      endpoints: [
        {
          name: 'cluster',
          dialect: 'aurora-postgresql',
          host: 'cluster.lab.failwatch.local',
          database: 'postgres',
          role: 'cluster',
          probes: ['write', 'read', 'dns'],
          tls: { mode: 'disable' },
          credentials: { username: 'probe', passwordEnv: 'PGPASSWORD' },
          slo: { maxWriteDowntime: '20s' },
        },
        {
          name: 'reader',
          dialect: 'aurora-postgresql',
          host: 'reader.lab.failwatch.local',
          port: 6432,
          database: 'postgres',
          role: 'reader',
          probes: ['read'],
          connectionMode: 'pooled',
          interval: '10ms',
          credentials: { secretRef: { name: 'pg-creds' } },
        },
      ],
      slo: { maxWriteDowntime: '30s', maxReadDowntime: '15s', maxLostWrites: 0 },
    },
  };
}

/** Applies `edit` to a fresh valid manifest and returns the errors. */
function errorsOf(edit: (doc: Doc) => void): FieldError[] {
  const doc = manifest();
  edit(doc);
  const result = validateExperimentManifest(doc);
  assert.equal(result.ok, false, 'expected the manifest to be rejected');
  return result.ok ? [] : result.errors;
}

describe('validateExperimentManifest on a valid manifest', () => {
  const result = validateExperimentManifest(manifest());
  assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.errors));
  const spec: FailoverExperimentSpec = result.value.spec;
  const [cluster, reader] = spec.endpoints;

  it('applies every default', () => {
    assert.equal(cluster!.interval, '100ms');
    assert.equal(cluster!.connectTimeout, '1s');
    assert.equal(cluster!.queryTimeout, '1s');
    assert.equal(cluster!.slowThreshold, '500ms');
    assert.equal(cluster!.connectionMode, 'fresh');
    assert.deepEqual(cluster!.dns, { interval: '500ms' });
    assert.deepEqual(reader!.tls, { mode: 'require' });
    assert.deepEqual(reader!.credentials.secretRef, {
      name: 'pg-creds',
      usernameKey: 'username',
      passwordKey: 'password',
    });
    assert.deepEqual(spec.baseline, { duration: '10s', maxErrorRatio: 0 });
    assert.deepEqual(spec.observe, { recoveredFor: '10s', maxDuration: '5m' });
    assert.deepEqual(spec.audit, { lostWrites: true });
    assert.equal(spec.trigger.action, 'failover-db-cluster');
  });

  it('keeps what the user wrote and derives ports, target and SLOs', () => {
    assert.equal(result.ok && result.value.metadata.namespace, 'db');
    assert.equal(reader!.interval, '10ms');
    assert.equal(endpointPort(cluster!), 5432);
    assert.equal(endpointPort(reader!), 6432);
    assert.equal(targetIdentifier(spec), 'lab-pg');
    assert.deepEqual(endpointSloSeconds(spec, cluster!), {
      maxWriteDowntimeSeconds: 20,
      maxReadDowntimeSeconds: 15,
      maxLostWrites: 0,
    });
  });

  it('types defaulted fields as present after validation', () => {
    const interval: string = cluster!.interval;
    const mode: 'disable' | 'require' | 'verify-full' = reader!.tls.mode;
    const probes: ('write' | 'read' | 'dns' | 'topology')[] = reader!.probes;
    const recoveredFor: string = spec.observe.recoveredFor;
    assert.deepEqual([interval, mode, probes, recoveredFor], ['100ms', 'require', ['read'], '10s']);
  });

  it('does not modify its input', () => {
    const doc = manifest();
    const before = JSON.stringify(doc);
    validateExperimentManifest(doc);
    assert.equal(JSON.stringify(doc), before);
  });
});

describe('validateExperimentManifest rejects bad manifests with the field and a reason', () => {
  const cases: [string, (doc: Doc) => void, string, RegExp][] = [
    ['missing endpoints', (d) => delete d.spec.endpoints, 'spec.endpoints', /is required/],
    ['empty endpoints', (d) => (d.spec.endpoints = []), 'spec.endpoints', /at least one/],
    [
      'bad duration',
      (d) => (d.spec.endpoints[0].interval = '100 millis'),
      'spec.endpoints[0].interval',
      /duration like 100ms/,
    ],
    [
      'interval below 10ms',
      (d) => (d.spec.endpoints[0].interval = '5ms'),
      'spec.endpoints[0].interval',
      /at least 10ms \(got `5ms`\)/,
    ],
    [
      'negative interval',
      (d) => (d.spec.endpoints[0].interval = '-100ms'),
      'spec.endpoints[0].interval',
      /duration like/,
    ],
    [
      'unknown dialect',
      (d) => (d.spec.endpoints[0].dialect = 'postgres'),
      'spec.endpoints[0].dialect',
      /one of aurora-postgresql, postgresql, aurora-mysql, mysql \(got `postgres`\)/,
    ],
    [
      'duplicate endpoint names',
      (d) => (d.spec.endpoints[1].name = 'cluster'),
      'spec.endpoints',
      /names must be unique/,
    ],
    [
      'aws-rds without target',
      (d) => delete d.spec.target,
      'spec.target',
      /required when trigger.type is aws-rds/,
    ],
    [
      'cluster without identifier',
      (d) => delete d.spec.target.clusterIdentifier,
      'spec.target.clusterIdentifier',
      /required when kind is aurora-cluster/,
    ],
    [
      'action does not fit target',
      (d) => (d.spec.trigger.action = 'reboot-db-instance-force-failover'),
      'spec.trigger.action',
      /must match target.kind/,
    ],
    [
      'unknown trigger type',
      (d) => (d.spec.trigger.type = 'chaos'),
      'spec.trigger.type',
      /one of aws-rds, none/,
    ],
    ['port out of range', (d) => (d.spec.endpoints[0].port = 70000), 'spec.endpoints[0].port', /<= 65535/],
    [
      'port as text',
      (d) => (d.spec.endpoints[0].port = 'pg'),
      'spec.endpoints[0].port',
      /must be an integer \(got string `pg`\)/,
    ],
    [
      'bad endpoint name',
      (d) => (d.spec.endpoints[0].name = 'Cluster_1'),
      'spec.endpoints[0].name',
      /lowercase DNS label/,
    ],
    [
      'misspelt field',
      (d) => (d.spec.endpoints[0].intervall = '1s'),
      'spec.endpoints[0].intervall',
      /not a known field \(did you mean `interval`\?\)/,
    ],
    [
      'writes on a reader',
      (d) => d.spec.endpoints[1].probes.push('write'),
      'spec.endpoints[1].probes',
      /reader endpoint cannot take writes/,
    ],
    [
      'no credentials',
      (d) => (d.spec.endpoints[0].credentials = {}),
      'spec.endpoints[0].credentials',
      /exactly one of secretRef .* username .* iam/,
    ],
    [
      'both credentials',
      (d) => (d.spec.endpoints[1].credentials.username = 'x'),
      'spec.endpoints[1].credentials',
      /exactly one/,
    ],
    [
      'probe listed twice',
      (d) => (d.spec.endpoints[0].probes = ['read', 'read']),
      'spec.endpoints[0].probes',
      /same value twice/,
    ],
    [
      'unknown probe',
      (d) => (d.spec.endpoints[0].probes = ['ping']),
      'spec.endpoints[0].probes[0]',
      /one of write, read, dns/,
    ],
    [
      'slow threshold above query timeout',
      (d) => (d.spec.endpoints[0].slowThreshold = '2s'),
      'spec.endpoints[0].slowThreshold',
      /shorter than queryTimeout/,
    ],
    [
      'error ratio above 1',
      (d) => (d.spec.baseline = { maxErrorRatio: 1.5 }),
      'spec.baseline.maxErrorRatio',
      /<= 1/,
    ],
    [
      'recoveredFor longer than maxDuration',
      (d) => (d.spec.observe = { recoveredFor: '10m' }),
      'spec.observe.recoveredFor',
      /shorter than maxDuration/,
    ],
    ['negative lost writes', (d) => (d.spec.slo.maxLostWrites = -1), 'spec.slo.maxLostWrites', />= 0/],
    [
      'target instance with reboot',
      (d) => {
        d.spec.target = { kind: 'rds-instance', instanceIdentifier: 'db-1' };
        d.spec.trigger = {
          type: 'aws-rds',
          action: 'reboot-db-instance-force-failover',
          targetInstanceIdentifier: 'db-2',
        };
      },
      'spec.trigger.targetInstanceIdentifier',
      /only to action failover-db-cluster/,
    ],
    [
      'duration without a unit',
      (d) => (d.spec.slo.maxWriteDowntime = 30),
      'spec.slo.maxWriteDowntime',
      /duration like 100ms, 30s, 2m or 1h30m \(got number `30`; add a unit\)/,
    ],
    [
      'credentials not a map',
      (d) => (d.spec.endpoints[0].credentials = 'probe'),
      'spec.endpoints[0].credentials',
      /must be a map \(got string `probe`\)/,
    ],
    ['wrong kind', (d) => (d.kind = 'Experiment'), 'kind', /must be FailoverExperiment/],
    [
      'wrong apiVersion',
      (d) => (d.apiVersion = 'failwatch.io/v1'),
      'apiVersion',
      /must be failwatch.io\/v1alpha1/,
    ],
    ['missing name', (d) => delete d.metadata.name, 'metadata.name', /lowercase DNS name/],
    [
      'rds endpoint not a URL',
      (d) => (d.spec.target.rdsEndpoint = '127.0.0.1:4599'),
      'spec.target.rdsEndpoint',
      /http:\/\/ or https:\/\//,
    ],
    // Input that reaches DNS, Kubernetes or SQL has a pattern.
    [
      'host with a path',
      (d) => (d.spec.endpoints[0].host = 'db.example.com/../x'),
      'spec.endpoints[0].host',
      /must be a host name/,
    ],
    [
      'host with a space',
      (d) => (d.spec.endpoints[0].host = 'db example'),
      'spec.endpoints[0].host',
      /must be a host name/,
    ],
    [
      'host with a URL scheme',
      (d) => (d.spec.endpoints[0].host = 'http://db'),
      'spec.endpoints[0].host',
      /must be a host name/,
    ],
    [
      'database with SQL in it',
      (d) => (d.spec.endpoints[0].database = 'app; DROP TABLE x'),
      'spec.endpoints[0].database',
      /plain SQL identifier/,
    ],
    [
      'user name with a quote',
      (d) => (d.spec.endpoints[0].credentials.username = "probe'--"),
      'spec.endpoints[0].credentials.username',
      /must be a user name/,
    ],
    [
      'dns server that is not an address',
      (d) => (d.spec.endpoints[0].dns = { server: 'a b:53' }),
      'spec.endpoints[0].dns.server',
      /address:port/,
    ],
  ];

  for (const [title, edit, path, message] of cases) {
    it(`${title}: ${path}`, () => {
      const errors = errorsOf(edit);
      const match = errors.find((error) => error.path === path && message.test(error.message));
      assert.ok(match, `no error at ${path} matching ${message}; got:\n${JSON.stringify(errors, null, 2)}`);
      assert.equal(errors.length, 1, `expected exactly one error, got:\n${JSON.stringify(errors, null, 2)}`);
    });
  }

  it('accepts host names, IPv4 and IPv6 addresses, and refuses Kubernetes names that are not', () => {
    for (const host of ['db.example.com', 'db.example.com.', '127.0.10.1', '::1', 'fd00::5', 'a', 'x-1.y-2'])
      assert.deepEqual(
        k8s((d) => (d.spec.endpoints[0].host = host)),
        [],
        host,
      );
    function k8s(edit: (d: Doc) => void) {
      const doc = manifest() as Doc;
      doc.spec.endpoints[0].credentials = { secretRef: { name: 'pg-creds' } };
      edit(doc);
      const r = validateExperimentManifest(doc);
      return r.ok ? [] : r.errors;
    }
    assert.deepEqual(
      k8s(() => {}),
      [],
    );
    for (const [field, value, path] of [
      ['name', 'Pg_Creds', 'spec.endpoints[0].credentials.secretRef.name'],
      ['name', '../kube-system/x', 'spec.endpoints[0].credentials.secretRef.name'],
      ['usernameKey', 'user name', 'spec.endpoints[0].credentials.secretRef.usernameKey'],
      ['passwordKey', 'pass/word', 'spec.endpoints[0].credentials.secretRef.passwordKey'],
    ] as const) {
      const errors = k8s((d) => (d.spec.endpoints[0].credentials.secretRef[field] = value));
      assert.deepEqual(
        errors.map((e) => e.path),
        [path],
        JSON.stringify(errors),
      );
    }
    const ca = k8s((d) => (d.spec.endpoints[0].tls = { mode: 'verify-full', caSecretRef: { name: 'CA' } }));
    assert.deepEqual(
      ca.map((e) => e.path),
      ['spec.endpoints[0].tls.caSecretRef.name'],
    );
  });

  it('lists every bad field at once, including rules on objects with other bad fields', () => {
    const errors = errorsOf((d) => {
      d.spec.endpoints[0].interval = '5ms';
      d.spec.endpoints[0].dialect = 'pg';
      d.spec.endpoints[1].name = 'cluster';
      d.spec.endpoints[1].probes = ['write'];
      delete d.spec.target;
      d.spec.baseline = { duration: 'soon' };
    });
    assert.deepEqual(
      errors.map((error) => error.path),
      [
        'spec.baseline.duration',
        'spec.endpoints',
        'spec.endpoints[0].dialect',
        'spec.endpoints[0].interval',
        'spec.endpoints[1].probes',
        'spec.target',
      ],
    );
  });
});

describe('loadExperimentFile', () => {
  it('reads a YAML manifest and applies defaults', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'failwatch-api-'));
    const path = join(dir, 'experiment.yaml');
    await writeFile(path, stringify(manifest()));
    const loaded = await loadExperimentFile(path);
    assert.equal(loaded.metadata.name, 'lab-failover');
    assert.equal(loaded.spec.endpoints[0]!.interval, '100ms');
  });

  it('throws one error listing every bad field, naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'failwatch-api-'));
    const path = join(dir, 'bad.yaml');
    const doc = manifest() as Doc;
    doc.spec.endpoints[0].interval = '1 second';
    doc.spec.endpoints[1].port = 0;
    await writeFile(path, stringify(doc));
    await assert.rejects(loadExperimentFile(path), (error: unknown) => {
      assert.ok(error instanceof ExperimentValidationError);
      assert.equal(error.code, 'INVALID_EXPERIMENT');
      assert.deepEqual(
        error.errors.map((e) => e.path),
        ['spec.endpoints[0].interval', 'spec.endpoints[1].port'],
      );
      assert.match(error.message, /bad\.yaml: invalid FailoverExperiment/);
      assert.match(error.message, /- spec\.endpoints\[1\]\.port: must be >= 1 \(got `0`\)/);
      return true;
    });
  });

  it('reports YAML syntax errors with their line', () => {
    assert.throws(
      () => parseExperimentManifest('spec:\n  endpoints: [\n', 'x.yaml'),
      (error: unknown) => {
        assert.ok(error instanceof ExperimentValidationError);
        assert.match(error.errors[0]!.path, /^line \d+, column \d+$/);
        return true;
      },
    );
  });

  it('rejects a file with two documents', () => {
    const text = `${stringify(manifest())}---\n${stringify(manifest())}`;
    assert.throws(() => parseExperimentManifest(text), /exactly one YAML document, found 2/);
  });
});

describe('the per-prober sample budget (src/api/sample-budget.ts)', () => {
  const withProbing = (interval: string, dnsInterval: string, maxDuration: string) => {
    const doc: Doc = manifest();
    doc.spec.endpoints[0].interval = interval;
    doc.spec.endpoints[0].dns = { interval: dnsInterval };
    doc.spec.observe = { maxDuration };
    return validateExperimentManifest(doc);
  };

  it('refuses write, read and dns at 10ms for 24h, naming the field, the limit and both fixes', () => {
    const result = withProbing('10ms', '10ms', '24h');
    assert.equal(result.ok, false);
    const errors = (result as { errors: FieldError[] }).errors;
    assert.deepEqual(
      errors.map((e) => e.path),
      ['spec.endpoints[0].interval', 'spec.endpoints[1].interval'],
    );
    assert.match(errors[1]!.message, /^endpoint `reader`: read probes every 10ms for baseline 10s/);
    const message = errors[0]!.message;
    assert.match(message, /endpoint `cluster`: write, read, dns probes every 10ms \(dns every 10ms\)/);
    // (10 s + 24 h + 5 m) / 10 ms x 3 kinds
    assert.match(message, /make up to 26,013,000 samples, more than the 2,000,000 a prober keeps/);
    // 2,000,000 / 3 x 10 ms = 6,666.7 s, less baseline 10 s and 5 m slack: 1h45m56s -> 105m56s
    assert.match(message, /observe\.maxDuration at most 105m56s/);
    // dns at 10 ms alone makes 8,671,000: no write/read interval fits
    assert.match(message, /a longer dns\.interval/);
    assert.doesNotMatch(message, /interval at least/);
  });

  it('gives the interval that fits when only write and read are too dense', () => {
    const result = withProbing('10ms', '1s', '3h');
    assert.equal(result.ok, false);
    const message = (result as { errors: FieldError[] }).errors[0]!.message;
    // probing 3h + 10s + 5m = 11,110 s; dns every 1 s takes 11,110 of the 2,000,000 samples;
    // write and read: 2 x 11,110,000 ms / 1,988,890 = 11.2 ms
    assert.match(message, /interval at least 12ms/);
    assert.equal(withProbing('12ms', '1s', '3h').ok, true);
    assert.equal(withProbing('11ms', '1s', '3h').ok, false);
  });

  it('accepts the longest run that fits: 3 kinds at 10ms for 1h40m', () => {
    assert.equal(withProbing('10ms', '10ms', '100m').ok, true);
    assert.equal(withProbing('10ms', '10ms', '110m').ok, false);
  });
});
