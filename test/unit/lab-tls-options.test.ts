// `failwatch lab up` TLS flags: on by default with force_ssl (RDS PostgreSQL 15+), MariaDB's
// require_secure_transport off (Aurora MySQL's default); each flag flips one of them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labOptionsFrom } from '../../src/cli/lab.ts';
import { subjectAltName } from '../../src/lab/tls.ts';

const tlsOf = (values: Record<string, boolean>) => {
  const o = labOptionsFrom(values);
  return [o.tls, o.forceSsl, o.requireSecureTransport];
};

test('lab TLS options: defaults and flags', () => {
  assert.deepEqual(tlsOf({}), [true, true, false]);
  assert.deepEqual(tlsOf({ 'no-tls': true }), [false, true, false]);
  assert.deepEqual(tlsOf({ 'no-force-ssl': true }), [true, false, false]);
  assert.deepEqual(tlsOf({ 'require-secure-transport': true }), [true, true, true]);
});

test('subjectAltName: DNS names and IP addresses', () => {
  assert.equal(
    subjectAltName(['lab-pg.cluster-cfwlab0.lab.failwatch.local', '127.0.10.11']),
    'DNS:lab-pg.cluster-cfwlab0.lab.failwatch.local,IP:127.0.10.11',
  );
});
