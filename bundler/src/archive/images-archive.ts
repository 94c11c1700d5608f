import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import {
  blobToNodeStream,
  type Descriptor,
  type ManifestJson,
  type Platform,
  type RegistryClient,
} from '../registry/client.ts';
import { isImageManifestMediaType, MediaType } from '../registry/media-types.ts';
import { parseImageReference } from '../registry/reference.ts';
import { storedGzip, storedGzipPieces, storedGzipSize, storedGzipTrailer } from './stored-gzip.ts';
import { BLOCK, tarEntryLength, tarHeader, tarPadding, tarTrailer, type TarEntry } from './tar.ts';

/** One image of a release, as it goes into the images archive. */
export interface ArchiveImage {
  /** Tagged reference the site will know the image by: `registry.example.org/emr/backend:1.0`. */
  reference: string;
  /** The image manifest exactly as the registry serves it (its bytes must hash to `digest`). */
  manifest: { digest: string; mediaType: string; bytes: Uint8Array };
  config: Descriptor;
  layers: Descriptor[];
}

export interface BuildImagesArchiveOptions {
  images: ArchiveImage[];
  /** The bytes of a config or layer blob, e.g. from the object store (`storeBlobReader`). They are checked against the descriptor. */
  readBlob: (descriptor: Descriptor) => Promise<ReadableStream<Uint8Array> | Readable>;
  /** Layer digests the sites already have (a delta): listed in `manifest.json`, left out of the tar. */
  omitLayers?: Iterable<string>;
  /** Release the delta is from, recorded in `delta.json`. */
  fromRelease?: string;
}

export interface ImagesArchive {
  /** The gzip stream of the tar, produced as it is read. */
  stream: Readable;
  /** Size of the tar inside, known before any byte is read. */
  tarSize: number;
  /** Size of the gzip stream, known before any byte is read. */
  size: number;
  /** Layer digests listed but left out (a delta); empty for a full archive. */
  omitted: string[];
  /**
   * Once the stream has all been read: its size and sha256 (hex), and the layout from which
   * `readImagesArchive` produces the same bytes again out of the blobs. Rejects when the stream fails.
   */
  done: Promise<{ size: number; sha256: string; layout: ImagesArchiveLayout }>;
}

/**
 * What an images archive holds, in tar order: enough to produce any byte of it again from the
 * blobs in the object store (`readImagesArchive`), so the archive itself is never stored.
 * Small (a few kB): the file contents it carries are the JSON files of the layout, not blobs.
 */
export interface ImagesArchiveLayout {
  version: 1;
  /** Each tar entry: a directory, a small file carried here (`data`, base64) or a blob by `digest`. */
  entries: { name: string; size: number; type?: 'directory'; data?: string; digest?: string }[];
  tarSize: number;
  /** CRC-32 of the tar (the gzip trailer's). */
  crc32: number;
}

/** Bytes `start` to `end` (exclusive) of the stored blob `digest` of `size` bytes. */
export type ReadBlobRange = (
  digest: string,
  start: number,
  end: number,
  size: number,
) => Promise<AsyncIterable<Uint8Array>> | AsyncIterable<Uint8Array>;

export type ArchiveErrorKind = 'digest-mismatch' | 'invalid-image';

export class ArchiveError extends Error {
  override name = 'ArchiveError';
  constructor(
    readonly kind: ArchiveErrorKind,
    message: string,
  ) {
    super(message);
  }
}

const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

/**
 * Streams a release's images as one `images.tgz` that both `docker load` stores can read: the
 * docker-archive layout (`manifest.json`, used by the classic store, podman and skopeo) and an OCI
 * image layout (`oci-layout`, `index.json`, used by the containerd store) sharing one
 * `blobs/sha256/` directory. Each blob is stored once even when images share it; layers stay
 * compressed as pulled. Nothing is held in memory beyond a chunk.
 *
 * A delta (`omitLayers`) leaves out layers the site already has: `docker load` skips layers it has,
 * and `delta.json` says which are missing so the installer can fall back to the full archive.
 *
 * @example
 * const archive = buildImagesArchive({ images, readBlob: storeBlobReader(s3) });
 * await pipeline(archive.stream, createWriteStream('images.tgz'));
 * const { sha256, size } = await archive.done;
 */
export function buildImagesArchive(options: BuildImagesArchiveOptions): ImagesArchive {
  const plan = planArchive(options);
  const hash = createHash('sha256');
  let size = 0;
  let settle!: {
    resolve: (v: { size: number; sha256: string; layout: ImagesArchiveLayout }) => void;
    reject: (e: unknown) => void;
  };
  const done = new Promise<{ size: number; sha256: string; layout: ImagesArchiveLayout }>(
    (resolve, reject) => (settle = { resolve, reject }),
  );
  done.catch(() => {}); // the caller may only read the stream; its error is reported there too

  // Stored deflate blocks, always: the layers are already compressed (level 1 saved nothing and ran at
  // ~38 MB/s), and a stored gzip's bytes follow from the tar alone, so the archive can be served from its blobs.
  const gzip = storedGzip(plan.tarSize);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      settle.resolve({
        size,
        sha256: hash.digest('hex'),
        layout: {
          version: 1,
          entries: plan.files.map(layoutEntry),
          tarSize: plan.tarSize,
          crc32: gzip.crc32(),
        },
      });
      callback();
    },
  });
  const stream = pipeline(
    Readable.from(tarChunks(plan, options.readBlob), { objectMode: false }),
    gzip,
    counter,
    (error) => {
      if (error) settle.reject(error);
    },
  );
  return { stream, tarSize: plan.tarSize, size: storedGzipSize(plan.tarSize), omitted: plan.omitted, done };
}

function layoutEntry(file: PlannedFile): ImagesArchiveLayout['entries'][number] {
  if (file.entry.type === 'directory') return { name: file.entry.name, size: 0, type: 'directory' };
  if (file.blob) return { name: file.entry.name, size: file.entry.size, digest: file.blob.digest };
  return { name: file.entry.name, size: file.entry.size, data: file.bytes!.toString('base64') };
}

/**
 * Bytes `start` to `end` (exclusive) of the archive a layout describes, produced again from the
 * blobs: tar headers and small files from the layout, blob bytes from `readBlob` (a ranged read of
 * the stored blob, opened only when the bytes are reached), gzip framing computed. Byte-equal to
 * what `buildImagesArchive` streamed (tested with podman, skopeo and random ranges).
 *
 * @example
 * for await (const chunk of readImagesArchive(layout, 0, size, (digest, s, e, n) => readStoredRange(store, blobKey(digest), s, e, n))) …
 */
export async function* readImagesArchive(
  layout: ImagesArchiveLayout,
  start: number,
  end: number,
  readBlob: ReadBlobRange,
): AsyncGenerator<Uint8Array> {
  if (layout.version !== 1)
    throw new ArchiveError(
      'invalid-image',
      `This Outpost cannot produce an images archive of layout version ${String(layout.version)}`,
    );
  const pieces = storedGzipPieces(
    layout.tarSize,
    start,
    end,
    storedGzipTrailer(layout.crc32, layout.tarSize),
  );
  const data = pieces.filter((p) => p.kind === 'data');
  if (data.length === 0) {
    for (const piece of pieces) if (piece.kind === 'bytes') yield piece.bytes;
    return;
  }
  const tar = tarRange(layout, data[0]!.start, data[data.length - 1]!.end, readBlob)[Symbol.asyncIterator]();
  let spare: Uint8Array | null = null;
  try {
    for (const piece of pieces) {
      if (piece.kind === 'bytes') {
        yield piece.bytes;
        continue;
      }
      for (let need = piece.end - piece.start; need > 0;) {
        let chunk: Uint8Array | null = spare;
        spare = null;
        if (!chunk) {
          const next = await tar.next();
          if (next.done) throw new Error("the images archive's tar ended early");
          chunk = next.value;
        }
        if (chunk.byteLength > need) {
          spare = chunk.subarray(need);
          chunk = chunk.subarray(0, need);
        }
        need -= chunk.byteLength;
        yield chunk;
      }
    }
  } finally {
    await tar.return?.(undefined);
  }
}

/** Bytes `start` to `end` (exclusive) of the tar inside the archive. */
async function* tarRange(
  layout: ImagesArchiveLayout,
  start: number,
  end: number,
  readBlob: ReadBlobRange,
): AsyncGenerator<Uint8Array> {
  let offset = 0;
  const within = (bytes: Uint8Array, at: number) =>
    bytes.subarray(Math.max(start, at) - at, Math.min(end, at + bytes.length) - at);
  for (const entry of layout.entries) {
    if (offset >= end) return;
    const size = entry.type === 'directory' ? 0 : entry.size;
    const length = tarEntryLength(size);
    if (offset + length > start) {
      const header = tarHeader({ name: entry.name, size, ...(entry.type ? { type: entry.type } : {}) });
      if (offset + BLOCK > start) yield within(header, offset);
      const dataAt = offset + BLOCK;
      const from = Math.max(start, dataAt) - dataAt;
      const to = Math.min(end, dataAt + size) - dataAt;
      if (from < to) {
        if (entry.digest) {
          let received = 0;
          for await (const chunk of await readBlob(entry.digest, from, to, size)) {
            received += chunk.byteLength;
            if (received > to - from)
              throw new Error(`blob ${entry.digest} sent more than bytes ${from}-${to}`);
            yield chunk;
          }
          if (received !== to - from)
            throw new Error(`blob ${entry.digest} ended after ${received} of bytes ${from}-${to}`);
        } else {
          yield Buffer.from(entry.data ?? '', 'base64').subarray(from, to);
        }
      }
      const padding = tarPadding(size);
      if (padding.length > 0 && dataAt + size < end) yield within(padding, dataAt + size);
    }
    offset += length;
  }
  const trailer = tarTrailer();
  if (offset < end) yield within(trailer, offset);
}

/**
 * Fetches what `buildImagesArchive` needs to know about an image: its manifest bytes (by digest,
 * so they are verified) for the platform asked for. `reference` must carry a tag.
 *
 * @example
 * const image = await archiveImageFromRegistry(client, `${host}/emr/backend:1.0`);
 */
export async function archiveImageFromRegistry(
  client: RegistryClient,
  reference: string,
  platform?: Platform,
): Promise<ArchiveImage & { repository: string }> {
  const parsed = parseImageReference(reference);
  const resolved = await client.resolve(parsed.repository, parsed.digest ?? parsed.tag ?? 'latest', platform);
  const manifest = await client.getManifest(parsed.repository, resolved.digest);
  return {
    reference: repoTag(reference),
    repository: parsed.repository,
    manifest: { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes },
    config: resolved.config,
    layers: resolved.layers,
  };
}

interface PlannedFile {
  entry: TarEntry;
  bytes?: Buffer;
  blob?: Descriptor;
}

function planArchive(options: BuildImagesArchiveOptions): {
  files: PlannedFile[];
  tarSize: number;
  omitted: string[];
} {
  if (options.images.length === 0)
    throw new ArchiveError('invalid-image', 'An images archive needs at least one image');
  const omit = new Set(options.omitLayers ?? []);
  const blobs = new Map<string, Descriptor>();
  const manifests = new Map<string, Buffer>();
  const omitted = new Set<string>();
  const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const index: { schemaVersion: 2; mediaType: string; manifests: unknown[] } = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [],
  };

  for (const image of options.images) {
    checkImage(image);
    const tag = repoTag(image.reference);
    blobs.set(image.config.digest, image.config);
    for (const layer of image.layers) {
      if (omit.has(layer.digest)) omitted.add(layer.digest);
      else blobs.set(layer.digest, layer);
    }
    manifests.set(image.manifest.digest, Buffer.from(image.manifest.bytes));
    dockerManifest.push({
      Config: blobPath(image.config.digest),
      RepoTags: [tag],
      Layers: image.layers.map((l) => blobPath(l.digest)),
    });
    index.manifests.push({
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.bytes.byteLength,
      annotations: { [CONTAINERD_NAME]: tag, [REF_NAME]: tag.slice(tag.lastIndexOf(':') + 1) },
    });
  }
  // A layer another image still needs in full stays in the archive.
  for (const digest of omitted) if (blobs.has(digest)) omitted.delete(digest);

  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const files: PlannedFile[] = [];
  const addBytes = (name: string, bytes: Buffer) =>
    files.push({ entry: { name, size: bytes.length }, bytes });
  addBytes('manifest.json', json(dockerManifest));
  addBytes('oci-layout', json({ imageLayoutVersion: '1.0.0' }));
  addBytes('index.json', json(index));
  if (omit.size > 0)
    addBytes('delta.json', json({ fromRelease: options.fromRelease ?? null, omitted: [...omitted] }));
  files.push(
    { entry: { name: 'blobs/', size: 0, type: 'directory' } },
    { entry: { name: 'blobs/sha256/', size: 0, type: 'directory' } },
  );
  for (const [digest, bytes] of manifests) if (!blobs.has(digest)) addBytes(blobPath(digest), bytes);
  for (const blob of blobs.values())
    files.push({ entry: { name: blobPath(blob.digest), size: blob.size }, blob });

  const tarSize =
    files.reduce((sum, f) => sum + tarEntryLength(f.entry.type === 'directory' ? 0 : f.entry.size), 0) +
    2 * BLOCK;
  return { files, tarSize, omitted: [...omitted] };
}

async function* tarChunks(
  plan: { files: PlannedFile[] },
  readBlob: BuildImagesArchiveOptions['readBlob'],
): AsyncGenerator<Buffer> {
  for (const file of plan.files) {
    yield tarHeader(file.entry);
    if (file.bytes) {
      yield file.bytes;
    } else if (file.blob) {
      yield* verifiedBlob(file.blob, await readBlob(file.blob));
    }
    yield tarPadding(file.entry.size);
  }
  yield tarTrailer();
}

const VERIFIED = Symbol('outpost.verifiedDigest');

/**
 * Marks a stream that already checks its bytes against `digest` (a registry blob stream does, and
 * errors instead of ending when they differ), so the archive does not hash the same bytes twice.
 */
export function markVerified<T extends Readable>(stream: T, digest: string): T {
  (stream as unknown as Record<symbol, string>)[VERIFIED] = digest;
  return stream;
}

/** The tar header already promised `size` bytes: anything else must fail the archive, not shift it. */
async function* verifiedBlob(
  blob: Descriptor,
  source: ReadableStream<Uint8Array> | Readable,
): AsyncGenerator<Buffer> {
  const stream = source instanceof Readable ? source : blobToNodeStream(source);
  const hash =
    (stream as unknown as Record<symbol, string>)[VERIFIED] === blob.digest ? null : createHash('sha256');
  let received = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      received += chunk.byteLength;
      if (received > blob.size)
        throw new ArchiveError(
          'digest-mismatch',
          `Blob ${blob.digest} is longer than its ${blob.size} bytes`,
        );
      hash?.update(chunk);
      yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  } finally {
    stream.destroy();
  }
  if (received !== blob.size)
    throw new ArchiveError(
      'digest-mismatch',
      `Blob ${blob.digest} ended after ${received} of its ${blob.size} bytes`,
    );
  if (!hash) return;
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== blob.digest)
    throw new ArchiveError('digest-mismatch', `Blob ${blob.digest} read back hashes to ${actual}`);
}

function checkImage(image: ArchiveImage): void {
  const where = `image ${image.reference}`;
  if (!isImageManifestMediaType(image.manifest.mediaType)) {
    throw new ArchiveError(
      'invalid-image',
      `The manifest of ${where} is a ${image.manifest.mediaType}, not an image manifest`,
    );
  }
  const actual = `sha256:${createHash('sha256').update(image.manifest.bytes).digest('hex')}`;
  if (actual !== image.manifest.digest) {
    throw new ArchiveError(
      'digest-mismatch',
      `The manifest bytes of ${where} hash to ${actual}, not ${image.manifest.digest}`,
    );
  }
  const json = JSON.parse(Buffer.from(image.manifest.bytes).toString('utf8')) as ManifestJson;
  const listed = [json.config?.digest, ...(json.layers ?? []).map((l) => l.digest)].join(',');
  const given = [image.config.digest, ...image.layers.map((l) => l.digest)].join(',');
  if (listed !== given)
    throw new ArchiveError(
      'invalid-image',
      `The config and layers given for ${where} are not the ones its manifest lists`,
    );
  for (const d of [image.config, ...image.layers]) blobPath(d.digest);
}

/** `name:tag` for RepoTags: the reference without a pinned digest; a tag is required. */
function repoTag(reference: string): string {
  const parsed = parseImageReference(reference);
  const withoutDigest = reference.replace(/@.*$/, '');
  if (!/:[\w][\w.-]{0,127}$/.test(withoutDigest.slice(withoutDigest.lastIndexOf('/') + 1))) {
    throw new ArchiveError(
      'invalid-image',
      `"${reference}" has no tag; a site loads images by a tagged name`,
    );
  }
  return `${parsed.registry}/${parsed.repository}:${parsed.tag}`;
}

function blobPath(digest: string): string {
  const match = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!match) throw new ArchiveError('invalid-image', `"${digest}" is not a sha256 digest`);
  return `blobs/sha256/${match[1]}`;
}
