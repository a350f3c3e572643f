// TLS modes against a real PostgreSQL with SSL on (certificates made with openssl by the
// lab's src/lab/tls.ts), including verify-full through the probe's own DNS server: the socket dials the
// resolved address while the certificate is checked against the configured name.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LAB_ZONE, startDns, stopDns } from '../../src/lab/dns.ts';
import * as pg from '../../src/lab/postgres.ts';
import { type CertificateAuthority, issueServerCertificate, makeCa } from '../../src/lab/tls.ts';
import { createProbeDriver } from '../../src/probe/sql-driver.ts';
import { TlsConfigError } from '../../src/probe/tls-options.ts';
import type { AttemptOutcome, ProbeEndpointConfig } from '../../src/probe/types.ts';
import { labEndpoint, pgInstance, stopAll, TempDir } from '../helpers/probe-servers.ts';

const dir = new TempDir();
const server = pgInstance(dir, 'pg-tls', '127.0.40.31');
const dns = { dir: dir.sub('dns'), host: '127.0.0.1', port: 15341 };
const NAME = `pg-tls.${LAB_ZONE}`;
const tlsDir = dir.sub('pg-tls/run');
const file = (name: string) => `${tlsDir}/${name}`;
let dnsPid = 0;

let testCa: CertificateAuthority;
let otherCa: CertificateAuthority;

before(async () => {
  await pg.initPrimary(server);
  testCa = makeCa(file('test-ca'), 'test-ca', 2);
  otherCa = makeCa(file('other-ca'), 'other-ca', 2);
  const cert = issueServerCertificate(testCa, tlsDir, 'server', [NAME], pg.userIds(pg.PG_USER), 2);
  await pg.psqlLocal(server, `ALTER SYSTEM SET ssl_cert_file = '${cert.certFile}'`);
  await pg.psqlLocal(server, `ALTER SYSTEM SET ssl_key_file = '${cert.keyFile}'`);
  await pg.psqlLocal(server, 'ALTER SYSTEM SET ssl = on');
  await pg.psqlLocal(server, 'SELECT pg_reload_conf()');
  dnsPid = await startDns(dns, [{ name: NAME, type: 'A', value: server.host }]);
});

after(async () => {
  await stopDns(dnsPid);
  await stopAll([server], []);
  dir.remove();
});

async function attempt(overrides: Partial<ProbeEndpointConfig>): Promise<AttemptOutcome> {
  const driver = createProbeDriver(labEndpoint('postgresql', server, overrides), 'tls');
  try {
    return await driver.attempt('read', { seq: 0, clientMs: Date.now() });
  } finally {
    await driver.close();
  }
}

/** Whether the server saw our session encrypted (pg_stat_ssl), asked over a require session. */
async function sslInUse(): Promise<string> {
  return pg.psqlLocal(
    server,
    "SELECT ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE application_name = 'failwatch' LIMIT 1",
  );
}

describe('TLS modes', () => {
  it('verify-full accepts the right CA and name, connecting to the address its DNS server gave', async () => {
    const o = await attempt({
      host: NAME,
      dnsServer: `${dns.host}:${dns.port}`,
      tls: { mode: 'verify-full', caFile: testCa.certFile },
    });
    assert.equal(o.class, 'ok', o.message);
    assert.equal(o.connectAddr, server.host);
    assert.equal(o.server?.addr, server.host);
  });

  it('require encrypts without checking the certificate', async () => {
    const driver = createProbeDriver(
      labEndpoint('postgresql', server, { connectionMode: 'pooled', tls: { mode: 'require' } }),
      'tls',
    );
    try {
      assert.equal((await driver.attempt('read', { seq: 0, clientMs: Date.now() })).class, 'ok');
      assert.equal(await sslInUse(), 't');
    } finally {
      await driver.close();
    }
  });

  it('verify-full refuses a certificate from another CA', async () => {
    const o = await attempt({
      host: NAME,
      dnsServer: `${dns.host}:${dns.port}`,
      tls: { mode: 'verify-full', caFile: otherCa.certFile },
    });
    assert.equal(o.class, 'tls_error');
    assert.ok(
      ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN'].includes(o.code ?? ''),
      o.code,
    );
  });

  it('verify-full refuses a certificate that does not name the host dialled', async () => {
    const o = await attempt({ tls: { mode: 'verify-full', caFile: testCa.certFile } });
    assert.deepEqual([o.class, o.code], ['tls_error', 'ERR_TLS_CERT_ALTNAME_INVALID']);
    assert.match(o.message ?? '', /127\.0\.40\.31/);
  });

  it('verify-full without a readable CA bundle is a configuration error at construction', () => {
    assert.throws(
      () =>
        createProbeDriver(
          labEndpoint('postgresql', server, { tls: { mode: 'verify-full', caFile: file('missing.crt') } }),
          'tls',
        ),
      (err: unknown) => err instanceof TlsConfigError && /cannot read CA bundle/.test(err.message),
    );
  });

  it('disable stays in plain text against a server that offers TLS', async () => {
    const driver = createProbeDriver(labEndpoint('postgresql', server, { connectionMode: 'pooled' }), 'tls');
    try {
      assert.equal((await driver.attempt('read', { seq: 0, clientMs: Date.now() })).class, 'ok');
      assert.equal(await sslInUse(), 'f');
    } finally {
      await driver.close();
    }
  });
});
