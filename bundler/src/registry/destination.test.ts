import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { RegistryClient } from './client.ts';
import { RegistryError } from './errors.ts';
import { MediaType } from './media-types.ts';
import { assertAllowedUrl, isPublicAddress, parseAllowInsecure } from './destination.ts';
import { guardedFetch } from './guarded-fetch.ts';

// The destination policy against real loopback servers: each one counts the requests it saw, so a
// refusal is proved by the target never being asked, not only by the error.

interface Target {
  host: string;
  port: number;
  requests: http.IncomingMessage[];
}
const servers: http.Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_q, res) =>
    res.end('private things'),
): Promise<Target> {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { host: `127.0.0.1:${port}`, port, requests };
}

const blobBytes = Buffer.from('layer bytes');
const blobDigest = 'sha256:' + createHash('sha256').update(blobBytes).digest('hex');
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: blobDigest, size: blobBytes.length },
    layers: [],
  }),
);
const fast = { retries: 0, backoffMs: 1, timeoutMs: 3000 };

async function refusal(promise: Promise<unknown>): Promise<RegistryError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RegistryError);
  expect((error as RegistryError).kind).toBe('forbidden-address');
  expect((error as RegistryError).message).toMatch(/is not an allowed registry address$/);
  return error as RegistryError;
}

describe('destination policy: what is refused', () => {
  it('should refuse a loopback registry that is not allow-listed, by address and by name, without connecting', async () => {
    const target = await serve();
    await refusal(new RegistryClient({ registry: target.host, ...fast }).getManifest('a/b', 'latest'));
    await refusal(
      new RegistryClient({ registry: `localhost:${target.port}`, ...fast }).getManifest('a/b', 'latest'),
    );
    await refusal(
      new RegistryClient({ registry: `http://${target.host}`, ...fast }).getManifest('a/b', 'latest'),
    );
    expect(target.requests).toHaveLength(0);
  });

  it('should refuse a redirect to an address that is not allowed, and send nothing there', async () => {
    const inside = await serve();
    const registry = await serve((req, res) => {
      if (req.url?.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': MediaType.OciManifest, 'content-length': manifest.length });
        return res.end(manifest);
      }
      res.writeHead(307, { location: `http://${inside.host}/latest/meta-data/` }).end();
    });
    const allow = [registry.host];
    const client = new RegistryClient({
      registry: registry.host,
      allowInsecure: allow,
      fetch: guardedFetch(allow),
      ...fast,
    });
    await refusal(client.blob('a/b', blobDigest));
    expect(inside.requests).toHaveLength(0);
  });

  it('should refuse a token realm on another host over plain HTTP, and never send it the credentials', async () => {
    const realm = await serve((_req, res) => res.end(JSON.stringify({ token: 't' })));
    const registry = await serve((req, res) => {
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="http://${realm.host}/token",service="r"`,
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED' }] }));
    });
    const allow = [registry.host];
    const client = new RegistryClient({
      registry: registry.host,
      allowInsecure: allow,
      fetch: guardedFetch(allow),
      credentials: { username: 'org', password: 'secret' },
      ...fast,
    });
    await refusal(client.getManifest('a/b', 'latest'));
    expect(realm.requests).toHaveLength(0);
  });

  it('should check a name after DNS resolution: a name that resolves to loopback is refused unless allow-listed', async () => {
    const target = await serve();
    // /etc/hosts maps this machine's name to 127.0.0.1.
    const refused = await guardedFetch([])(`http://localhost:${target.port}/`).then(
      () => null,
      (e: unknown) => e,
    );
    expect(String((refused as Error)?.cause ?? refused)).toMatch(/not an allowed registry address/);
    expect(target.requests).toHaveLength(0);
    const allowed = await guardedFetch([`localhost:${target.port}`])(`http://localhost:${target.port}/`);
    expect(await allowed.text()).toBe('private things');
  });

  it('should not repeat what a registry answered in its errors (no reading other services through us)', async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'WEIRD', message: 'root:x:0:0:root:/root:/bin/bash' }] }));
    });
    const allow = [registry.host];
    const error = await new RegistryClient({
      registry: registry.host,
      allowInsecure: allow,
      fetch: guardedFetch(allow),
      ...fast,
    })
      .getManifest('a/b', 'latest')
      .catch((e: Error) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as Error).message).not.toContain('root:x');
  });
});

describe('destination policy: rules', () => {
  it('should take only public unicast addresses as public', () => {
    for (const a of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '224.0.0.1',
      '[::1]',
    ]) {
      expect(isPublicAddress(a), a).toBe(false);
    }
    for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700::1111']) expect(isPublicAddress(a), a).toBe(true);
  });

  it('should allow https to public hosts, and plain http or private addresses only for an allow-listed host:port', () => {
    expect(() => assertAllowedUrl(new URL('https://ghcr.io/v2/'), [])).not.toThrow();
    expect(() => assertAllowedUrl(new URL('https://8.8.8.8/v2/'), [])).not.toThrow();
    for (const u of [
      'http://ghcr.io/v2/',
      'https://127.0.0.1/',
      'https://[::1]:5000/',
      'https://169.254.169.254/',
      'https://localhost:5000/',
      'https://registry/',
      'file:///etc/passwd',
      'https://u:p@ghcr.io/',
    ]) {
      expect(() => assertAllowedUrl(new URL(u), []), u).toThrow(/not an allowed registry address/);
    }
    expect(() => assertAllowedUrl(new URL('http://127.0.0.1:5000/v2/'), ['127.0.0.1:5000'])).not.toThrow();
    expect(() => assertAllowedUrl(new URL('http://127.0.0.1:5001/v2/'), ['127.0.0.1:5000'])).toThrow();
    expect(() =>
      assertAllowedUrl(new URL('http://registry.lan:5000/v2/'), ['registry.lan:5000']),
    ).not.toThrow();
  });

  it('should parse OUTPOST_REGISTRY_ALLOW_INSECURE and refuse entries without a port', () => {
    expect(parseAllowInsecure(' 127.0.0.1:5000, Registry.LAN:5000 ,[::1]:5000')).toEqual([
      '127.0.0.1:5000',
      'registry.lan:5000',
      '[::1]:5000',
    ]);
    expect(parseAllowInsecure(undefined)).toEqual([]);
    expect(() => parseAllowInsecure('registry.lan')).toThrow(/not host:port/);
    expect(() => parseAllowInsecure('http://x:5000')).toThrow(/not host:port/);
  });
});
