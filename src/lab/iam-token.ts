// Checks an RDS IAM authentication token the way RDS does, against the lab's own test
// credentials: the SigV4 presigned-URL signature (recomputed here with node:crypto, apart from
// the SDK that made it), the expiry (X-Amz-Date + X-Amz-Expires), the host:port it was signed
// for, the database user and Action=connect. Pure: the caller gives the clock and what to expect.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The lab's fixed test credentials. Not AWS credentials: nothing outside the lab accepts them. */
export const LAB_IAM_CREDENTIALS = {
  accessKeyId: 'FAILWATCHLABIAM',
  secretAccessKey: 'failwatch-lab-iam-not-an-aws-secret',
} as const;
export const LAB_IAM_REGION = 'us-east-1';
/** The lab's database user that logs in with IAM tokens (a member of rds_iam on PostgreSQL). */
export const LAB_IAM_USER = 'failwatch_iam';

/** RDS accepts a token for 15 minutes; a presigned URL cannot ask for more. */
const MAX_EXPIRES_SECONDS = 900;
/** How far in the future a token's signing time may lie (clock skew). */
const MAX_FUTURE_SKEW_MS = 5 * 60_000;
/** pam_exec hands over at most PAM_MAX_RESP_SIZE (512) bytes, NUL included. */
export const PAM_TOKEN_LIMIT = 511;
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

export interface IamTokenExpectation {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** The login user (PAM_USER): the token's DBUser must name it. */
  user: string;
  /** `host:port` pairs the token may be signed for (the names clients dial). */
  hosts: string[];
  nowMs: number;
}

/** What the verifier program reads from its configuration file. */
export type IamVerifierConfig = Omit<IamTokenExpectation, 'user' | 'nowMs'>;

export type IamTokenReason =
  | 'malformed'
  | 'truncated'
  | 'action'
  | 'unknown-access-key'
  | 'region'
  | 'signature'
  | 'expired'
  | 'not-yet-valid'
  | 'host'
  | 'user';

export type IamTokenVerdict = { ok: true } | { ok: false; reason: IamTokenReason; detail: string };

/** Distinct exit codes per reason, so a server log that shows only pam_exec's code still says which. */
export const IAM_REASON_EXIT_CODES: Record<IamTokenReason, number> = {
  malformed: 10,
  truncated: 11,
  action: 12,
  'unknown-access-key': 13,
  region: 14,
  signature: 15,
  expired: 16,
  'not-yet-valid': 17,
  host: 18,
  user: 19,
};

function reject(reason: IamTokenReason, detail: string): IamTokenVerdict {
  return { ok: false, reason, detail };
}

/** RFC 3986 encoding as SigV4 wants it. */
function uriEscape(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** `20261201T143000Z` -> epoch ms, or NaN. */
function parseAmzDate(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

export function verifyIamToken(token: string, expect: IamTokenExpectation): IamTokenVerdict {
  if (token.length >= PAM_TOKEN_LIMIT)
    return reject(
      'truncated',
      `token is ${token.length} bytes, at PAM's 512-byte limit: sign with credentials that carry no session token`,
    );
  const slash = token.indexOf('/?');
  if (slash <= 0) return reject('malformed', 'not an RDS IAM token (expected host:port/?Action=connect&...)');
  const hostPort = token.slice(0, slash);
  const params = new Map<string, string>();
  for (const pair of token.slice(slash + 2).split('&')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return reject('malformed', 'bad query parameter');
    try {
      params.set(decodeURIComponent(pair.slice(0, eq)), decodeURIComponent(pair.slice(eq + 1)));
    } catch {
      return reject('malformed', 'bad percent-encoding');
    }
  }
  const get = (name: string) => params.get(name) ?? '';
  for (const name of ['X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-Signature', 'DBUser'])
    if (!params.has(name)) return reject('malformed', `missing ${name}`);
  if (get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || get('X-Amz-SignedHeaders') !== 'host')
    return reject('malformed', 'expected X-Amz-Algorithm=AWS4-HMAC-SHA256 and X-Amz-SignedHeaders=host');
  if (get('Action') !== 'connect') return reject('action', `Action is \`${get('Action')}\`, not connect`);

  const [accessKeyId, day, region, service, terminator] = get('X-Amz-Credential').split('/');
  if (terminator !== 'aws4_request' || service !== 'rds-db' || !day || !region)
    return reject('malformed', 'credential scope is not <key>/<date>/<region>/rds-db/aws4_request');
  if (accessKeyId !== expect.accessKeyId)
    return reject('unknown-access-key', `signed with access key ${accessKeyId}, not the lab's test key`);
  if (region !== expect.region)
    return reject('region', `signed for region ${region}; the lab is ${expect.region}`);

  const amzDate = get('X-Amz-Date');
  const canonicalQuery = [...params]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [uriEscape(k), uriEscape(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = ['GET', '/', canonicalQuery, `host:${hostPort}`, '', 'host', EMPTY_SHA256].join(
    '\n',
  );
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  let key = hmac(`AWS4${expect.secretAccessKey}`, day);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const expected = hmac(key, stringToSign);
  const given = Buffer.from(get('X-Amz-Signature'), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return reject('signature', 'signature does not match (wrong secret key, or the token was altered)');

  const signedMs = parseAmzDate(amzDate);
  const expiresSeconds = Number(get('X-Amz-Expires'));
  if (Number.isNaN(signedMs) || !Number.isInteger(expiresSeconds) || expiresSeconds <= 0)
    return reject('malformed', 'bad X-Amz-Date or X-Amz-Expires');
  if (expiresSeconds > MAX_EXPIRES_SECONDS)
    return reject('malformed', `X-Amz-Expires ${expiresSeconds} s is over ${MAX_EXPIRES_SECONDS} s`);
  const signedAt = new Date(signedMs).toISOString();
  if (expect.nowMs > signedMs + expiresSeconds * 1000)
    return reject(
      'expired',
      `token signed at ${signedAt}, valid ${expiresSeconds} s, expired ${Math.round((expect.nowMs - signedMs) / 1000 - expiresSeconds)} s ago (check the client's clock)`,
    );
  if (signedMs - expect.nowMs > MAX_FUTURE_SKEW_MS)
    return reject('not-yet-valid', `token signed at ${signedAt}, in the future (check the client's clock)`);
  if (!expect.hosts.includes(hostPort))
    return reject('host', `token signed for ${hostPort}, which is not an endpoint of this server`);
  if (get('DBUser') !== expect.user)
    return reject('user', `token is for user ${get('DBUser')}, login user is ${expect.user}`);
  return { ok: true };
}
