// Every example manifest is valid as shipped (the same files users copy).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadExperimentFile } from '../../src/api/load-experiment.ts';

const dir = new URL('../../examples/', import.meta.url);

test('every example manifest validates', async () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 4, `${files.length} examples`);
  for (const f of files) {
    const m = await loadExperimentFile(new URL(f, dir).pathname);
    assert.equal(m.kind, 'FailoverExperiment', f);
    assert.ok(m.spec.endpoints.length >= 2, `${f} probes at least two endpoints`);
  }
});

test('the Kubernetes lab example is the lab example with the credentials from a Secret', async () => {
  const lab = await loadExperimentFile(new URL('lab-aurora-postgresql.yaml', dir).pathname);
  const kube = await loadExperimentFile(new URL('lab-kubernetes-aurora-postgresql.yaml', dir).pathname);
  const text = readFileSync(new URL('lab-kubernetes-aurora-postgresql.yaml', dir), 'utf8');
  for (const e of kube.spec.endpoints) assert.deepEqual(e.credentials.secretRef?.name, 'lab-db', e.name);
  for (const e of kube.spec.endpoints)
    assert.deepEqual(e.tls, { mode: 'verify-full', caSecretRef: { name: 'lab-ca', key: 'ca.crt' } }, e.name);
  for (const e of lab.spec.endpoints) assert.equal(e.tls.caFile, '/tmp/failwatch-lab/tls/ca.crt', e.name);
  const withoutCredentials = (m: typeof lab) =>
    m.spec.endpoints.map(({ credentials: _credentials, tls: _tls, ...rest }) => rest);
  assert.deepEqual(withoutCredentials(kube), withoutCredentials(lab));
  assert.deepEqual({ ...kube.spec, endpoints: [] }, { ...lab.spec, endpoints: [] });
  // The header's Secret command gives exactly the keys the spec reads, with the lab's password.
  assert.match(
    text,
    /kubectl create secret generic lab-db -n default --from-literal=username=failwatch --from-literal=password=failwatch-lab/,
  );
  assert.match(
    text,
    /kubectl create secret generic lab-ca -n default --from-file=ca\.crt=\/tmp\/failwatch-lab\/tls\/ca\.crt/,
  );
});

test('every example is run end to end by an e2e test (named in test/e2e or its helpers)', () => {
  const sources = ['../e2e/', '../helpers/']
    .flatMap((sub) => {
      const d = new URL(sub, import.meta.url);
      return readdirSync(d)
        .filter((f) => f.endsWith('.ts'))
        .map((f) => readFileSync(new URL(f, d), 'utf8'));
    })
    .join('\n');
  const unreferenced = readdirSync(dir).filter((f) => !sources.includes(f));
  assert.deepEqual(unreferenced, [], 'examples no e2e test runs: add them to test/e2e/examples.test.ts');
});
