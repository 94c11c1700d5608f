import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRegistryPolicy } from '../test-support/allow-list.ts';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { RegistryClient } from '../registry/client.ts';
import { RegistryError } from '../registry/errors.ts';
import { corruptBlob, startRegistry, type TestRegistry } from '../test-support/registry.ts';
import { buildTestImage, type TestImage } from '../test-support/image.ts';
import { pushImage } from '../test-support/skopeo.ts';
import { testStore } from '../test-support/s3.ts';
import { copyBlobsToStore } from './store.ts';
import { blobKey, headSize, type ObjectStoreTarget } from './object-store.ts';
import { ArchiveError, buildImagesArchive, archiveImageFromRegistry } from './images-archive.ts';

// Its own registry: tampering with stored blobs must not leak into other suites' images.
let registry: TestRegistry;
let layout: string;
let image: TestImage;
let client: RegistryClient;
let s3: ObjectStoreTarget;
let prefix: string;

beforeAll(async () => {
  registry = await startRegistry();
  layout = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-layout-'));
  image = await buildTestImage({
    dir: layout,
    tag: 'v1',
    layers: [
      { files: { 'etc/small': 'small layer\n' } },
      // Several MiB, altered near its end below: most of it is sent before the digest can be checked.
      { random: { path: 'data/big.bin', size: 6 * 1024 * 1024, seed: 'store-test' } },
      { files: { 'etc/untouched': 'still fine\n' } },
      // Never altered: copied in parts once the single-PUT limit is lowered.
      { random: { path: 'data/big-intact.bin', size: 6 * 1024 * 1024 + 1, seed: 'store-test-intact' } },
    ],
  });
  await pushImage(layout, 'v1', `${registry.host}/tamper/app:v1`);
  client = new RegistryClient({ ...testRegistryPolicy(), registry: registry.host });
  ({ s3, prefix } = testStore());
});

afterAll(async () => {
  await registry?.stop();
  s3?.client.destroy();
  if (layout) await fs.rm(layout, { recursive: true, force: true });
});

async function keysUnder(p: string): Promise<string[]> {
  const answer = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: p }));
  return (answer.Contents ?? []).map((o) => o.Key!);
}

describe('copyBlobsToStore against altered registry storage', () => {
  it('should fail with digest-mismatch and leave nothing at the key when a small blob was altered', async () => {
    const layer = image.layers[0]!;
    await corruptBlob(registry, layer.digest);
    const error = await copyBlobsToStore({
      client,
      repository: 'tamper/app',
      blobs: [layer],
      s3,
      prefix,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).kind).toBe('digest-mismatch');
    expect(await headSize(s3, blobKey(layer.digest, prefix))).toBeNull();
  });

  it('should fail with digest-mismatch and leave nothing at the key when a blob of several MiB was altered near its end', async () => {
    const layer = image.layers[1]!;
    await corruptBlob(registry, layer.digest, (bytes) => {
      bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff; // near the end: most of it is already sent
    });
    const error = await copyBlobsToStore({
      client,
      repository: 'tamper/app',
      blobs: [layer],
      s3,
      prefix,
    }).catch((e: unknown) => e);
    expect((error as RegistryError).kind).toBe('digest-mismatch');
    expect(await headSize(s3, blobKey(layer.digest, prefix))).toBeNull();
    expect(await keysUnder(prefix)).toEqual([]);
  });

  it('should upload a blob over the single-PUT limit in parts, and leave nothing when it was altered near its end', async () => {
    // The limit is 5 GiB; lowered here so that a few MiB go the way a huge layer would.
    const layer = image.layers[1]!;
    expect(layer.size).toBeGreaterThan(6 * 1024 * 1024);
    await corruptBlob(registry, layer.digest, (bytes) => {
      bytes[bytes.length - 200] = bytes[bytes.length - 200]! ^ 0xff; // in the last part: the first one is already uploaded
    });
    const error = await copyBlobsToStore({
      client,
      repository: 'tamper/app',
      blobs: [layer],
      s3,
      prefix,
      singlePutMax: 1024 * 1024,
      partSize: 5 * 1024 * 1024,
    }).catch((e: unknown) => e);
    expect((error as RegistryError).kind).toBe('digest-mismatch');
    expect(await keysUnder(prefix)).toEqual([]);

    const intact = image.layers[3]!;
    expect(intact.size).toBeGreaterThan(6 * 1024 * 1024);
    expect(
      await copyBlobsToStore({
        client,
        repository: 'tamper/app',
        blobs: [intact],
        s3,
        prefix,
        singlePutMax: 1024 * 1024,
        partSize: 5 * 1024 * 1024,
      }),
    ).toEqual([{ digest: intact.digest, size: intact.size, copied: true }]);
    expect(await headSize(s3, blobKey(intact.digest, prefix))).toBe(intact.size);
  });

  it('should copy an unaltered blob of the same image', async () => {
    const layer = image.layers[2]!;
    expect(
      await copyBlobsToStore({ client, repository: 'tamper/app', blobs: [layer, layer], s3, prefix }),
    ).toEqual([{ digest: layer.digest, size: layer.size, copied: true }]);
    expect(await headSize(s3, blobKey(layer.digest, prefix))).toBe(layer.size);
  });

  it('should fail the archive stream with digest-mismatch when a stored blob does not match its digest', async () => {
    const archived = await archiveImageFromRegistry(client, `${registry.host}/tamper/app:v1`);
    const layer = image.layers[2]!;
    const wrong = Buffer.alloc(layer.size, 1);
    const archive = buildImagesArchive({
      images: [archived],
      omitLayers: [image.layers[0]!.digest, image.layers[1]!.digest],
      readBlob: async (d) => {
        if (d.digest === layer.digest) return new Blob([wrong]).stream();
        return client.blob('tamper/app', d.digest, { size: d.size });
      },
    });
    const drained = (async () => {
      for await (const _ of archive.stream) void _;
    })();
    const error = await drained.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArchiveError);
    expect((error as ArchiveError).kind).toBe('digest-mismatch');
    await expect(archive.done).rejects.toBeInstanceOf(ArchiveError);
  });
});
