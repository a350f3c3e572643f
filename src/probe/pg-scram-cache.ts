// SCRAM-SHA-256 makes the client run PBKDF2 with 4096 iterations on every login: ~5 ms of CPU
// per connection on a small machine, which would dominate `fresh` probes at 10 ms intervals.
// The salted password depends only on (password, salt, iterations), all fixed per role, so
// it is derived once and reused; the proof each login sends still uses that login's nonces.
// node-postgres looks `deriveKey` up on its crypto utils module at call time; when a future
// version moves it, this does nothing and logins just cost what they cost.
import { createRequire } from 'node:module';

const MAX_ENTRIES = 64;

type DeriveKey = (password: string, salt: Uint8Array, iterations: number) => Promise<ArrayBuffer>;

let installed = false;

export function enableScramKeyCache(): void {
  if (installed) return;
  installed = true;
  let utils: { deriveKey?: DeriveKey };
  try {
    utils = createRequire(import.meta.url)('pg/lib/crypto/utils');
  } catch {
    return;
  }
  const derive = utils.deriveKey;
  if (typeof derive !== 'function') return;
  const cache = new Map<string, Promise<ArrayBuffer>>();
  utils.deriveKey = (password, salt, iterations) => {
    const key = `${iterations}:${Buffer.from(salt).toString('base64')}:${password}`;
    let derived = cache.get(key);
    if (!derived) {
      if (cache.size >= MAX_ENTRIES) cache.clear();
      derived = derive(password, salt, iterations);
      cache.set(key, derived);
      derived.catch(() => cache.delete(key));
    }
    return derived;
  };
}
