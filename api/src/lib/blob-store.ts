import { createHash, randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  UploadPartCopyCommand,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { blobKey, deleteQuietly, headSize, isNotFound } from '@outpost/bundler';
import { artifacts } from '../db/schema/index.ts';
import type { Db } from '../db/types.ts';
import { AppError, NotFoundError, RangeNotSatisfiableError } from './errors.ts';
import type { ObjectStore } from './object-store.ts';

/**
 * Content-addressed objects in the object store: `blobs/sha256/<hex>`, written once whoever uploads
 * the same bytes. An upload streams to `uploads/<uuid>` while its digest is computed, and is moved to
 * its address only when it is complete (and the caller's `verify` accepted it), so a reader never
 * sees a partial blob at a content address.
 */
export type BlobStore = Pick<ObjectStore, 'client' | 'bucket'>;

export const UPLOAD_PREFIX = 'uploads/';

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_QUEUE_SIZE = 2;

/** The largest object one CopyObject may copy (S3's limit); larger ones are copied part by part. */
const COPY_OBJECT_MAX = 5 * 1024 ** 3;

export interface PutStreamOptions {
  mediaType: string;
  /** The upload is refused (413 BODY_TOO_LARGE) as soon as it passes this many bytes. */
  maxBytes: number;
  /**
   * Sees every chunk, in order, before it is stored. Throwing (or rejecting) stops the upload and
   * nothing is kept; a returned promise holds the stream back until it settles (backpressure).
   */
  inspect?: (chunk: Uint8Array) => void | Promise<void>;
  /** Runs once the whole stream was read and stored, before the blob gets its address; throwing keeps nothing. */
  verify?: (blob: { sha256: string; size: number }) => void | Promise<void>;
  /**
   * Multipart tuning: parts of `partSize` bytes (default 8 MiB), `queueSize` (default 2) sent at once.
   * Memory held is about twice `partSize × queueSize` (parts being sent plus the one being filled).
   */
  partSize?: number;
  queueSize?: number;
  /** @internal tests lower it to exercise the part-by-part copy on a small object. */
  copyObjectMax?: number;
}

export interface PutStreamResult {
  sha256: string;
  size: number;
  key: string;
  /** The same bytes were already stored; nothing new was written. */
  existed: boolean;
}

async function* chunksOf(stream: ReadableStream<Uint8Array> | Readable): AsyncGenerator<Uint8Array> {
  if (stream instanceof Readable) {
    for await (const chunk of stream)
      yield typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
    return;
  }
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    // Stopping early (too large, rejected by `inspect`) cancels the source rather than draining it.
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

export function bodyTooLarge(maxBytes: number): AppError {
  return new AppError(
    'too-large',
    'BODY_TOO_LARGE',
    `The upload is larger than the limit of ${maxBytes} bytes.`,
    [{ path: 'body', message: `At most ${maxBytes} bytes.`, maxBytes }],
  );
}

/**
 * Streams `stream` into the store at its content address and returns the address.
 * Nothing is left behind when it fails: the temporary object is deleted (an unfinished multipart
 * upload is aborted), and a blob already at the address is never touched.
 *
 * @example
 *   const { sha256, existed } = await putStream(store, req.body, { mediaType: 'application/zip', maxBytes: 1 << 30 });
 */
export async function putStream(
  store: BlobStore,
  stream: ReadableStream<Uint8Array> | Readable,
  opts: PutStreamOptions,
): Promise<PutStreamResult> {
  const tempKey = `${UPLOAD_PREFIX}${randomUUID()}`;
  const hash = createHash('sha256');
  let size = 0;
  // lib-storage reads a Node stream; chunks are written with backpressure so memory stays ~partSize × queueSize.
  const pass = new PassThrough({ highWaterMark: 1024 * 1024 });
  const upload = new Upload({
    client: store.client,
    params: { Bucket: store.bucket, Key: tempKey, Body: pass, ContentType: opts.mediaType },
    partSize: opts.partSize ?? DEFAULT_PART_SIZE,
    queueSize: opts.queueSize ?? DEFAULT_QUEUE_SIZE,
    leavePartsOnError: false,
  });
  const uploaded = upload.done();
  // Settles early only when the store failed; then writing stops at once rather than waiting for a drain.
  const storeFailed = uploaded.then(
    () => new Promise<never>(() => undefined),
    (err: unknown) => {
      throw err;
    },
  );
  storeFailed.catch(() => undefined);

  try {
    for await (const chunk of chunksOf(stream)) {
      if (chunk.byteLength === 0) continue;
      size += chunk.byteLength;
      if (size > opts.maxBytes) throw bodyTooLarge(opts.maxBytes);
      hash.update(chunk);
      if (opts.inspect) await Promise.race([opts.inspect(chunk), storeFailed]);
      if (!pass.write(chunk)) {
        await Promise.race([
          new Promise<void>((resolve) => pass.once('drain', () => resolve())),
          storeFailed,
        ]);
      }
    }
    pass.end();
    await uploaded;
    const sha256 = hash.digest('hex');
    await opts.verify?.({ sha256, size });

    const key = blobKey(`sha256:${sha256}`);
    const stored = await headSize(store, key);
    if (stored === size) {
      await deleteQuietly(store, tempKey);
      return { sha256, size, key, existed: true };
    }
    // Absent, or (only after damage outside Outpost) of the wrong size: (re)write it from the verified upload.
    await moveObject(store, tempKey, key, size, opts);
    const final = await headSize(store, key);
    if (final !== size)
      throw new Error(`The object store kept ${final ?? 'nothing'} bytes of ${key}, not ${size}.`);
    await deleteQuietly(store, tempKey);
    return { sha256, size, key, existed: false };
  } catch (err) {
    // Ends the multipart upload (lib-storage aborts it) before the temporary object is removed.
    pass.destroy(err instanceof Error ? err : new Error(String(err)));
    await uploaded.catch(() => undefined);
    await deleteQuietly(store, tempKey);
    throw err;
  }
}

/** Copies within the bucket: one CopyObject up to 5 GiB, else part by part, else (servers without UploadPartCopy) by streaming. */
async function moveObject(
  store: BlobStore,
  from: string,
  to: string,
  size: number,
  opts: PutStreamOptions,
): Promise<void> {
  const source = `${store.bucket}/${from}`;
  if (size <= (opts.copyObjectMax ?? COPY_OBJECT_MAX)) {
    // The copy keeps the temporary object's metadata (its Content-Type).
    await store.client.send(new CopyObjectCommand({ Bucket: store.bucket, Key: to, CopySource: source }));
    return;
  }
  const partSize = Math.max(Math.ceil(size / 10_000), 512 * 1024 * 1024);
  const { UploadId } = await store.client.send(
    new CreateMultipartUploadCommand({ Bucket: store.bucket, Key: to, ContentType: opts.mediaType }),
  );
  try {
    const parts: { PartNumber: number; ETag?: string }[] = [];
    for (let start = 0, n = 1; start < size; start += partSize, n++) {
      const end = Math.min(start + partSize, size) - 1;
      const res = await store.client.send(
        new UploadPartCopyCommand({
          Bucket: store.bucket,
          Key: to,
          UploadId,
          PartNumber: n,
          CopySource: source,
          CopySourceRange: `bytes=${start}-${end}`,
        }),
      );
      parts.push({ PartNumber: n, ETag: res.CopyPartResult?.ETag });
    }
    await store.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: store.bucket,
        Key: to,
        UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch {
    // s3rver 3.7.1 (the embedded store) has no UploadPartCopy: stream the object through this process instead.
    await store.client
      .send(new AbortMultipartUploadCommand({ Bucket: store.bucket, Key: to, UploadId }))
      .catch(() => undefined);
    const got = await store.client.send(new GetObjectCommand({ Bucket: store.bucket, Key: from }));
    const upload = new Upload({
      client: store.client,
      params: { Bucket: store.bucket, Key: to, Body: got.Body as Readable, ContentType: opts.mediaType },
      partSize: opts.partSize ?? DEFAULT_PART_SIZE,
      queueSize: opts.queueSize ?? DEFAULT_QUEUE_SIZE,
    });
    await upload.done();
  }
}

export async function has(store: BlobStore, sha256: string): Promise<boolean> {
  return (await headSize(store, blobKey(`sha256:${sha256}`))) !== null;
}

export interface ByteRange {
  start: number;
  /** Inclusive, as in HTTP; absent means to the end. */
  end?: number;
}

export interface BlobRead {
  body: ReadableStream<Uint8Array>;
  /** Bytes in `body`. */
  contentLength: number;
  /** Bytes in the whole blob. */
  totalSize: number;
  /** The bytes `body` holds (inclusive), when a range was asked for. */
  range?: { start: number; end: number };
}

/** A blob's bytes (or a range of them) as a web stream; 404 when absent, 416 when the range starts past the end. */
/** Reads a blob by its sha256 (at `blobs/sha256/<hex>`, or at `key` when it was stored elsewhere), whole or a range. */
export async function get(
  store: BlobStore,
  sha256: string,
  range?: ByteRange,
  key = blobKey(`sha256:${sha256}`),
): Promise<BlobRead> {
  try {
    const res = await store.client.send(
      new GetObjectCommand({
        Bucket: store.bucket,
        Key: key,
        Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined,
      }),
    );
    const contentLength = res.ContentLength ?? 0;
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.ContentRange ?? '');
    const body = res.Body!.transformToWebStream() as ReadableStream<Uint8Array>;
    if (range && m)
      return {
        body,
        contentLength,
        totalSize: Number(m[3]),
        range: { start: Number(m[1]), end: Number(m[2]) },
      };
    return {
      body,
      contentLength,
      totalSize: contentLength,
      range: range && contentLength > 0 ? { start: 0, end: contentLength - 1 } : undefined,
    };
  } catch (err) {
    if (isNotFound(err)) throw new NotFoundError('blob', sha256);
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e?.name === 'InvalidRange' || e?.$metadata?.httpStatusCode === 416) {
      const total = await headSize(store, key);
      throw new RangeNotSatisfiableError(total);
    }
    throw err;
  }
}

/** Deletes a blob; only for a blob nothing references (the caller checks), e.g. after a failed first upload. */
export async function remove(store: BlobStore, sha256: string): Promise<void> {
  await store.client.send(
    new DeleteObjectCommand({ Bucket: store.bucket, Key: blobKey(`sha256:${sha256}`) }),
  );
}

export interface ArtifactRecord {
  sha256: string;
  size: number;
  mediaType: string;
  key: string;
}

/** The `artifacts` row for a stored blob; the first writer's row stands (the bytes are the same). */
export async function recordArtifact(db: Db, a: ArtifactRecord): Promise<void> {
  await db
    .insert(artifacts)
    .values({ sha256: a.sha256, size: a.size, mediaType: a.mediaType, key: a.key })
    .onConflictDoNothing();
}
