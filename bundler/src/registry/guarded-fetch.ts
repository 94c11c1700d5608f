import dns from 'node:dns';
import { Agent, fetch as undiciFetch } from 'undici';
import { forbiddenDestination, isAllowListed, isPublicAddress, type AllowList } from './destination.ts';

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `fetch` for the registry client on Node that checks the address a name resolves to — the one
 * it then connects to, so a name cannot resolve to a public address for the check and to a private
 * one for the connection — and refuses loopback, private, link-local, unique-local and metadata
 * addresses, except for allow-listed `host:port` entries. Used by every Node entry point; on
 * Workers the platform's egress does not reach private addresses.
 *
 * @example
 * const client = new RegistryClient({ registry: 'ghcr.io', fetch: guardedFetch(allow), allowInsecure: allow });
 */
export function guardedFetch(allowInsecure: AllowList = []): typeof globalThis.fetch {
  const open = new Agent();
  const guarded = new Agent({
    connect: {
      lookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback) {
        dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
          if (error) return callback(error, '');
          const list = addresses as dns.LookupAddress[];
          if (list.length === 0 || list.some((a) => !isPublicAddress(a.address))) {
            return callback(Object.assign(forbiddenDestination(hostname), { code: 'EOUTPOSTFORBIDDEN' }), '');
          }
          if (options.all) return callback(null, list);
          return callback(null, list[0]!.address, list[0]!.family);
        });
      },
    },
  });
  return ((input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const dispatcher = isAllowListed(url, allowInsecure) ? open : guarded;
    return undiciFetch(url, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1]);
  }) as unknown as typeof globalThis.fetch;
}
