import ipaddr from 'ipaddr.js';
import { RegistryError } from './errors.ts';

/**
 * Where the registry client may connect (server-side request forgery): an organisation names its
 * registries, so every address it names — the registry, each redirect, the token service — is
 * checked before a connection. HTTPS only, and only to public addresses, except for the `host:port`
 * entries of an explicit allow-list (self-hosted registries on a LAN or on the server itself), which
 * may use plain HTTP and any address. Names are checked again after DNS resolution by
 * `guardedFetch` (Node), on the address actually connected to.
 */
export type AllowList = Iterable<string>;

const HOST_PORT = /^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?):(\d{1,5})$/;

/**
 * Parses `OUTPOST_REGISTRY_ALLOW_INSECURE`: comma-separated `host:port` entries (`127.0.0.1:5000`,
 * `registry.lan:5000`, `[::1]:5000`); throws a `TypeError` naming a bad entry.
 *
 * @example
 * parseAllowInsecure('127.0.0.1:5000, registry.lan:5000') // ['127.0.0.1:5000', 'registry.lan:5000']
 */
export function parseAllowInsecure(value: string | undefined): string[] {
  if (!value?.trim()) return [];
  return value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
    .map((entry) => {
      const m = HOST_PORT.exec(entry);
      if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535)
        throw new TypeError(`"${entry}" is not host:port (e.g. 127.0.0.1:5000 or registry.lan:5000)`);
      return entry;
    });
}

/** `host:port` of a URL, with the scheme's default port, as allow-list entries are written. */
export function hostPort(url: URL): string {
  const port = url.port || (url.protocol === 'http:' ? '80' : '443');
  return `${url.hostname.toLowerCase()}:${port}`;
}

export function isAllowListed(url: URL, allow: AllowList | undefined): boolean {
  if (!allow) return false;
  const key = hostPort(url);
  for (const entry of allow) if (entry.toLowerCase() === key) return true;
  return false;
}

/** True only for a public unicast address: not loopback, private, link-local, unique-local, CGNAT, metadata, multicast, reserved or mapped. */
export function isPublicAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  if (!ipaddr.isValid(bare)) return false;
  return ipaddr.process(bare).range() === 'unicast';
}

export function forbiddenDestination(url: URL | string): RegistryError {
  const host = typeof url === 'string' ? url : url.host;
  return new RegistryError('forbidden-address', `${host} is not an allowed registry address`);
}

/**
 * Refuses a URL before any connection: anything but https, or an address literal that is not
 * public, unless its `host:port` is allow-listed. Names are left to `guardedFetch`.
 */
export function assertAllowedUrl(url: URL, allow: AllowList | undefined): void {
  if (isAllowListed(url, allow)) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw forbiddenDestination(url);
    return;
  }
  if (url.protocol !== 'https:') throw forbiddenDestination(url);
  if (url.username || url.password) throw forbiddenDestination(url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (ipaddr.isValid(host)) {
    if (!isPublicAddress(host)) throw forbiddenDestination(url);
  } else if (host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) {
    // Single-label names resolve through local search domains: never a public registry.
    throw forbiddenDestination(url);
  }
}
