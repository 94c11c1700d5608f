import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRegistryPolicy } from '../test-support/allow-list.ts';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { RegistryClient } from '../registry/client.ts';
import { startRegistry, type TestRegistry } from '../test-support/registry.ts';
import { buildMultiArchImage, buildTestImage, type TestImage } from '../test-support/image.ts';
import { pushImage } from '../test-support/skopeo.ts';
import { testStore } from '../test-support/s3.ts';
import { podmanLoad } from '../test-support/podman.ts';
import { copyBlobsToStore, readStoredRange } from './store.ts';
import { blobKey, type ObjectStoreTarget } from './object-store.ts';
import {
  archiveImageFromRegistry,
  readImagesArchive,
  type ArchiveImage,
  type ImagesArchiveLayout,
} from './images-archive.ts';
import { recordImagesArchive, type RecordedImagesArchive } from './store-archive.ts';

const run = promisify(execFile);

let registry: TestRegistry;
let work: string;
let client: RegistryClient;
let s3: ObjectStoreTarget;
// A prefix of this suite's own, so "copied the first time" does not depend on other suites.
let prefix: string;
let backend: TestImage;
let frontend: TestImage;
let multiAmd64: TestImage;
let images: (ArchiveImage & { repository: string })[];
let base: TestImage['layers'][number];

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-archive-'));
  registry = await startRegistry();
  const layout = path.join(work, 'layout');
  // Incompressible, like a real layer: leaving it out of a delta must show in the size whatever the gzip level.
  const baseBin = Buffer.concat(
    Array.from({ length: 2048 }, (_, i) => createHash('sha256').update(`base-${i}`).digest()),
  );
  const baseLayer = {
    files: { 'etc/os-release': 'NAME=outpost-base\n', 'usr/lib/base.bin': new Uint8Array(baseBin) },
  };
  backend = await buildTestImage({
    dir: layout,
    tag: 'backend',
    layers: [baseLayer, { files: { 'app/backend.txt': 'backend 1.0\n' } }],
  });
  frontend = await buildTestImage({
    dir: layout,
    tag: 'frontend',
    layers: [baseLayer, { files: { 'app/frontend.txt': 'frontend 1.1\n' } }],
  });
  const multi = await buildMultiArchImage({
    dir: layout,
    tag: 'multi',
    layers: [{ files: { 'app/worker.txt': 'worker 2.0\n' } }],
  });
  multiAmd64 = multi.images.find((i) => i.platform.architecture === 'amd64')!;
  base = backend.layers[0]!;
  expect(frontend.layers[0]!.digest).toBe(base.digest);

  await Promise.all([
    pushImage(layout, 'backend', `${registry.host}/emr/backend:1.0`),
    pushImage(layout, 'frontend', `${registry.host}/emr/frontend:1.1`),
    pushImage(layout, 'multi', `${registry.host}/emr/worker:2.0`),
  ]);
  client = new RegistryClient({ ...testRegistryPolicy(), registry: registry.host });
  ({ s3, prefix } = testStore());
  images = await Promise.all(
    [
      `${registry.host}/emr/backend:1.0`,
      `${registry.host}/emr/frontend:1.1`,
      `${registry.host}/emr/worker:2.0`,
    ].map((ref) => archiveImageFromRegistry(client, ref, { os: 'linux', architecture: 'amd64' })),
  );
});

afterAll(async () => {
  await registry?.stop();
  s3?.client.destroy();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** Bytes `start`-`end` of an archive as it is served: produced again from the blobs in the store. */
function served(layout: ImagesArchiveLayout, start: number, end: number): AsyncGenerator<Uint8Array> {
  return readImagesArchive(layout, start, end, (digest, from, to, size) =>
    readStoredRange(s3, blobKey(digest, prefix), from, to, size),
  );
}

async function download(archive: RecordedImagesArchive, file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(
    served(archive.layout, 0, archive.size),
    async function* (source: AsyncIterable<Uint8Array>) {
      for await (const chunk of source) {
        hash.update(chunk);
        yield chunk;
      }
    },
    createWriteStream(file),
  );
  return hash.digest('hex');
}

async function storedKeys(): Promise<string[]> {
  const answer = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
  return (answer.Contents ?? []).map((o) => o.Key!).sort();
}

async function tarList(file: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', file], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.split('\n').filter(Boolean);
}

async function readFromTgz(file: string, member: string): Promise<string> {
  const { stdout } = await run('tar', ['-xzOf', file, member], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

describe('images archive', () => {
  let full: RecordedImagesArchive;
  let tgz: string;

  it('should copy every blob once into the store and skip them all the second time', async () => {
    const copied: { digest: string; copied: boolean }[] = [];
    for (const image of images) {
      copied.push(
        ...(await copyBlobsToStore({
          client,
          repository: image.repository,
          blobs: [image.config, ...image.layers],
          s3,
          prefix,
        })),
      );
    }
    // The shared base layer is copied for the backend and found in the store for the frontend.
    expect(copied.filter((c) => c.digest === base.digest).map((c) => c.copied)).toEqual([true, false]);
    expect(copied.filter((c) => c.digest !== base.digest).every((c) => c.copied)).toBe(true);

    for (const image of images) {
      const again = await copyBlobsToStore({
        client,
        repository: image.repository,
        blobs: [image.config, ...image.layers],
        s3,
        prefix,
      });
      expect(again.map((c) => c.copied)).toEqual(again.map(() => false));
      expect(again.map((c) => c.size)).toEqual([image.config.size, ...image.layers.map((l) => l.size)]);
    }
  });

  it('should be served from the stored blobs, byte for byte the archive that was hashed, without storing the archive', async () => {
    const keysBefore = await storedKeys();
    full = await recordImagesArchive({ images, s3, prefix });
    tgz = path.join(work, 'images.tgz');
    expect(await download(full, tgz)).toBe(full.sha256);
    expect((await fs.stat(tgz)).size).toBe(full.size);
    expect(full.omitted).toEqual([]);
    expect(await storedKeys()).toEqual(keysBefore);
    // The layout carries the small files, not the blobs.
    expect(JSON.stringify(full.layout).length).toBeLessThan(8192);

    // Built again from the same blobs, it is the same archive.
    const again = await recordImagesArchive({ images, s3, prefix });
    expect(again.sha256).toBe(full.sha256);
    expect(again.layout).toEqual(full.layout);
  });

  it('should serve any byte range of the archive as those bytes of the whole', async () => {
    const whole = await fs.readFile(tgz);
    const points = [
      0,
      1,
      10,
      15,
      512 + 15,
      65_535 + 10,
      65_535 + 15,
      65_540 + 10,
      whole.length - 8,
      whole.length - 1,
      ...Array.from({ length: 30 }, () => Math.floor(Math.random() * whole.length)),
    ];
    for (let i = 0; i < 60; i++) {
      const [a, b] = [
        points[Math.floor(Math.random() * points.length)]!,
        points[Math.floor(Math.random() * points.length)]!,
      ].sort((x, y) => x - y) as [number, number];
      const chunks: Uint8Array[] = [];
      for await (const chunk of served(full.layout, a, b + 1)) chunks.push(chunk);
      expect(Buffer.concat(chunks).equals(whole.subarray(a, b + 1)), `bytes ${a}-${b}`).toBe(true);
    }
  });

  it('should keep a layer shared by two images once in the tar', async () => {
    const entries = await tarList(tgz);
    expect(new Set(entries).size).toBe(entries.length);
    expect(entries.filter((e) => e === `blobs/sha256/${base.digest.slice(7)}`)).toHaveLength(1);
    const manifest = JSON.parse(await readFromTgz(tgz, 'manifest.json')) as {
      Config: string;
      RepoTags: string[];
      Layers: string[];
    }[];
    expect(manifest.map((m) => m.RepoTags)).toEqual([
      [`${registry.host}/emr/backend:1.0`],
      [`${registry.host}/emr/frontend:1.1`],
      [`${registry.host}/emr/worker:2.0`],
    ]);
    expect(manifest[0]!.Layers[0]).toBe(manifest[1]!.Layers[0]);
    for (const path of manifest.flatMap((m) => [m.Config, ...m.Layers])) expect(entries).toContain(path);
  });

  it('should load into podman with every image ID equal to its config digest', async () => {
    const loaded = await podmanLoad(tgz, path.join(work, 'podman'));
    for (const image of images) expect(loaded.get(image.reference)).toBe(image.config.digest.slice(7));
  });

  it('should be read by skopeo as a docker-archive, diff_ids verified, for every image', async () => {
    const tar = path.join(work, 'images.tar');
    await pipeline(createReadStream(tgz), createGunzip(), createWriteStream(tar));
    expect((await fs.stat(tar)).size).toBe(full.tarSize);
    for (let i = 0; i < images.length; i++) {
      const dest = path.join(work, `copy-${i}`);
      await run('skopeo', [
        'copy',
        '--insecure-policy',
        '--quiet',
        `docker-archive:${tar}:@${i}`,
        `oci:${dest}:t`,
      ]);
      const { stdout } = await run('skopeo', ['inspect', `oci:${dest}:t`]);
      const layers = (JSON.parse(stdout) as { Layers: string[] }).Layers;
      expect(layers).toHaveLength(images[i]!.layers.length);
    }
  });

  it('should hold an OCI image layout whose manifests are the pushed ones', async () => {
    const dir = path.join(work, 'oci');
    await fs.mkdir(dir);
    await run('tar', ['-xzf', tgz, '-C', dir]);
    const expected: [string, string][] = [
      ['1.0', backend.digest],
      ['1.1', frontend.digest],
      ['2.0', multiAmd64.digest],
    ];
    for (const [tag, digest] of expected) {
      const { stdout } = await run('skopeo', ['inspect', `oci:${dir}:${tag}`]);
      expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(digest);
    }
    const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')) as {
      manifests: { annotations: Record<string, string> }[];
    };
    expect(index.manifests.map((m) => m.annotations['io.containerd.image.name'])).toEqual(
      images.map((i) => i.reference),
    );
  });

  it('should leave the omitted layers out of a delta and say which', async () => {
    const delta = await recordImagesArchive({
      images,
      s3,
      prefix,
      omitLayers: [base.digest],
      fromRelease: '0.9.0',
    });
    expect(delta.size).toBeLessThan(full.size);
    expect(delta.omitted).toEqual([base.digest]);
    const file = path.join(work, 'delta.tgz');
    expect(await download(delta, file)).toBe(delta.sha256);
    const entries = await tarList(file);
    expect(entries).not.toContain(`blobs/sha256/${base.digest.slice(7)}`);
    expect(JSON.parse(await readFromTgz(file, 'delta.json'))).toEqual({
      fromRelease: '0.9.0',
      omitted: [base.digest],
    });
    // Still listed, so docker load finds it among the layers it has.
    const manifest = JSON.parse(await readFromTgz(file, 'manifest.json')) as { Layers: string[] }[];
    expect(manifest[0]!.Layers).toContain(`blobs/sha256/${base.digest.slice(7)}`);
  });
});
