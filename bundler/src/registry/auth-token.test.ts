import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRegistryPolicy } from '../test-support/allow-list.ts';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RegistryClient } from './client.ts';
import { RegistryError } from './errors.ts';
import { startRegistry, type TestRegistry } from '../test-support/registry.ts';
import { buildMultiArchImage, type TestMultiArchImage } from '../test-support/image.ts';
import { pushImage, skopeoInspect } from '../test-support/skopeo.ts';

// The registry runs with `auth.token`, trusting a token server (test-support/token-server.ts)
// that signs real JWTs: the same protocol as Docker Hub, GHCR and ACR, whose token services
// cannot be reached from here.
const login = { username: 'ci-bot', password: 'token-secret' };
let registry: TestRegistry;
let layout: string;
let multi: TestMultiArchImage;

beforeAll(async () => {
  registry = await startRegistry({ tokenAuth: login });
  layout = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-layout-'));
  multi = await buildMultiArchImage({
    dir: layout,
    tag: 'v1',
    layers: [{ files: { 'etc/token-auth': 'bearer\n' } }],
  });
  await pushImage(layout, 'v1', `${registry.host}/team/app:v1`, login);
});

afterAll(async () => {
  await registry?.stop();
  if (layout) await fs.rm(layout, { recursive: true, force: true });
});

describe('Bearer token auth (registry with a token service)', () => {
  it('should get a token for the repository scope, resolve an index and stream a blob with it', async () => {
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: registry.host,
      credentials: login,
    });
    const inspected = await skopeoInspect(`${registry.host}/team/app:v1`, { creds: login });
    const seen = registry.tokenServer!.requests.length;
    const resolved = await client.resolve('team/app', 'v1', { os: 'linux', architecture: 'arm64' });
    expect(resolved.indexDigest).toBe(inspected.Digest);
    expect(resolved.digest).toBe(multi.images[1]!.digest);
    const layer = resolved.layers[0]!;
    let size = 0;
    for await (const c of (await client.blob(
      'team/app',
      layer.digest,
    )) as unknown as AsyncIterable<Uint8Array>)
      size += c.byteLength;
    expect(size).toBe(layer.size);

    // One token for the whole scope, reused for the index, the manifest, the config and the blob.
    const mine = registry.tokenServer!.requests.slice(seen);
    expect(mine).toEqual([{ scopes: ['repository:team/app:pull'], username: login.username, granted: true }]);
  });

  it('should say unauthorized when the token service refuses the password', async () => {
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: registry.host,
      credentials: { ...login, password: 'nope' },
    });
    const error = await client.resolve('team/app', 'v1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).kind).toBe('unauthorized');
    expect((error as RegistryError).message).toBe('The registry refused the credentials');
  });

  it('should say unauthorized without credentials', async () => {
    const client = new RegistryClient({ ...testRegistryPolicy(), registry: registry.host });
    const error = await client.resolve('team/app', 'v1').catch((e: unknown) => e);
    expect((error as RegistryError).kind).toBe('unauthorized');
  });
});
