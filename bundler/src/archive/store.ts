import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { blobToNodeStream, type Descriptor, type RegistryClient } from '../registry/client.ts';
import { RegistryError } from '../registry/errors.ts';

/** An S3 bucket (any S3-compatible store) the bundler writes to. */
export interface ObjectStoreTarget {
  client: S3Client;
  bucket: string;
}

export const BLOB_PREFIX = 'blobs/sha256/';

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
  /** Upload parts of `partSize` bytes (default 8 MiB), `queueSize` (default 2) in flight per blob. */
  partSize?: number;
  queueSize?: number;
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
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 3, unique.length)) }, worker));
  return unique.map((b) => results.get(b.digest)!);
}

async function copyOne(options: CopyBlobsOptions, blob: Descriptor, prefix: string): Promise<CopiedBlob> {
  const { s3 } = options;
  const key = blobKey(blob.digest, prefix);
  if ((await headSize(s3, key)) === blob.size) return { digest: blob.digest, size: blob.size, copied: false };

  const body = blobToNodeStream(await options.client.blob(options.repository, blob.digest, { size: blob.size }));
  const upload = new Upload({
    client: s3.client,
    params: { Bucket: s3.bucket, Key: key, Body: body, ContentLength: blob.size, ContentType: blob.mediaType },
    partSize: options.partSize ?? 8 * 1024 * 1024,
    queueSize: options.queueSize ?? 2,
    leavePartsOnError: false,
  });
  // lib-storage may fail with its own error when the body errors; the stream's error says why.
  let streamError: unknown;
  body.once('error', (error) => (streamError = error));
  try {
    await upload.done();
  } catch (error) {
    body.destroy();
    throw streamError ?? error;
  }
  if (streamError) {
    await deleteQuietly(s3, key);
    throw streamError;
  }

  const stored = await headSize(s3, key);
  if (stored !== blob.size) {
    await deleteQuietly(s3, key);
    throw new RegistryError('digest-mismatch', `The object store kept ${stored ?? 'nothing'} bytes of blob ${blob.digest}; it has ${blob.size}`);
  }
  return { digest: blob.digest, size: blob.size, copied: true };
}

/** The store key of a blob: `blobs/sha256/<hex>` by default. */
export function blobKey(digest: string, prefix = BLOB_PREFIX): string {
  const match = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!match) throw new TypeError(`"${digest}" is not a sha256 digest; the object store keeps blobs by sha256`);
  return `${prefix}${match[1]}`;
}

/**
 * Reads blobs back from the store, for `buildImagesArchive`.
 *
 * @example
 * const readBlob = storeBlobReader({ client: s3, bucket });
 */
export function storeBlobReader(s3: ObjectStoreTarget, prefix = BLOB_PREFIX): (descriptor: Descriptor) => Promise<Readable> {
  return async (descriptor) => {
    const answer = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: blobKey(descriptor.digest, prefix) }));
    if (!(answer.Body instanceof Readable)) throw new Error(`The object store sent blob ${descriptor.digest} without a Node stream body`);
    return answer.Body;
  };
}

export async function headSize(s3: ObjectStoreTarget, key: string): Promise<number | null> {
  try {
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    return head.ContentLength ?? 0;
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

export async function deleteQuietly(s3: ObjectStoreTarget, key: string): Promise<void> {
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key })).catch(() => undefined);
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}
