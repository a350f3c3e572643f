// IAM database authentication: the password of each new connection is an RDS auth token
// (a SigV4-presigned `connect` URL for host:port and user), made with @aws-sdk/rds-signer and
// the SDK's default credential chain (environment, IRSA web identity, EKS Pod Identity, ...).
// A token is valid for 15 minutes and may be used for any number of logins in that time, so
// one is reused until REFRESH_AFTER_MS (10 min), leaving a 5-minute margin for clock skew and
// slow logins; a token the server rejected is dropped so the next login signs afresh.
// Tokens are secrets: nothing here logs them, and only the driver ever sees one.
import type { Signer } from '@aws-sdk/rds-signer';

export interface IamTokenRequest {
  /** The endpoint's configured host name (what the client dials), not a resolved address. */
  host: string;
  port: number;
  user: string;
  region: string;
}

/** Makes one token. */
export type SignIamToken = (request: IamTokenRequest) => Promise<string>;

export const TOKEN_VALIDITY_MS = 15 * 60_000;
export const REFRESH_AFTER_MS = 10 * 60_000;

interface CachedToken {
  token: Promise<string>;
  signedAtMs: number;
}

export interface IamTokenCacheOptions {
  /** Default: a Signer per host/port/user/region on the default credential chain. */
  sign?: SignIamToken;
  refreshAfterMs?: number;
  now?: () => number;
}

export class IamTokenCache {
  readonly #sign: SignIamToken;
  readonly #refreshAfterMs: number;
  readonly #now: () => number;
  readonly #tokens = new Map<string, CachedToken>();
  /** Tokens signed so far (failed attempts included). */
  signCount = 0;

  constructor(options: IamTokenCacheOptions = {}) {
    this.#sign = options.sign ?? defaultSigner();
    this.#refreshAfterMs = options.refreshAfterMs ?? REFRESH_AFTER_MS;
    this.#now = options.now ?? Date.now;
  }

  /** A token for the request: the cached one while it is fresh, else a new one (one signing at a time). */
  token(request: IamTokenRequest): Promise<string> {
    const key = cacheKey(request);
    const now = this.#now();
    const cached = this.#tokens.get(key);
    if (cached && now - cached.signedAtMs < this.#refreshAfterMs) return cached.token;
    this.signCount++;
    const token = this.#sign(request);
    const entry: CachedToken = { token, signedAtMs: now };
    this.#tokens.set(key, entry);
    // A failed signing is not cached: the next connection tries again.
    token.catch(() => {
      if (this.#tokens.get(key) === entry) this.#tokens.delete(key);
    });
    return token;
  }

  /** The server refused `token`: forget it (if it is still the cached one) so the next login signs anew. */
  async rejected(request: IamTokenRequest, token: string): Promise<void> {
    const key = cacheKey(request);
    const entry = this.#tokens.get(key);
    if (entry && (await entry.token.catch(() => undefined)) === token && this.#tokens.get(key) === entry)
      this.#tokens.delete(key);
  }
}

function cacheKey(r: IamTokenRequest): string {
  return `${r.region}\n${r.host}\n${r.port}\n${r.user}`;
}

/** Signers keep their memoized credential provider, so credentials are fetched once, not per token. */
export function defaultSigner(
  credentials?: ConstructorParameters<typeof Signer>[0]['credentials'],
): SignIamToken {
  const signers = new Map<string, Signer>();
  return async (r) => {
    const key = cacheKey(r);
    let signer = signers.get(key);
    if (!signer) {
      // Loaded on first use: runs without IAM endpoints never load the credential chain.
      const { Signer } = await import('@aws-sdk/rds-signer');
      signer = new Signer({
        hostname: r.host,
        port: r.port,
        username: r.user,
        region: r.region,
        credentials,
      });
      signers.set(key, signer);
    }
    try {
      return await signer.getAuthToken();
    } catch (err) {
      throw new IamSigningError(err);
    }
  };
}

/** One cache per process: every driver of the same endpoint and user shares its tokens. */
export const sharedIamTokens = new IamTokenCache();

/** The error a client sees when signing fails (no credentials, no region, ...): a configuration problem. */
export class IamSigningError extends Error {
  constructor(cause: unknown) {
    super(`cannot make an IAM auth token: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'IamSigningError';
  }
}
