import { afterEach, describe, expect, it } from 'vitest';
import { testRegistryPolicy, allowTestHost } from '../test-support/allow-list.ts';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { RegistryClient } from './client.ts';
import { RegistryError } from './errors.ts';
import { MediaType } from './media-types.ts';

// Small node:http servers standing in for behaviour the Debian registry never shows: overload
// (503), rate limits (429), redirects to object storage, stalls, and Docker Hub's token service
// (which cannot be reached from here).

interface StandIn {
  host: string;
  requests: http.IncomingMessage[];
}

const servers: http.Server[] = [];
const disallow: (() => void)[] = [];
afterEach(async () => {
  for (const d of disallow.splice(0)) d();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void,
): Promise<StandIn> {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  disallow.push(allowTestHost(host));
  return { host, requests };
}

const manifestBytes = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: 'sha256:' + 'c'.repeat(64), size: 2 },
    layers: [],
  }),
);
const manifestDigest = 'sha256:' + createHash('sha256').update(manifestBytes).digest('hex');
const blobBytes = Buffer.from('layer bytes from object storage');
const blobDigest = 'sha256:' + createHash('sha256').update(blobBytes).digest('hex');

function sendManifest(res: http.ServerResponse): void {
  res.writeHead(200, {
    'content-type': MediaType.OciManifest,
    'docker-content-digest': manifestDigest,
    'content-length': manifestBytes.length,
  });
  res.end(manifestBytes);
}

const fast = { backoffMs: 5, retries: 3 };

describe('retries', () => {
  it('should retry 503 answers and succeed on the third attempt', async () => {
    const server = await serve((_req, res, n) =>
      n <= 2 ? res.writeHead(503).end('busy') : sendManifest(res),
    );
    const client = new RegistryClient({ ...testRegistryPolicy(), registry: server.host, ...fast });
    const manifest = await client.getManifest('foo/bar', 'latest');
    expect(manifest.digest).toBe(manifestDigest);
    expect(server.requests).toHaveLength(3);
  });

  it('should wait as long as Retry-After says after a 429', async () => {
    const times: number[] = [];
    const server = await serve((_req, res, n) => {
      times.push(Date.now());
      if (n === 1) res.writeHead(429, { 'retry-after': '1' }).end();
      else sendManifest(res);
    });
    const client = new RegistryClient({ ...testRegistryPolicy(), registry: server.host, ...fast });
    await client.getManifest('foo/bar', 'latest');
    expect(server.requests).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
  });

  it('should give up after the bounded number of attempts with the status', async () => {
    const server = await serve((_req, res) => res.writeHead(503).end());
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: server.host,
      backoffMs: 5,
      retries: 2,
    });
    const error = (await client.getManifest('foo/bar', 'latest').catch((e: unknown) => e)) as RegistryError;
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.kind).toBe('unreachable');
    expect(error.status).toBe(503);
    expect(server.requests).toHaveLength(3);
  });

  it('should never retry a 4xx other than 429', async () => {
    const server = await serve((_req, res) =>
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}'),
    );
    const client = new RegistryClient({ ...testRegistryPolicy(), registry: server.host, ...fast });
    const error = (await client.getManifest('foo/bar', 'latest').catch((e: unknown) => e)) as RegistryError;
    expect(error.kind).toBe('protocol');
    expect(server.requests).toHaveLength(1);
  });

  it('should say unreachable when the registry does not answer in time', async () => {
    const server = await serve(() => {});
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: server.host,
      timeoutMs: 150,
      retries: 1,
      backoffMs: 5,
    });
    const error = (await client.getManifest('foo/bar', 'latest').catch((e: unknown) => e)) as RegistryError;
    expect(error.kind).toBe('unreachable');
    expect(error.message).toContain('no answer within 150 ms');
    expect(server.requests).toHaveLength(2);
  });

  it('should fail a blob stream that stalls midway', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': blobBytes.length });
      res.write(blobBytes.subarray(0, 5));
    });
    const client = new RegistryClient({ ...testRegistryPolicy(), registry: server.host, timeoutMs: 150 });
    const stream = await client.blob('foo/bar', blobDigest);
    const error = await (async () => {
      for await (const _ of stream as unknown as AsyncIterable<Uint8Array>) {
        /* drain */
      }
    })().catch((e: unknown) => e);
    expect((error as RegistryError).kind).toBe('unreachable');
  });
});

describe('Bearer token dance (stand-in for Docker Hub token service)', () => {
  async function hub(options: { expiresIn?: number } = {}) {
    const tokens: URL[] = [];
    let issued = 0;
    const auth = await serve((req, res) => {
      const url = new URL(req.url!, 'http://x');
      tokens.push(url);
      if (req.headers.authorization !== `Basic ${Buffer.from('me:secret').toString('base64')}`) {
        res.writeHead(401).end();
        return;
      }
      issued++;
      res.writeHead(200, { 'content-type': 'application/json' });
      // Only `access_token`, as some OAuth2-style services send.
      res.end(JSON.stringify({ access_token: `tok-${issued}`, expires_in: options.expiresIn ?? 300 }));
    });
    const storage = await serve((req, res) => {
      res.writeHead(200, {
        'content-length': blobBytes.length,
        'x-saw-authorization': String(req.headers.authorization ?? ''),
      });
      res.end(blobBytes);
    });
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== `Bearer tok-${issued}` || issued === 0) {
        res.writeHead(401, {
          'content-type': 'application/json',
          'www-authenticate': `Bearer realm="http://${auth.host}/token",service="stand-in registry",scope="repository:foo/bar:pull,push"`,
        });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      } else if (req.url!.includes('/blobs/')) {
        res.writeHead(307, { location: `http://${storage.host}/bucket/blob?X-Amz-Signature=abc` }).end();
      } else {
        sendManifest(res);
      }
    });
    return { auth, storage, registry, tokens };
  }

  it('should ask the realm with service and the challenge scope, and reuse the token', async () => {
    const { registry, tokens } = await hub();
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: registry.host,
      credentials: { username: 'me', password: 'secret' },
    });
    await client.getManifest('foo/bar', 'latest');
    await client.getManifest('foo/bar', manifestDigest);
    expect(tokens).toHaveLength(1);
    expect(tokens[0]!.searchParams.get('service')).toBe('stand-in registry');
    expect(tokens[0]!.searchParams.getAll('scope')).toEqual(['repository:foo/bar:pull,push']);
    // First call: challenge, then with the token; second call: with the cached token up front.
    expect(registry.requests.map((r) => r.headers.authorization ?? null)).toEqual([
      null,
      'Bearer tok-1',
      'Bearer tok-1',
    ]);
  });

  it('should fetch a new token once the old one expires', async () => {
    const { registry, tokens } = await hub({ expiresIn: 1 });
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: registry.host,
      credentials: { username: 'me', password: 'secret' },
    });
    await client.getManifest('foo/bar', 'latest');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await client.getManifest('foo/bar', 'latest');
    expect(tokens).toHaveLength(2);
  });

  it('should follow a blob redirect to storage without sending the registry credentials there', async () => {
    const { registry, storage } = await hub();
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: registry.host,
      credentials: { username: 'me', password: 'secret' },
    });
    const chunks: Uint8Array[] = [];
    for await (const c of (await client.blob('foo/bar', blobDigest)) as unknown as AsyncIterable<Uint8Array>)
      chunks.push(c);
    expect(Buffer.concat(chunks).equals(blobBytes)).toBe(true);
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]!.headers.authorization).toBeUndefined();
  });

  it('should say the credentials were refused when the token service says 401', async () => {
    const { registry } = await hub();
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: registry.host,
      credentials: { username: 'me', password: 'wrong' },
    });
    const error = (await client.getManifest('foo/bar', 'latest').catch((e: unknown) => e)) as RegistryError;
    expect(error.kind).toBe('unauthorized');
    expect(error.message).toBe('The registry refused the credentials');
  });
});

describe('client setup', () => {
  it('should use HTTPS except for loopback hosts, and Docker Hub API host for docker.io', () => {
    expect(new RegistryClient({ registry: 'ghcr.io' }).baseUrl).toBe('https://ghcr.io');
    expect(new RegistryClient({ registry: 'docker.io' }).baseUrl).toBe('https://registry-1.docker.io');
    expect(new RegistryClient({ registry: 'localhost:5000' }).baseUrl).toBe('https://localhost:5000');
    expect(new RegistryClient({ registry: '127.0.0.1:5000' }).baseUrl).toBe('https://127.0.0.1:5000');
    expect(
      new RegistryClient({ registry: 'registry.lan:5000', allowInsecure: ['registry.lan:5000'] }).baseUrl,
    ).toBe('http://registry.lan:5000');
    expect(
      new RegistryClient({ registry: '127.0.0.1:5000', allowInsecure: ['127.0.0.1:5000'] }).baseUrl,
    ).toBe('http://127.0.0.1:5000');
    expect(() => new RegistryClient({ registry: 'ghcr.io/org' })).toThrow('not a registry host');
  });

  it('should send a ready-made token as Bearer up front', async () => {
    const server = await serve((req, res) => {
      if (req.headers.authorization === 'Bearer ready-made') sendManifest(res);
      else res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://127.0.0.1:1/token"' }).end();
    });
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: server.host,
      credentials: { token: 'ready-made' },
    });
    expect((await client.getManifest('foo/bar', 'latest')).digest).toBe(manifestDigest);
    const refused = new RegistryClient({
      ...testRegistryPolicy(),
      registry: server.host,
      credentials: { token: 'stale' },
    });
    expect(
      ((await refused.getManifest('foo/bar', 'latest').catch((e: unknown) => e)) as RegistryError).kind,
    ).toBe('unauthorized');
  });
});
