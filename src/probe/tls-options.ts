// TLS settings per mode, read once per driver. `require` encrypts without checking the
// certificate (libpq's sslmode=require); `verify-full` checks the chain against the CA bundle
// and the certificate's names against the configured host, also when connecting to an
// address resolved through the probe's own DNS server.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { TlsSettings } from './types.ts';

export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

export interface TlsPlan {
  mode: TlsSettings['mode'];
  ca?: string;
}

export function loadTls(settings: TlsSettings): TlsPlan {
  if (settings.mode !== 'verify-full') return { mode: settings.mode };
  if (!settings.caFile) throw new TlsConfigError('tls mode verify-full needs a CA bundle (caFile)');
  try {
    return { mode: 'verify-full', ca: readFileSync(settings.caFile, 'utf8') };
  } catch (err) {
    const missing = (err as { code?: unknown }).code === 'ENOENT';
    throw new TlsConfigError(
      missing
        ? `cannot read CA bundle ${settings.caFile} (tls.caFile): no such file (the lab's CA exists only while the lab is up: \`failwatch lab up\`, \`failwatch lab status --json\` names it)`
        : `cannot read CA bundle ${settings.caFile} (tls.caFile): ${(err as Error).message}`,
    );
  }
}

/** node-postgres `ssl`; `host` is the configured name, used for SNI and the identity check. */
export function pgSslOptions(plan: TlsPlan, host: string): false | ConnectionOptions {
  if (plan.mode === 'disable') return false;
  if (plan.mode === 'require') return { rejectUnauthorized: false };
  const options: ConnectionOptions = { rejectUnauthorized: true, ca: plan.ca };
  // node-postgres only sets SNI for names; when we connect to a resolved address we keep the name.
  if (isIP(host) === 0) options.servername = host;
  return options;
}

/** mysql2 `ssl`; mysql2 takes the servername from its `host`, which stays the configured name. */
export type MysqlSsl = undefined | { rejectUnauthorized: boolean; verifyIdentity?: boolean; ca?: string };

export function mysqlSslOptions(plan: TlsPlan): MysqlSsl {
  if (plan.mode === 'disable') return undefined;
  if (plan.mode === 'require') return { rejectUnauthorized: false };
  return { rejectUnauthorized: true, verifyIdentity: true, ca: plan.ca };
}
