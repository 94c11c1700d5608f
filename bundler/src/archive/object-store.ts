import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * What the bundler and the API both need of an S3-compatible object store: where a blob lives,
 * whether an object is there, how to drop one, and what a failed call means.
 */

/** An S3 bucket (any S3-compatible store) the bundler writes to. */
export interface ObjectStoreTarget {
  client: S3Client;
  bucket: string;
}

/** Where content-addressed blobs live: `blobs/sha256/<hex>`. */
export const BLOB_PREFIX = 'blobs/sha256/';

/**
 * The store key of a blob, from its digest (`sha256:<hex>`, as in image manifests): `blobs/sha256/<hex>`
 * by default. Anything else is refused, so no key is ever built from unchecked text.
 *
 * @example
 * blobKey('sha256:9f86d0…'); // 'blobs/sha256/9f86d0…'
 */
export function blobKey(digest: string, prefix = BLOB_PREFIX): string {
  const match = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!match)
    throw new TypeError(`"${digest}" is not a sha256 digest; the object store keeps blobs by sha256`);
  return `${prefix}${match[1]}`;
}

/**
 * The size of the object at `key`, or null when there is none.
 *
 * @example
 * if ((await headSize(s3, blobKey(digest))) === size) return; // stored already
 */
export async function headSize(s3: ObjectStoreTarget, key: string): Promise<number | null> {
  try {
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    return head.ContentLength ?? 0;
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/**
 * Deletes the object at `key`, ignoring any failure: for clean-up on a path that is failing already.
 *
 * @example
 * await deleteQuietly(s3, `uploads/${id}`);
 */
export async function deleteQuietly(s3: ObjectStoreTarget, key: string): Promise<void> {
  await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key })).catch(() => undefined);
}

/**
 * The store answered that the object (or key) does not exist.
 *
 * @example
 * const head = await s3.client.send(cmd).catch((e) => (isNotFound(e) ? null : Promise.reject(e)));
 */
export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * How a call to the object store failed:
 * - `timeout`: it stopped answering (the client's idle timeout);
 * - `unreachable`: the connection was refused, reset or could not be made;
 * - `server`: it answered with a fault of its own (5xx);
 * - `refused`: it answered, and refused (a missing bucket, denied access…).
 */
export type StoreFailure = 'timeout' | 'unreachable' | 'server' | 'refused';

/**
 * What kind of object-store failure `error` is, or null when it did not come from the store. Only
 * the S3 client's errors carry `$metadata` (its retry step adds it to network failures too), so a
 * database that is down, or a message that merely mentions a socket, is never taken for the store.
 *
 * @example
 * if (storeFailure(error) === 'timeout') console.error('The object store stopped answering.');
 */
export function storeFailure(error: unknown): StoreFailure | null {
  const e = error as {
    name?: string;
    code?: string;
    $fault?: string;
    $metadata?: { httpStatusCode?: number };
  } | null;
  if (!e || typeof e !== 'object' || !e.$metadata) return null;
  if (e.name === 'TimeoutError') return 'timeout';
  if (e.code !== undefined && NETWORK_CODES.has(e.code)) return 'unreachable';
  if (e.$fault === 'server' || (e.$metadata.httpStatusCode ?? 0) >= 500) return 'server';
  return 'refused';
}

/**
 * The store (or the network to it) failed on its side — not the caller's fault, nor a bug: worth
 * trying again later (the API answers 503).
 *
 * @example
 * if (isStoreUnavailable(error)) return retryLater();
 */
export function isStoreUnavailable(error: unknown): boolean {
  const failure = storeFailure(error);
  return failure !== null && failure !== 'refused';
}
