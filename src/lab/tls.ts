// The lab's certificates, made with the openssl CLI: one CA (the lab's "RDS CA bundle") and a
// server certificate per cluster whose subjectAltNames are the cluster's endpoint names and
// instance addresses, so clients can use verify-full as they do against RDS. The CA's
// certificate is public (0644); keys are 0600 and owned by the user of the server reading them.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { LabError } from './exec.ts';

export interface CertificateAuthority {
  certFile: string;
  keyFile: string;
}

export interface ServerCertificate {
  certFile: string;
  keyFile: string;
  /** The CA's certificate, for servers that also check their peers (replication, proxy). */
  caFile: string;
}

/** Unix owner of a key file (the server process reads it as that user). */
export interface FileOwner {
  uid: number;
  gid: number;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new LabError(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() || e.message}`);
  }
}

/** A self-signed CA valid for `days`, in `dir` (ca.crt, ca.key). */
export function makeCa(dir: string, commonName: string, days = 30): CertificateAuthority {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const ca = { certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') };
  openssl([
    'req',
    '-x509',
    ...EC_KEY,
    '-days',
    String(days),
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    ca.keyFile,
    '-out',
    ca.certFile,
  ]);
  chmodSync(ca.keyFile, 0o600);
  chmodSync(ca.certFile, 0o644);
  return ca;
}

/** subjectAltName value for DNS names and IP addresses. */
export function subjectAltName(names: string[]): string {
  return names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
}

/**
 * A server certificate `<name>.crt` / `<name>.key` in the CA's directory, signed by `ca`, for
 * `names` (DNS names and IP addresses; the first is also the common name).
 */
export function issueServerCertificate(
  ca: CertificateAuthority,
  dir: string,
  name: string,
  names: string[],
  owner?: FileOwner,
  days = 30,
): ServerCertificate {
  if (names.length === 0) throw new LabError(`certificate ${name}: no names`);
  const cert = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`), caFile: ca.certFile };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  openssl(['req', '-new', ...EC_KEY, '-subj', `/CN=${names[0]}`, '-keyout', cert.keyFile, '-out', csr]);
  writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${subjectAltName(names)}`,
      '',
    ].join('\n'),
  );
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-CAcreateserial',
    '-days',
    String(days),
    '-extfile',
    ext,
    '-out',
    cert.certFile,
  ]);
  rmSync(csr, { force: true });
  rmSync(ext, { force: true });
  chmodSync(cert.keyFile, 0o600);
  chmodSync(cert.certFile, 0o644);
  if (owner && process.getuid?.() === 0) chownSync(cert.keyFile, owner.uid, owner.gid);
  return cert;
}

/** What a lab server is given: its certificate and whether it refuses plain-text clients. */
export interface ServerTls extends ServerCertificate {
  /** PostgreSQL: `rds.force_ssl=1` (pg_hba hostssl only); MariaDB: require_secure_transport. */
  enforce: boolean;
}
