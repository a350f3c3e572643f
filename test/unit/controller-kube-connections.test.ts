// The controller's API clients share their TLS connections. client-node 2.x alone builds a
// new undici Agent per request, so every call opens a TLS connection (a new SecureContext,
// the CA parsed again) that idles until its keep-alive ends: at 1,000 experiments that cost
// hundreds of MiB outside the V8 heap. Against a real HTTPS server, with a self-signed
// certificate made by openssl.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { kubeClients } from '../../src/controller/kube.ts';

const HOST = '127.0.95.10';
const dir = mkdtempSync(join(tmpdir(), 'fw-kube-conn-'));
let server: Server;
let kubeconfig: string;
let connections = 0;
const authorizations: (string | undefined)[] = [];

before(async () => {
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
      '1',
      '-subj',
      `/CN=${HOST}`,
      '-addext',
      `subjectAltName=IP:${HOST}`,
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const cert = readFileSync(join(dir, 'cert.pem'));
  server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
    authorizations.push(req.headers.authorization);
    const name = req.url?.split('?')[0]?.split('/').at(-1);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'team' } }));
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'c',
          cluster: {
            server: `https://${HOST}:${port}`,
            'certificate-authority-data': cert.toString('base64'),
          },
        },
      ],
      users: [{ name: 'u', user: { token: 'token-one' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
});

after(() => {
  server?.closeAllConnections();
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('kubeClients', () => {
  it('sends every request over the same TLS connections, with the credentials on each', async () => {
    connections = 0;
    authorizations.length = 0;
    const kube = kubeClients(kubeconfig);
    for (let i = 0; i < 20; i++) {
      const secret = await kube.core.readNamespacedSecret({ name: `s${i}`, namespace: 'team' });
      assert.equal(secret.metadata?.name, `s${i}`);
    }
    // The pool may open a second connection while the first still finishes its response;
    // what matters is that connections do not grow with calls.
    assert.ok(connections <= 2, `${connections} TLS connections for 20 sequential calls`);
    assert.equal(authorizations.length, 20);
    assert.ok(
      authorizations.every((a) => a === 'Bearer token-one'),
      authorizations.join(', '),
    );
    assert.equal((kube.config as { requests?: number }).requests, 20);
  });

  it('(the library alone opens a connection per call: why kubeClients does not use it as is)', async () => {
    connections = 0;
    const config = new KubeConfig();
    config.loadFromFile(kubeconfig);
    const core = config.makeApiClient(CoreV1Api);
    for (let i = 0; i < 5; i++) await core.readNamespacedSecret({ name: `p${i}`, namespace: 'team' });
    assert.ok(
      connections > 2,
      `client-node now reuses connections (${connections} for 5 calls): SharedConnectionKubeConfig can go`,
    );
  });
});
