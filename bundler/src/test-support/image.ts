import { spawn } from 'node:child_process';
import { createCipheriv, createHash, type Hash } from 'node:crypto';
import fs from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { MediaType } from '../registry/media-types.ts';
import type { Descriptor, Platform } from '../registry/client.ts';
import type { ArchiveImage } from '../archive/images-archive.ts';

export interface TestLayer {
  /** Files by path inside the image (`etc/app.conf`), with their content. */
  files?: Record<string, string | Uint8Array>;
  /** One file of `size` pseudo-random bytes (deterministic for a seed), written without holding it in memory. */
  random?: { path: string; size: number; seed?: string };
  /** Paths among `files` written executable (0755), e.g. a static binary the image runs. */
  executables?: string[];
  /** gzip level, 1–9; default 6 (1 for layers with random content, which does not compress). */
  gzipLevel?: number;
}

export interface TestImageOptions {
  /** OCI layout directory; created if missing. Several images may share one (different tags). */
  dir: string;
  layers: TestLayer[];
  /** Tag inside the layout (`org.opencontainers.image.ref.name`); default `latest`. */
  tag?: string;
  platform?: Platform;
  /** Merged into the image config's `config` (Env, Cmd, Labels, …). */
  config?: Record<string, unknown>;
}

export interface TestImage {
  dir: string;
  tag: string;
  /** Digest of the image manifest. */
  digest: string;
  manifest: Descriptor;
  config: Descriptor;
  layers: (Descriptor & { diffId: string })[];
  platform: Platform;
}

export interface TestMultiArchImage {
  dir: string;
  tag: string;
  /** Digest of the image index. */
  digest: string;
  index: Descriptor;
  images: TestImage[];
}

const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * Writes a single-platform image as an OCI image layout, by hand: layers are tar archives made by
 * GNU tar with fixed names, times and owners, gzipped without a timestamp, so the same input
 * always gives the same digests. Push it with `pushImage`.
 *
 * @example
 * const image = await buildTestImage({ dir, tag: '1.0', layers: [{ files: { 'etc/motd': 'hello\n' } }] });
 */
export async function buildTestImage(options: TestImageOptions): Promise<TestImage> {
  const tag = options.tag ?? 'latest';
  await initLayout(options.dir);
  const image = await writeImage(
    options.dir,
    tag,
    options.layers,
    options.platform ?? { os: 'linux', architecture: 'amd64' },
    options.config,
  );
  await addToIndex(options.dir, { ...image.manifest, annotations: { [REF_NAME]: tag } }, tag);
  return image;
}

/**
 * Writes a multi-platform image: one image per platform (the given layers plus one naming the
 * platform, in `etc/outpost-platform`) and an OCI image index over them, tagged in the layout.
 *
 * @example
 * const multi = await buildMultiArchImage({ dir, tag: '2.0', layers: [{ files: { 'app.txt': 'v2' } }] });
 * await pushImage(multi.dir, multi.tag, `${registry.host}/demo/multi:2.0`);
 */
export async function buildMultiArchImage(
  options: Omit<TestImageOptions, 'platform'> & { platforms?: Platform[] },
): Promise<TestMultiArchImage> {
  const tag = options.tag ?? 'latest';
  const platforms = options.platforms ?? [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ];
  await initLayout(options.dir);
  const images: TestImage[] = [];
  for (const platform of platforms) {
    const name = [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
    const layers = [...options.layers, { files: { 'etc/outpost-platform': `${name}\n` } }];
    images.push(await writeImage(options.dir, tag, layers, platform, options.config));
  }
  const index = await writeJsonBlob(options.dir, MediaType.OciIndex, {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: images.map((image) => ({ ...image.manifest, platform: image.platform })),
  });
  await addToIndex(options.dir, { ...index, annotations: { [REF_NAME]: tag } }, tag);
  return { dir: options.dir, tag, digest: index.digest, index, images };
}

/**
 * An image with `layerCount` layers of `layerSize` pseudo-random bytes each, for benchmarks:
 * generated as a stream (nothing held in memory) and the same for the same seed.
 *
 * @example
 * await buildLargeTestImage({ dir, tag: 'big', layerSize: 200 * 1024 * 1024 });
 */
export async function buildLargeTestImage(options: {
  dir: string;
  tag?: string;
  layerSize: number;
  layerCount?: number;
  seed?: string;
  platform?: Platform;
}): Promise<TestImage> {
  const seed = options.seed ?? 'outpost';
  const layers: TestLayer[] = Array.from({ length: options.layerCount ?? 1 }, (_, i) => ({
    random: { path: `data/random-${i}.bin`, size: options.layerSize, seed: `${seed}-${i}` },
  }));
  return buildTestImage({
    dir: options.dir,
    tag: options.tag ?? 'latest',
    layers,
    ...(options.platform ? { platform: options.platform } : {}),
  });
}

/** Pseudo-random bytes from a seed (AES-128-CTR keystream), as a stream. */
export function randomStream(size: number, seed = 'outpost'): Readable {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const chunk = Buffer.alloc(1024 * 1024);
  let left = size;
  return new Readable({
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(cipher.update(n === chunk.length ? chunk : chunk.subarray(0, n)));
    },
  });
}

async function initLayout(dir: string): Promise<void> {
  await fs.mkdir(path.join(dir, 'blobs/sha256'), { recursive: true });
  await fs.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

async function writeImage(
  dir: string,
  tag: string,
  layers: TestLayer[],
  platform: Platform,
  extraConfig: Record<string, unknown> | undefined,
): Promise<TestImage> {
  const written: (Descriptor & { diffId: string })[] = [];
  for (const layer of layers) written.push(await writeLayer(dir, layer));
  const epoch = new Date(0).toISOString();
  const config = await writeJsonBlob(dir, MediaType.OciConfig, {
    created: epoch,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...extraConfig },
    rootfs: { type: 'layers', diff_ids: written.map((l) => l.diffId) },
    history: written.map((_, i) => ({ created: epoch, created_by: `outpost test layer ${i + 1}` })),
  });
  const manifest = await writeJsonBlob(dir, MediaType.OciManifest, {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config,
    layers: written.map(({ digest, size, mediaType }) => ({ mediaType, digest, size })),
  });
  return { dir, tag, digest: manifest.digest, manifest, config, layers: written, platform };
}

async function writeLayer(dir: string, layer: TestLayer): Promise<Descriptor & { diffId: string }> {
  const rootfs = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-layer-'));
  try {
    for (const [name, content] of Object.entries(layer.files ?? {})) {
      const file = safeJoin(rootfs, name);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, content);
      if (layer.executables?.includes(name)) await fs.chmod(file, 0o755);
    }
    if (layer.random) {
      const file = safeJoin(rootfs, layer.random.path);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await pipeline(randomStream(layer.random.size, layer.random.seed), createWriteStream(file));
    }
    const entries = (await fs.readdir(rootfs)).sort();
    const tar = spawn(
      'tar',
      [
        '--sort=name',
        '--mtime=@0',
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        '--mode=u+rwX,go+rX,go-w',
        '--format=gnu',
        '-C',
        rootfs,
        '-cf',
        '-',
        ...(entries.length ? ['--', ...entries] : ['--files-from=/dev/null']),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    tar.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve, reject) => {
      tar.once('error', reject);
      tar.once('close', resolve);
    });
    const diffHash = createHash('sha256');
    const blobHash = createHash('sha256');
    let size = 0;
    const partial = path.join(
      dir,
      'blobs/sha256',
      `.partial-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    );
    const level = layer.gzipLevel ?? (layer.random ? 1 : 6);
    await pipeline(
      tar.stdout,
      tap(diffHash),
      createGzip({ level }),
      tap(blobHash, (n) => (size += n)),
      createWriteStream(partial),
    );
    const code = await exited;
    if (code !== 0) throw new Error(`tar failed (${code}): ${stderr.trim()}`);
    const hex = blobHash.digest('hex');
    await fs.rename(partial, path.join(dir, 'blobs/sha256', hex));
    return {
      mediaType: MediaType.OciLayerGzip,
      digest: `sha256:${hex}`,
      size,
      diffId: `sha256:${diffHash.digest('hex')}`,
    };
  } finally {
    await fs.rm(rootfs, { recursive: true, force: true });
  }
}

async function writeJsonBlob(dir: string, mediaType: string, value: unknown): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  await fs.writeFile(path.join(dir, 'blobs/sha256', hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

async function addToIndex(
  dir: string,
  entry: Descriptor & { annotations: Record<string, string> },
  tag: string,
): Promise<void> {
  const file = path.join(dir, 'index.json');
  let manifests: { annotations?: Record<string, string> }[] = [];
  try {
    manifests =
      (JSON.parse(await fs.readFile(file, 'utf8')) as { manifests: typeof manifests }).manifests ?? [];
  } catch {
    // No index yet: this is the layout's first image.
  }
  manifests = manifests.filter((m) => m.annotations?.[REF_NAME] !== tag);
  manifests.push(entry);
  await fs.writeFile(file, JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
}

function tap(hash: Hash, onBytes?: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      onBytes?.(chunk.length);
      callback(null, chunk);
    },
  });
}

function safeJoin(root: string, name: string): string {
  const file = path.resolve(root, name.replace(/^\/+/, ''));
  if (!file.startsWith(root + path.sep)) throw new Error(`"${name}" leaves the image root`);
  return file;
}

/**
 * An image for `buildImagesArchive` made from descriptors alone (no registry): an OCI manifest
 * naming `config` and `layers`, with its digest. The caller serves the blobs.
 *
 * @example
 * const image = imageOfDescriptors('registry.example.org/emr/app:1.0', config, [layer]);
 */
export function imageOfDescriptors(
  reference: string,
  config: Descriptor,
  layers: Descriptor[],
): ArchiveImage {
  const bytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers }),
  );
  return {
    reference,
    config,
    layers,
    manifest: {
      digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
      mediaType: MediaType.OciManifest,
      bytes,
    },
  };
}
