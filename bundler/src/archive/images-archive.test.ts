import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { RegistryClient } from '../registry/client.ts';
import { startRegistry, type TestRegistry } from '../test-support/registry.ts';
import { buildMultiArchImage, buildTestImage, type TestImage } from '../test-support/image.ts';
import { pushImage } from '../test-support/skopeo.ts';
import { testStore } from './test-s3.ts';
import { copyBlobsToStore, type ObjectStoreTarget } from './store.ts';
import { archiveImageFromRegistry, type ArchiveImage } from './images-archive.ts';
import { storeImagesArchive, type StoredImagesArchive } from './store-archive.ts';

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
  const baseBin = Buffer.concat(Array.from({ length: 2048 }, (_, i) => createHash('sha256').update(`base-${i}`).digest()));
  const baseLayer = { files: { 'etc/os-release': 'NAME=outpost-base\n', 'usr/lib/base.bin': new Uint8Array(baseBin) } };
  backend = await buildTestImage({ dir: layout, tag: 'backend', layers: [baseLayer, { files: { 'app/backend.txt': 'backend 1.0\n' } }] });
  frontend = await buildTestImage({ dir: layout, tag: 'frontend', layers: [baseLayer, { files: { 'app/frontend.txt': 'frontend 1.1\n' } }] });
  const multi = await buildMultiArchImage({ dir: layout, tag: 'multi', layers: [{ files: { 'app/worker.txt': 'worker 2.0\n' } }] });
  multiAmd64 = multi.images.find((i) => i.platform.architecture === 'amd64')!;
  base = backend.layers[0]!;
  expect(frontend.layers[0]!.digest).toBe(base.digest);

  await Promise.all([
    pushImage(layout, 'backend', `${registry.host}/emr/backend:1.0`),
    pushImage(layout, 'frontend', `${registry.host}/emr/frontend:1.1`),
    pushImage(layout, 'multi', `${registry.host}/emr/worker:2.0`),
  ]);
  client = new RegistryClient({ registry: registry.host });
  ({ s3, prefix } = testStore());
  images = await Promise.all(
    [`${registry.host}/emr/backend:1.0`, `${registry.host}/emr/frontend:1.1`, `${registry.host}/emr/worker:2.0`].map((ref) =>
      archiveImageFromRegistry(client, ref, { os: 'linux', architecture: 'amd64' }),
    ),
  );
});

afterAll(async () => {
  await registry?.stop();
  s3?.client.destroy();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

async function download(key: string, file: string): Promise<string> {
  const answer = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  const hash = createHash('sha256');
  await pipeline(answer.Body as Readable, async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      hash.update(chunk);
      yield chunk;
    }
  }, createWriteStream(file));
  return hash.digest('hex');
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
  let full: StoredImagesArchive;
  let tgz: string;

  it('should copy every blob once into the store and skip them all the second time', async () => {
    const copied: { digest: string; copied: boolean }[] = [];
    for (const image of images) {
      copied.push(...(await copyBlobsToStore({ client, repository: image.repository, blobs: [image.config, ...image.layers], s3, prefix })));
    }
    // The shared base layer is copied for the backend and found in the store for the frontend.
    expect(copied.filter((c) => c.digest === base.digest).map((c) => c.copied)).toEqual([true, false]);
    expect(copied.filter((c) => c.digest !== base.digest).every((c) => c.copied)).toBe(true);

    for (const image of images) {
      const again = await copyBlobsToStore({ client, repository: image.repository, blobs: [image.config, ...image.layers], s3, prefix });
      expect(again.map((c) => c.copied)).toEqual(again.map(() => false));
      expect(again.map((c) => c.size)).toEqual([image.config.size, ...image.layers.map((l) => l.size)]);
    }
  });

  it('should store the archive at the address of its sha256', async () => {
    full = await storeImagesArchive({ images, s3, prefix });
    tgz = path.join(work, 'images.tgz');
    expect(full.key).toBe(`${prefix}${full.sha256}`);
    expect(await download(full.key, tgz)).toBe(full.sha256);
    expect((await fs.stat(tgz)).size).toBe(full.size);
    expect(full.omitted).toEqual([]);

    // Built again from the same blobs, it is the same object.
    const again = await storeImagesArchive({ images, s3, prefix });
    expect(again).toMatchObject({ key: full.key, sha256: full.sha256, existed: true });
  });

  it('should keep a layer shared by two images once in the tar', async () => {
    const entries = await tarList(tgz);
    expect(new Set(entries).size).toBe(entries.length);
    expect(entries.filter((e) => e === `blobs/sha256/${base.digest.slice(7)}`)).toHaveLength(1);
    const manifest = JSON.parse(await readFromTgz(tgz, 'manifest.json')) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    expect(manifest.map((m) => m.RepoTags)).toEqual([[`${registry.host}/emr/backend:1.0`], [`${registry.host}/emr/frontend:1.1`], [`${registry.host}/emr/worker:2.0`]]);
    expect(manifest[0]!.Layers[0]).toBe(manifest[1]!.Layers[0]);
    for (const path of manifest.flatMap((m) => [m.Config, ...m.Layers])) expect(entries).toContain(path);
  });

  it('should load into podman with every image ID equal to its config digest', async () => {
    const root = path.join(work, 'podman');
    const podman = ['--root', path.join(root, 'storage'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs', '--events-backend', 'file', '--cgroup-manager', 'cgroupfs'];
    // podman refuses a gzipped outer archive; the site's docker does not. Feed it as `zcat | podman load` would.
    await run('sh', ['-c', `zcat "$0" | podman "$@" load`, tgz, ...podman], { maxBuffer: 16 * 1024 * 1024 });
    const { stdout } = await run('podman', [...podman, 'images', '--no-trunc', '--format', '{{.Id}} {{.Repository}}:{{.Tag}}']);
    const loaded = new Map(stdout.trim().split('\n').map((line) => line.split(' ') as [string, string]).map(([id, name]) => [name, id.replace(/^sha256:/, '')]));
    for (const image of images) expect(loaded.get(image.reference)).toBe(image.config.digest.slice(7));
  });

  it('should be read by skopeo as a docker-archive, diff_ids verified, for every image', async () => {
    const tar = path.join(work, 'images.tar');
    await pipeline(createReadStream(tgz), createGunzip(), createWriteStream(tar));
    expect((await fs.stat(tar)).size).toBe(full.tarSize);
    for (let i = 0; i < images.length; i++) {
      const dest = path.join(work, `copy-${i}`);
      await run('skopeo', ['copy', '--insecure-policy', '--quiet', `docker-archive:${tar}:@${i}`, `oci:${dest}:t`]);
      const { stdout } = await run('skopeo', ['inspect', `oci:${dest}:t`]);
      const layers = (JSON.parse(stdout) as { Layers: string[] }).Layers;
      expect(layers).toHaveLength(images[i]!.layers.length);
    }
  });

  it('should hold an OCI image layout whose manifests are the pushed ones', async () => {
    const dir = path.join(work, 'oci');
    await fs.mkdir(dir);
    await run('tar', ['-xzf', tgz, '-C', dir]);
    const expected: [string, string][] = [['1.0', backend.digest], ['1.1', frontend.digest], ['2.0', multiAmd64.digest]];
    for (const [tag, digest] of expected) {
      const { stdout } = await run('skopeo', ['inspect', `oci:${dir}:${tag}`]);
      expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(digest);
    }
    const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
    expect(index.manifests.map((m) => m.annotations['io.containerd.image.name'])).toEqual(images.map((i) => i.reference));
  });

  it('should leave the omitted layers out of a delta and say which', async () => {
    const delta = await storeImagesArchive({ images, s3, prefix, omitLayers: [base.digest], fromRelease: '0.9.0' });
    expect(delta.size).toBeLessThan(full.size);
    expect(delta.omitted).toEqual([base.digest]);
    const file = path.join(work, 'delta.tgz');
    expect(await download(delta.key, file)).toBe(delta.sha256);
    const entries = await tarList(file);
    expect(entries).not.toContain(`blobs/sha256/${base.digest.slice(7)}`);
    expect(JSON.parse(await readFromTgz(file, 'delta.json'))).toEqual({ fromRelease: '0.9.0', omitted: [base.digest] });
    // Still listed, so docker load finds it among the layers it has.
    const manifest = JSON.parse(await readFromTgz(file, 'manifest.json')) as { Layers: string[] }[];
    expect(manifest[0]!.Layers).toContain(`blobs/sha256/${base.digest.slice(7)}`);
  });
});
