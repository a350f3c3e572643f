// Where a new connection goes: with a configured DNS server the probe resolves the name
// itself (each fresh attempt / each new pooled connection) and connects to the address, so
// it sees a CNAME flip as soon as that server does; without one the socket's own lookup
// (the system resolver) applies.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Name resolution failed; always class dns_error, whatever the resolver's code. */
export class HostResolutionError extends Error {
  readonly code: string;
  constructor(host: string, server: string, cause: unknown) {
    const code = (cause as { code?: unknown })?.code;
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`resolving ${host} via ${server} failed: ${reason}`);
    this.name = 'HostResolutionError';
    this.code = typeof code === 'string' ? code : 'EDNS';
  }
}

export class HostResolver {
  readonly #server: string | undefined;
  readonly #resolver: Resolver | undefined;

  /** `dnsServer` as `ip:port` (or `ip`); `timeoutMs` bounds one DNS query. */
  constructor(dnsServer: string | undefined, timeoutMs: number) {
    this.#server = dnsServer;
    if (dnsServer) {
      this.#resolver = new Resolver({ timeout: Math.max(1, Math.floor(timeoutMs)), tries: 1 });
      this.#resolver.setServers([dnsServer]);
    }
  }

  /** The address to connect to, or undefined to let the socket resolve `host` itself. */
  async resolve(host: string): Promise<string | undefined> {
    if (!this.#resolver || isIP(host) !== 0) return undefined;
    try {
      const addresses = await this.#resolver.resolve4(host);
      if (addresses.length === 0) throw Object.assign(new Error('no A records'), { code: 'ENODATA' });
      return addresses[0];
    } catch (err) {
      throw new HostResolutionError(host, this.#server!, err);
    }
  }
}
