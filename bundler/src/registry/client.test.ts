import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRegistryPolicy, allowTestHost } from '../test-support/allow-list.ts';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { RegistryClient, blobToNodeStream } from './client.ts';
import { RegistryError } from './errors.ts';
import { MediaType } from './media-types.ts';
import { freePort, startRegistry, type TestRegistry } from '../test-support/registry.ts';
import {
  buildMultiArchImage,
  buildTestImage,
  type TestImage,
  type TestMultiArchImage,
} from '../test-support/image.ts';
import { pushImage, skopeoInspect } from '../test-support/skopeo.ts';

let registry: TestRegistry;
let layout: string;
let image: TestImage;
let multi: TestMultiArchImage;
let client: RegistryClient;

beforeAll(async () => {
  registry = await startRegistry();
  layout = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-layout-'));
  image = await buildTestImage({
    dir: layout,
    tag: 'single',
    layers: [
      { files: { 'etc/motd': 'client test\n', 'app/run.sh': '#!/bin/sh\necho hello\n' } },
      { files: { 'app/data.bin': new Uint8Array(64 * 1024).map((_, i) => (i * 7) % 251) } },
    ],
    config: { Cmd: ['/app/run.sh'] },
  });
  multi = await buildMultiArchImage({
    dir: layout,
    tag: 'multi',
    layers: [{ files: { 'app/version': '2.0\n' } }],
  });
  await Promise.all([
    pushImage(layout, 'single', `${registry.host}/demo/app:1.0`),
    pushImage(layout, 'single', `${registry.host}/demo/docker:1.0`, undefined, { format: 'v2s2' }),
    pushImage(layout, 'multi', `${registry.host}/demo/multi:2.0`),
    pushImage(layout, 'multi', `${registry.host}/demo/docker-list:2.0`, undefined, { format: 'v2s2' }),
  ]);
  client = new RegistryClient({ ...testRegistryPolicy(), registry: registry.host });
});

afterAll(async () => {
  await registry?.stop();
  if (layout) await fs.rm(layout, { recursive: true, force: true });
});

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function kindOf(promise: Promise<unknown>): Promise<RegistryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RegistryError);
  return error as RegistryError;
}

describe('RegistryClient.resolve', () => {
  it('should resolve a tag to the digest skopeo reports, with the layers and sizes of the raw manifest', async () => {
    const resolved = await client.resolve('demo/app', '1.0');
    const inspected = await skopeoInspect(`${registry.host}/demo/app:1.0`);
    const raw = await skopeoInspect(`${registry.host}/demo/app:1.0`, { raw: true });

    expect(resolved.digest).toBe(inspected.Digest);
    expect(resolved.digest).toBe(image.digest);
    expect(resolved.indexDigest).toBeUndefined();
    expect(resolved.mediaType).toBe(MediaType.OciManifest);
    expect(resolved.layers).toEqual(
      raw.layers.map((l: { digest: string; size: number; mediaType: string }) => ({
        digest: l.digest,
        size: l.size,
        mediaType: l.mediaType,
      })),
    );
    expect(resolved.layers.map((l) => l.digest)).toEqual(inspected.Layers);
    expect(resolved.config).toEqual({
      digest: raw.config.digest,
      size: raw.config.size,
      mediaType: raw.config.mediaType,
    });
    expect(resolved.totalSize).toBe(
      raw.config.size + raw.layers.reduce((s: number, l: { size: number }) => s + l.size, 0),
    );
    expect(resolved.platform).toEqual({ os: 'linux', architecture: 'amd64' });
  });

  it('should resolve each platform of a multi-arch index to its own manifest', async () => {
    const amd64 = await client.resolve('demo/multi', '2.0', { os: 'linux', architecture: 'amd64' });
    const arm64 = await client.resolve('demo/multi', '2.0', { os: 'linux', architecture: 'arm64' });
    const byAlias = await client.resolve('demo/multi', '2.0', {
      os: 'linux',
      architecture: 'aarch64',
      variant: 'v8',
    });
    const [builtAmd64, builtArm64] = multi.images;

    expect(amd64.indexDigest).toBe(multi.digest);
    expect(amd64.indexDigest).toBe((await skopeoInspect(`${registry.host}/demo/multi:2.0`)).Digest);
    expect(amd64.digest).toBe(builtAmd64!.digest);
    expect(arm64.digest).toBe(builtArm64!.digest);
    expect(byAlias.digest).toBe(builtArm64!.digest);
    expect(arm64.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(arm64.layers.map((l) => l.digest)).toEqual(builtArm64!.layers.map((l) => l.digest));
  });

  it('should say which platforms exist when none matches', async () => {
    const error = await kindOf(client.resolve('demo/multi', '2.0', { os: 'linux', architecture: 's390x' }));
    expect(error.kind).toBe('platform-not-found');
    expect(error.message).toContain('linux/s390x');
    expect(error.message).toContain('linux/amd64, linux/arm64/v8');
  });

  it('should refuse a single-platform image built for another platform', async () => {
    const error = await kindOf(client.resolve('demo/app', '1.0', { os: 'linux', architecture: 'arm64' }));
    expect(error.kind).toBe('platform-not-found');
    expect(error.message).toContain('it has linux/amd64');
  });

  it('should resolve both an OCI manifest and a Docker v2 schema 2 manifest of the same image', async () => {
    const oci = await client.resolve('demo/app', '1.0');
    const docker = await client.resolve('demo/docker', '1.0');
    expect(docker.mediaType).toBe(MediaType.DockerManifest);
    expect(docker.digest).toBe((await skopeoInspect(`${registry.host}/demo/docker:1.0`)).Digest);
    expect(docker.digest).not.toBe(oci.digest);
    expect(docker.layers.map((l) => l.mediaType)).toEqual([
      MediaType.DockerLayerGzip,
      MediaType.DockerLayerGzip,
    ]);
    // Same bytes underneath: the layer blobs do not change with the manifest format.
    expect(docker.layers.map((l) => l.digest)).toEqual(oci.layers.map((l) => l.digest));
    expect(docker.config.digest).toBe(oci.config.digest);
  });

  it('should resolve a Docker manifest list like an OCI index', async () => {
    const resolved = await client.resolve('demo/docker-list', '2.0', { os: 'linux', architecture: 'arm64' });
    const top = await client.getManifest('demo/docker-list', '2.0');
    expect(top.mediaType).toBe(MediaType.DockerManifestList);
    expect(resolved.indexDigest).toBe(top.digest);
    expect(resolved.mediaType).toBe(MediaType.DockerManifest);
    expect(resolved.layers.map((l) => l.digest)).toEqual(multi.images[1]!.layers.map((l) => l.digest));
  });

  it('should resolve a reference that is already a digest', async () => {
    const resolved = await client.resolve('demo/multi', multi.digest, { os: 'linux', architecture: 'amd64' });
    expect(resolved.indexDigest).toBe(multi.digest);
    expect(resolved.digest).toBe(multi.images[0]!.digest);
  });
});

describe('RegistryClient.getManifest', () => {
  it('should return the exact stored bytes with their digest, by tag and by digest', async () => {
    const raw = await skopeoInspect(`${registry.host}/demo/app:1.0`, { raw: true });
    const byTag = await client.getManifest('demo/app', '1.0');
    const byDigest = await client.getManifest('demo/app', image.digest);
    expect(byTag.digest).toBe(image.digest);
    expect(byTag.json).toEqual(raw);
    expect(Buffer.from(byDigest.bytes).equals(Buffer.from(byTag.bytes))).toBe(true);
    expect('sha256:' + createHash('sha256').update(byTag.bytes).digest('hex')).toBe(image.digest);
  });
});

describe('RegistryClient.blob', () => {
  it('should stream a layer whose bytes and sha256 match the layer in the layout', async () => {
    const layer = image.layers[1]!;
    const bytes = await readAll(await client.blob('demo/app', layer.digest, { size: layer.size }));
    const onDisk = await fs.readFile(path.join(layout, 'blobs/sha256', layer.digest.slice(7)));
    expect(bytes.length).toBe(layer.size);
    expect(bytes.equals(onDisk)).toBe(true);
    expect('sha256:' + createHash('sha256').update(bytes).digest('hex')).toBe(layer.digest);
  });

  it('should feed Node streams through blobToNodeStream', async () => {
    const layer = image.layers[0]!;
    const hash = createHash('sha256');
    await pipeline(
      blobToNodeStream(await client.blob('demo/app', layer.digest)),
      new Writable({
        write(chunk, _e, cb) {
          hash.update(chunk);
          cb();
        },
      }),
    );
    expect('sha256:' + hash.digest('hex')).toBe(layer.digest);
  });

  it('should refuse a blob whose size differs from the one the manifest promised', async () => {
    const layer = image.layers[0]!;
    const error = await kindOf(client.blob('demo/app', layer.digest, { size: layer.size + 1 }));
    expect(error.kind).toBe('digest-mismatch');
  });

  it('should report the size of a present blob and null for an absent one', async () => {
    const layer = image.layers[0]!;
    expect(await client.headBlob('demo/app', layer.digest)).toEqual({ size: layer.size });
    expect(await client.headBlob('demo/app', 'sha256:' + '0'.repeat(64))).toBeNull();
  });

  it('should say unknown-blob for a blob the repository does not have', async () => {
    const error = await kindOf(client.blob('demo/app', 'sha256:' + '0'.repeat(64)));
    expect(error.kind).toBe('unknown-blob');
    expect(error.status).toBe(404);
  });
});

describe('RegistryClient errors', () => {
  it('should say unknown-repository for an image the registry does not have', async () => {
    const error = await kindOf(client.resolve('foo/bar', 'latest'));
    expect(error.kind).toBe('unknown-repository');
    expect(error.message).toBe(`The registry ${registry.host} has no image named foo/bar`);
  });

  it('should say unknown-tag for a tag the repository does not have', async () => {
    const error = await kindOf(client.resolve('demo/app', '1.2.3'));
    expect(error.kind).toBe('unknown-tag');
    expect(error.message).toBe(`The registry ${registry.host} has no tag 1.2.3 for demo/app`);
  });

  it('should say unknown-manifest for a digest the repository does not have', async () => {
    const error = await kindOf(client.getManifest('demo/app', 'sha256:' + '1'.repeat(64)));
    expect(error.kind).toBe('unknown-manifest');
  });

  it('should reject malformed repositories and references before asking the registry', async () => {
    await expect(client.resolve('Demo/App', '1.0')).rejects.toThrow('not a repository name');
    await expect(client.getManifest('demo/app', 'sha256:xyz')).rejects.toThrow('not a digest');
    await expect(client.blob('demo/app', 'latest')).rejects.toThrow('not a digest');
  });

  it('should say unreachable, quickly and after bounded retries, when nothing listens', async () => {
    const port = await freePort();
    const disallow = allowTestHost(`127.0.0.1:${port}`);
    const down = new RegistryClient({
      ...testRegistryPolicy(),
      registry: `127.0.0.1:${port}`,
      retries: 2,
      backoffMs: 5,
    });
    const started = Date.now();
    const error = await kindOf(down.resolve('foo/bar', '1.0')).finally(disallow);
    expect(error.kind).toBe('unreachable');
    expect(error.message).toBe(`Cannot reach the registry 127.0.0.1:${port}: connection refused`);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
