import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PassThrough, Readable, Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import { blobToNodeStream, type Descriptor, type RegistryClient } from '../registry/client.ts';
import { RegistryError } from '../registry/errors.ts';
import { markVerified } from './images-archive.ts';
import { BLOB_PREFIX, blobKey, deleteQuietly, headSize, type ObjectStoreTarget } from './object-store.ts';

export interface CopyBlobsOptions {
  client: RegistryClient;
  repository: string;
  /** Config and layers of an image (duplicates are copied once). */
  blobs: Descriptor[];
  s3: ObjectStoreTarget;
  /** Key prefix of content-addressed blobs; default `blobs/sha256/`. */
  prefix?: string;
  /** Blobs copied at the same time; default 3. Memory held is about `concurrency × partSize × (queueSize + 2)`. */
  concurrency?: number;
  /** Blobs over 5 GiB go up in parts of `partSize` bytes (default 8 MiB), `queueSize` (default 2) in flight per blob. */
  partSize?: number;
  queueSize?: number;
  /** @internal tests lower it (default 5 GiB, S3's limit for one PUT) to exercise the upload in parts. */
  singlePutMax?: number;
}

export interface CopiedBlob {
  digest: string;
  size: number;
  /** False when the store already had the blob with the right size. */
  copied: boolean;
}

/**
 * Copies an image's blobs from a registry into the object store at `blobs/sha256/<hex>`, streaming
 * each one (never whole in memory) with its digest verified on the way. A blob already stored with
 * the right size is skipped. A blob whose bytes do not match its digest fails the copy with a
 * `RegistryError` of kind `digest-mismatch`, and nothing is left at its key: the upload is only
 * completed after the verifying stream ended cleanly.
 *
 * @example
 * const image = await client.resolve('emr/backend', '1.0');
 * await copyBlobsToStore({ client, repository: 'emr/backend', blobs: [image.config, ...image.layers], s3: { client: s3, bucket } });
 */
export async function copyBlobsToStore(options: CopyBlobsOptions): Promise<CopiedBlob[]> {
  const prefix = options.prefix ?? BLOB_PREFIX;
  const unique = [...new Map(options.blobs.map((b) => [b.digest, b])).values()];
  for (const blob of unique) blobKey(blob.digest, prefix); // refuse bad digests before any transfer

  const results = new Map<string, CopiedBlob>();
  const queue = [...unique];
  const worker = async () => {
    for (let blob = queue.shift(); blob; blob = queue.shift()) {
      results.set(blob.digest, await copyOne(options, blob, prefix));
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 3, unique.length)) }, worker),
  );
  return unique.map((b) => results.get(b.digest)!);
}

async function copyOne(options: CopyBlobsOptions, blob: Descriptor, prefix: string): Promise<CopiedBlob> {
  const { s3 } = options;
  const key = blobKey(blob.digest, prefix);
  if ((await headSize(s3, key)) === blob.size) return { digest: blob.digest, size: blob.size, copied: false };
  const body = blobToNodeStream(
    await options.client.blob(options.repository, blob.digest, { size: blob.size }),
  );
  await uploadBlob(s3, key, body, blob, options);
  return { digest: blob.digest, size: blob.size, copied: true };
}

/** S3's limit for one PutObject; larger blobs go up in parts. */
const SINGLE_PUT_MAX = 5 * 1024 ** 3;

/**
 * Uploads a (verifying) blob stream to its key; nothing stays there unless the stream ended cleanly
 * and the size reads back. The size is known, so a blob up to 5 GiB goes in one streamed PutObject:
 * sent as it arrives, signed without hashing the payload, never buffered. Measured against s3rver
 * this is ~4× faster than lib-storage's multipart upload (8 MiB parts hashed for the signature,
 * reassembled by the store); larger blobs still go in parts.
 */
async function uploadBlob(
  s3: ObjectStoreTarget,
  key: string,
  source: Readable,
  blob: Descriptor,
  options: { partSize?: number; queueSize?: number; singlePutMax?: number },
): Promise<void> {
  const body = holdLastChunk(source);
  // A body that fails leaves the request one chunk short: abort it rather than wait for the store to time out.
  const abort = new AbortController();
  body.once('error', () => abort.abort());
  const upload =
    blob.size <= (options.singlePutMax ?? SINGLE_PUT_MAX)
      ? {
          done: () =>
            s3.client.send(
              new PutObjectCommand({
                Bucket: s3.bucket,
                Key: key,
                Body: body,
                ContentLength: blob.size,
                ContentType: blob.mediaType,
              }),
              { abortSignal: abort.signal },
            ),
        }
      : new Upload({
          client: s3.client,
          params: {
            Bucket: s3.bucket,
            Key: key,
            Body: body,
            ContentLength: blob.size,
            ContentType: blob.mediaType,
          },
          partSize: options.partSize ?? 8 * 1024 * 1024,
          queueSize: options.queueSize ?? 2,
          leavePartsOnError: false,
        });
  // The client may fail with its own error when the body errors; the stream's error says why.
  let streamError: unknown;
  body.once('error', (error) => (streamError = error));
  try {
    await upload.done();
  } catch (error) {
    body.destroy();
    // Some stores (s3rver) keep what an aborted PUT sent: a short object is never a good blob.
    if ((await headSize(s3, key).catch(() => null)) !== blob.size) await deleteQuietly(s3, key);
    throw streamError ?? error;
  }
  if (streamError) {
    await deleteQuietly(s3, key);
    throw streamError;
  }
  const stored = await headSize(s3, key);
  if (stored !== blob.size) {
    await deleteQuietly(s3, key);
    throw new RegistryError(
      'digest-mismatch',
      `The object store kept ${stored ?? 'nothing'} bytes of blob ${blob.digest}; it has ${blob.size}`,
    );
  }
}

/**
 * Passes a verifying stream on one chunk behind, the last chunk only once the stream has ended. A
 * registry stream checks its digest at the end and errors instead of ending when it differs; by
 * then an upload could have sent every byte the Content-Length promised and the store would keep a
 * wrong blob under the digest. Held back, the body stays one chunk short and the upload fails.
 */
function holdLastChunk(source: Readable): Readable {
  let held: Buffer | null = null;
  const body = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (held) this.push(held);
      held = chunk;
      callback();
    },
    flush(callback) {
      if (held) this.push(held);
      callback();
    },
  });
  source.once('error', (error) => body.destroy(error));
  return source.pipe(body);
}

/** Where a blob can be fetched from: the registry and repository of an image that has it. */
export interface BlobSource {
  client: RegistryClient;
  repository: string;
}

export interface TeeingBlobReader {
  /** For `buildImagesArchive`/`recordImagesArchive`: a blob already stored is read from the store; any other comes from its registry. */
  readBlob: (descriptor: Descriptor) => Promise<Readable>;
  /** Resolves when every blob fetched from a registry is stored and verified; rejects with the first failure. */
  settled: () => Promise<CopiedBlob[]>;
}

/**
 * Fetches each blob from its registry once and, while it flows through the images archive, also
 * stores it content-addressed (`blobs/sha256/<hex>`), so copying the blobs and hashing the archive
 * happen together instead of one after the other. Registry streams are verified against their
 * digest; a blob that does not match fails both the archive and its own upload, and nothing is
 * left at its key. Blobs the store already has are read from the store.
 *
 * @example
 * const tee = teeingBlobReader({ s3, sources });
 * const archive = await recordImagesArchive({ images, readBlob: tee.readBlob });
 * await tee.settled();
 */
export function teeingBlobReader(options: {
  s3: ObjectStoreTarget;
  sources: Map<string, BlobSource>;
  prefix?: string;
  partSize?: number;
  queueSize?: number;
  singlePutMax?: number;
  /**
   * Blobs the caller may take from the store as they are. In a store shared by several tenants, a
   * blob someone else stored must not stand in for one the caller's own registry never served: any
   * blob not trusted here is fetched from its registry and verified even when the store has it
   * (the stored copy is then left as it is). Default: every stored blob is trusted.
   */
  trusted?: (digest: string) => boolean;
}): TeeingBlobReader {
  const prefix = options.prefix ?? BLOB_PREFIX;
  const fromStore = storeBlobReader(options.s3, prefix);
  const uploads: Promise<CopiedBlob>[] = [];
  return {
    async readBlob(descriptor) {
      const key = blobKey(descriptor.digest, prefix);
      const stored = (await headSize(options.s3, key)) === descriptor.size;
      if (stored && (options.trusted?.(descriptor.digest) ?? true)) return fromStore(descriptor);
      const source = options.sources.get(descriptor.digest);
      if (!source)
        throw new RegistryError('unknown-blob', `No registry is known for blob ${descriptor.digest}`);
      const body = blobToNodeStream(
        await source.client.blob(source.repository, descriptor.digest, { size: descriptor.size }),
      );
      if (stored) {
        // Already stored (by anyone): the registry's bytes only prove the caller can read them. The
        // verifying stream errors instead of ending when they differ from the digest.
        const toArchive = new PassThrough();
        body.once('error', (error) => toArchive.destroy(error));
        const proved = finished(body).then(() => ({
          digest: descriptor.digest,
          size: descriptor.size,
          copied: false,
        }));
        proved.catch(() => undefined); // reported by settled()
        uploads.push(proved);
        body.pipe(toArchive);
        return markVerified(toArchive, descriptor.digest);
      }
      const toStore = new PassThrough();
      const toArchive = new PassThrough();
      body.once('error', (error) => {
        toStore.destroy(error);
        toArchive.destroy(error);
      });
      body.pipe(toStore);
      body.pipe(toArchive);
      const upload = uploadBlob(options.s3, key, toStore, descriptor, options).then(() => ({
        digest: descriptor.digest,
        size: descriptor.size,
        copied: true,
      }));
      upload.catch(() => undefined); // reported by settled()
      uploads.push(upload);
      // The registry stream verifies the digest (and errors into both branches when it differs).
      return markVerified(toArchive, descriptor.digest);
    },
    async settled() {
      const results = await Promise.allSettled(uploads);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return results.map((r) => (r as PromiseFulfilledResult<CopiedBlob>).value);
    },
  };
}

/**
 * Reads blobs back from the store, for `buildImagesArchive`.
 *
 * @example
 * const readBlob = storeBlobReader({ client: s3, bucket });
 */
export function storeBlobReader(
  s3: ObjectStoreTarget,
  prefix = BLOB_PREFIX,
): (descriptor: Descriptor) => Promise<Readable> {
  return async (descriptor) => {
    const answer = await s3.client.send(
      new GetObjectCommand({ Bucket: s3.bucket, Key: blobKey(descriptor.digest, prefix) }),
    );
    if (!(answer.Body instanceof Readable))
      throw new Error(`The object store sent blob ${descriptor.digest} without a Node stream body`);
    return answer.Body;
  };
}

/**
 * Exactly bytes `start` to `end` (exclusive) of a stored object (of `size` bytes, when known), as a
 * stream opened when first read.
 * Some S3-compatible servers answer a range with more than was asked (s3rver sends the whole object
 * for `bytes=0-0`): the answer is trimmed to the range, and one that starts late or ends early fails.
 *
 * @example
 * for await (const chunk of readStoredRange(s3, blobKey(digest), 0, 1024)) …
 */
export async function* readStoredRange(
  s3: ObjectStoreTarget,
  key: string,
  start: number,
  end: number,
  size?: number,
): AsyncGenerator<Uint8Array> {
  if (end <= start) return;
  // The whole object (when its size is known) is asked for without a Range: a plain GET costs the store less.
  const whole = start === 0 && end === size;
  const answer = await s3.client.send(
    new GetObjectCommand({
      Bucket: s3.bucket,
      Key: key,
      ...(whole ? {} : { Range: `bytes=${start}-${end - 1}` }),
    }),
  );
  const body = bodyChunks(answer.Body, key);
  const from = Number(/^bytes (\d+)-/.exec(answer.ContentRange ?? '')?.[1] ?? 0);
  let skip = start - from;
  let remaining = end - start;
  try {
    if (skip < 0) throw new Error(`${key} came back from byte ${from}, not ${start}`);
    for await (const value of body.chunks) {
      let chunk = value;
      if (skip > 0) {
        const dropped = Math.min(skip, chunk.byteLength);
        skip -= dropped;
        chunk = chunk.subarray(dropped);
      }
      if (chunk.byteLength === 0) continue;
      if (chunk.byteLength >= remaining) {
        yield chunk.subarray(0, remaining);
        remaining = 0;
        return;
      }
      remaining -= chunk.byteLength;
      yield chunk;
    }
    // A short object would shift every later byte: fail rather than send a wrong file.
    throw new Error(`${key} ended ${remaining} bytes early`);
  } finally {
    await body.close();
  }
}

/** The chunks of a GetObject body: a Node stream on Node, a web stream elsewhere (Workers). */
function bodyChunks(
  body: unknown,
  key: string,
): { chunks: AsyncIterable<Uint8Array>; close: () => Promise<void> } {
  if (body instanceof Readable) return { chunks: body, close: async () => void body.destroy() };
  const web = body as { transformToWebStream?: () => ReadableStream<Uint8Array> } | undefined;
  if (!web?.transformToWebStream) throw new Error(`The object store sent ${key} without a body`);
  const reader = web.transformToWebStream().getReader();
  return {
    chunks: {
      async *[Symbol.asyncIterator]() {
        for (let next = await reader.read(); !next.done; next = await reader.read()) yield next.value;
      },
    },
    close: () => reader.cancel().catch(() => undefined),
  };
}
