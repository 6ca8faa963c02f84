// Where a webhook may go: a URL's shape (https, a host, no credentials) and the addresses its host resolves to.
// Inside addresses (loopback, private, link-local, CGNAT, ...) are refused unless the operator allows them, so that
// a registry's users cannot make the service call its own network. The check runs on every resolution.
import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

export interface WebhookPolicy {
  /** WEBHOOK_ALLOW_PRIVATE: inside addresses are allowed (tests, dev). */
  allowPrivate: boolean;
  /** WEBHOOK_ALLOW_HTTP: plain http is allowed (tests, dev). */
  allowHttp: boolean;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Every address a host name resolves to; dns.lookup's (the system resolver, as any client would use). */
export type Resolve = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolve: Resolve = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });

/** A URL or address the policy refuses: not retried, recorded as a permanent failure, or a 400 when saving. */
export class WebhookAddressError extends Error {}

const WEBHOOK_URL_MAX_LENGTH = 2048;

// IANA special-purpose ranges that are not the public internet (RFC 6890 and its updates).
const inside = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // CGNAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
] as const) {
  inside.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64: reaches IPv4 addresses through a translator
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  inside.addSubnet(net, prefix, 'ipv6');
}

/** True for an address that is not on the public internet; an IPv4-mapped IPv6 address is judged by its IPv4. */
export function isInsideAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return inside.check(address, 'ipv4');
  if (family !== 6) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return inside.check(mapped[1]!, 'ipv4');
  // ::ffff:7f00:1 is 127.0.0.1 written in hex: BlockList compares the mapped range as IPv4 only in dotted form.
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hexMapped) {
    const [hi, lo] = [parseInt(hexMapped[1]!, 16), parseInt(hexMapped[2]!, 16)];
    return inside.check(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, 'ipv4');
  }
  return inside.check(address, 'ipv6') || /^::ffff:0:/i.test(address);
}

/** The URL as the service will call it, or a WebhookAddressError saying what to fix. Does not resolve the host. */
export function parseWebhookUrl(text: string, policy: WebhookPolicy): URL {
  if (text.length > WEBHOOK_URL_MAX_LENGTH) throw new WebhookAddressError(`is longer than ${WEBHOOK_URL_MAX_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new WebhookAddressError(`${JSON.stringify(text)} is not a URL (use e.g. https://hooks.example.com/token-expiry)`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    throw new WebhookAddressError(`must be an https URL, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username || url.password) throw new WebhookAddressError('must not carry a user name or password (put a secret in the path, or verify our signature)');
  if (!url.hostname) throw new WebhookAddressError('has no host');
  url.hash = '';
  return url;
}

/** The host without IPv6 brackets, as the resolver and isIP take it. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/**
 * Resolves the URL's host and checks every address it gives: the addresses a delivery may connect to. Throws
 * WebhookAddressError if any is inside (a host that answers with a mix is refused: the next lookup could pick either).
 */
export async function checkedAddresses(url: URL, policy: WebhookPolicy, resolve: Resolve): Promise<ResolvedAddress[]> {
  const host = hostOf(url);
  const literal = isIP(host);
  const addresses = literal ? [{ address: host, family: literal }] : await resolve(host);
  if (addresses.length === 0) throw new Error(`${host} resolves to no address`);
  if (!policy.allowPrivate) {
    const refused = addresses.filter((a) => isInsideAddress(a.address));
    if (refused.length > 0) {
      throw new WebhookAddressError(
        `${host} points inside (${refused.map((a) => a.address).join(', ')}): loopback, private and link-local addresses are refused`,
      );
    }
  }
  return addresses;
}

/**
 * A `lookup` for http.request that answers with addresses already checked, so the connection goes to an address
 * the check saw and no second lookup (a DNS rebinding) can change it.
 */
export function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const usable = options.family ? addresses.filter((a) => a.family === options.family) : addresses;
    if (usable.length === 0) {
      callback(Object.assign(new Error('no checked address of the family asked for'), { code: 'ENOTFOUND' }), '', 0);
      return;
    }
    if (options.all) (callback as unknown as (err: null, all: ResolvedAddress[]) => void)(null, usable);
    else callback(null, usable[0]!.address, usable[0]!.family);
  };
}
