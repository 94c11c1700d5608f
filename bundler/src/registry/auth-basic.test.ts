import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRegistryPolicy } from '../test-support/allow-list.ts';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { RegistryClient } from './client.ts';
import { RegistryError } from './errors.ts';
import { startRegistry, type TestRegistry } from '../test-support/registry.ts';
import { buildTestImage, type TestImage } from '../test-support/image.ts';
import { pushImage, skopeoInspect } from '../test-support/skopeo.ts';

const login = { username: 'site-builder', password: 'correct horse, "battery" staple' };
let registry: TestRegistry;
let layout: string;
let image: TestImage;

beforeAll(async () => {
  registry = await startRegistry({ htpasswd: login });
  layout = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-layout-'));
  image = await buildTestImage({
    dir: layout,
    tag: 'v1',
    layers: [{ files: { 'etc/basic-auth': 'private\n' } }],
  });
  await pushImage(layout, 'v1', `${registry.host}/private/app:v1`, login);
});

afterAll(async () => {
  await registry?.stop();
  if (layout) await fs.rm(layout, { recursive: true, force: true });
});

describe('Basic auth (htpasswd registry)', () => {
  it('should resolve and stream blobs with the right password', async () => {
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: registry.host,
      credentials: login,
    });
    const resolved = await client.resolve('private/app', 'v1');
    expect(resolved.digest).toBe(
      (await skopeoInspect(`${registry.host}/private/app:v1`, { creds: login })).Digest,
    );
    const layer = resolved.layers[0]!;
    const chunks: Uint8Array[] = [];
    for await (const c of (await client.blob(
      'private/app',
      layer.digest,
    )) as unknown as AsyncIterable<Uint8Array>)
      chunks.push(c);
    expect('sha256:' + createHash('sha256').update(Buffer.concat(chunks)).digest('hex')).toBe(
      image.layers[0]!.digest,
    );
    expect(await client.headBlob('private/app', layer.digest)).toEqual({ size: layer.size });
  });

  it('should say unauthorized for a wrong password', async () => {
    const client = new RegistryClient({
      ...testRegistryPolicy(),
      registry: registry.host,
      credentials: { ...login, password: 'wrong' },
    });
    const error = await client.resolve('private/app', 'v1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).kind).toBe('unauthorized');
    expect((error as RegistryError).message).toBe('The registry refused the credentials');
  });

  it('should say unauthorized without credentials', async () => {
    const client = new RegistryClient({ ...testRegistryPolicy(), registry: registry.host });
    const error = await client.resolve('private/app', 'v1').catch((e: unknown) => e);
    expect((error as RegistryError).kind).toBe('unauthorized');
    expect((error as RegistryError).message).toContain('requires credentials for private/app');
  });
});
