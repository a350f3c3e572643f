// The DNS probe: what the endpoint name resolves to right now, as a CNAME chain followed by
// the addresses (['cname:writer.x.local', 'a:127.0.10.11']), through the system's configured
// DNS servers or the endpoint's own dnsServer, so the report can say when the endpoint flipped.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { withDeadline } from './deadline.ts';
import type { AttemptOutcome } from './types.ts';

const MAX_CHAIN = 8;

export class DnsProbe {
  readonly #host: string;
  readonly #resolver: Resolver;
  readonly #timeoutMs: number;

  constructor(host: string, dnsServer: string | undefined, timeoutMs: number) {
    this.#host = host;
    this.#timeoutMs = timeoutMs;
    this.#resolver = new Resolver({ timeout: Math.max(1, Math.floor(timeoutMs)), tries: 1 });
    if (dnsServer) this.#resolver.setServers([dnsServer]);
  }

  async attempt(): Promise<AttemptOutcome> {
    if (isIP(this.#host) !== 0) return { class: 'ok', dnsAnswer: [`a:${this.#host}`] };
    try {
      const dnsAnswer = await withDeadline('resolve', this.#timeoutMs, () => this.#resolveChain());
      return { class: 'ok', dnsAnswer };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const message = err instanceof Error ? err.message : String(err);
      return { class: 'dns_error', code: typeof code === 'string' ? code : 'ETIMEOUT', message };
    }
  }

  async #resolveChain(): Promise<string[]> {
    const answer: string[] = [];
    let name = this.#host;
    for (let i = 0; i < MAX_CHAIN; i++) {
      let cname: string | undefined;
      try {
        [cname] = await this.#resolver.resolveCname(name);
      } catch (err) {
        // ENODATA: the name has no CNAME, it is the end of the chain. Anything else
        // (ENOTFOUND, SERVFAIL, timeout) is reported by the address lookup below.
        if ((err as { code?: unknown }).code !== 'ENODATA') break;
      }
      if (!cname) break;
      answer.push(`cname:${cname}`);
      name = cname;
    }
    const addresses = await this.#resolver.resolve4(name);
    return [...answer, ...addresses.map((a) => `a:${a}`)];
  }
}
