// Where a new connection goes: with a configured DNS server the probe resolves the name
// itself (each fresh attempt / each new pooled connection) and connects to the address, so
// it sees a CNAME flip as soon as that server does; without one the socket's own lookup
// (the system resolver) applies.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

/**
 * What a failed query to the endpoint's own DNS server (`dns.server`) means, in words a user
 * can act on: the resolver's codes (`queryA ECONNREFUSED name`) say what happened, not why.
 */
export function dnsFailureMessage(host: string, server: string, cause: unknown): string {
  const code = (cause as { code?: unknown })?.code;
  const reason = cause instanceof Error ? cause.message : String(cause);
  const at = `the DNS server ${server} (dns.server)`;
  switch (code) {
    case 'ECONNREFUSED':
      return `resolving ${host}: ${at} refused the query: nothing answers DNS there. Is that server running (the lab's: \`failwatch lab up\`) and is dns.server its address and port?`;
    case 'ETIMEOUT':
      return `resolving ${host}: ${at} did not answer in time: is it running and reachable from here?`;
    case 'ENOTFOUND':
      return `resolving ${host}: ${at} does not know that name (NXDOMAIN): check the endpoint's host`;
    case 'ENODATA':
      return `resolving ${host}: ${at} has no address (A record) for it: check the endpoint's host`;
    default:
      return `resolving ${host} via ${server} failed: ${reason}`;
  }
}

/** Name resolution failed; always class dns_error, whatever the resolver's code. */
export class HostResolutionError extends Error {
  readonly code: string;
  constructor(host: string, server: string, cause: unknown) {
    const code = (cause as { code?: unknown })?.code;
    super(dnsFailureMessage(host, server, cause));
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
