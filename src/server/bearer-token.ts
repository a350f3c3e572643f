// Bearer tokens on failwatch's HTTP APIs: reading `Authorization: Bearer <token>` and
// comparing it with the expected one in constant time (both sides hashed first, so neither
// the content nor the length of the secret shows in the timing).
import { createHash, timingSafeEqual } from 'node:crypto';

/** Longest Authorization header we look at; longer ones are refused without hashing. */
export const MAX_AUTHORIZATION_LENGTH = 8192;

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string' || header.length > MAX_AUTHORIZATION_LENGTH) return undefined;
  const match = /^Bearer +([!-~]+) *$/i.exec(header);
  return match?.[1];
}

/** Whether `given` equals `expected`, in time independent of where they differ. */
export function tokensEqual(given: string | undefined, expected: string): boolean {
  if (given === undefined || expected === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
