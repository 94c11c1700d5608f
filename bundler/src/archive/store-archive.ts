import { randomUUID } from 'node:crypto';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { buildImagesArchive, type ArchiveImage, type BuildImagesArchiveOptions } from './images-archive.ts';
import { BLOB_PREFIX, deleteQuietly, headSize, storeBlobReader, type ObjectStoreTarget } from './store.ts';

export interface StoreImagesArchiveOptions {
  images: ArchiveImage[];
  /** Where the blobs come from; default the store itself (`storeBlobReader`), e.g. `teeingBlobReader(…).readBlob` to copy and archive at once. */
  readBlob?: BuildImagesArchiveOptions['readBlob'];
  /**
   * Store the archive at this key, written once, instead of at its content address (which needs a
   * second, server-side copy once the digest is known). The caller records key and digest.
   */
  key?: string;
  /** Where the blobs are (copied there by `copyBlobsToStore`) and where the archive goes. */
  s3: ObjectStoreTarget;
  omitLayers?: Iterable<string>;
  fromRelease?: string;
  /** Prefix of content-addressed objects; default `blobs/sha256/`. */
  prefix?: string;
  /** Prefix of in-progress uploads; default `uploads/`. */
  uploadPrefix?: string;
  gzipLevel?: number;
  /** Upload parts of `partSize` bytes (default 8 MiB), `queueSize` (default 4) in flight: memory held is about `(queueSize + 2) × partSize`. */
  partSize?: number;
  queueSize?: number;
  /** @internal tests lower it to exercise the part-by-part copy. */
  copyObjectMax?: number;
}

export interface StoredImagesArchive {
  /** `blobs/sha256/<sha256>`: the archive is stored by its own digest, like any other blob. */
  key: string;
  sha256: string;
  /** Bytes of the stored (compressed) archive. */
  size: number;
  /** Bytes of the tar inside the gzip. */
  tarSize: number;
  /** Layer digests a delta left out. */
  omitted: string[];
  /** The same archive was already stored; the new upload was dropped. */
  existed: boolean;
}

/** S3's limit for one CopyObject; larger objects are copied part by part. */
const COPY_OBJECT_MAX = 5 * 1024 ** 3;
const COPY_PART_SIZE = 512 * 1024 ** 2;

/**
 * Builds a release's `images.tgz` from blobs already in the object store and stores it
 * content-addressed, at `blobs/sha256/<sha256 of the archive>`. The archive streams to
 * `uploads/<uuid>` while its digest is computed, then is copied to its address and the upload
 * removed, so a reader never sees a partial archive at a content address.
 *
 * @example
 * const stored = await storeImagesArchive({ images, s3: { client: s3, bucket } });
 * // record stored.key, stored.sha256 and stored.size with the release
 */
export async function storeImagesArchive(options: StoreImagesArchiveOptions): Promise<StoredImagesArchive> {
  const { s3 } = options;
  const prefix = options.prefix ?? BLOB_PREFIX;
  const archive = buildImagesArchive({
    images: options.images,
    readBlob: options.readBlob ?? storeBlobReader(s3, prefix),
    ...(options.omitLayers ? { omitLayers: options.omitLayers } : {}),
    ...(options.fromRelease ? { fromRelease: options.fromRelease } : {}),
    ...(options.gzipLevel !== undefined ? { gzipLevel: options.gzipLevel } : {}),
  });
  const tempKey = options.key ?? `${options.uploadPrefix ?? 'uploads/'}${randomUUID()}`;
  let written = false;
  try {
    let streamError: unknown;
    archive.stream.once('error', (error) => (streamError = error));
    const upload = new Upload({
      client: s3.client,
      params: { Bucket: s3.bucket, Key: tempKey, Body: archive.stream, ContentType: 'application/gzip' },
      partSize: options.partSize ?? 8 * 1024 * 1024,
      queueSize: options.queueSize ?? 2,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (error) {
      archive.stream.destroy();
      throw streamError ?? error;
    }
    if (streamError) throw streamError;
    const { sha256, size } = await archive.done;

    const stored = await headSize(s3, tempKey);
    if (stored !== size) throw new Error(`The object store kept ${stored ?? 'nothing'} bytes of the images archive; it has ${size}`);
    if (options.key) {
      written = true;
      return { key: options.key, sha256, size, tarSize: archive.tarSize, omitted: archive.omitted, existed: false };
    }
    const key = `${prefix}${sha256}`;
    const existed = (await headSize(s3, key)) === size;
    if (!existed) await copyObject(s3, tempKey, key, size, options.copyObjectMax ?? COPY_OBJECT_MAX);
    return { key, sha256, size, tarSize: archive.tarSize, omitted: archive.omitted, existed };
  } finally {
    // The temporary upload goes; an archive written straight to its given key stays once complete.
    if (!written) await deleteQuietly(s3, tempKey);
  }
}

async function copyObject(s3: ObjectStoreTarget, from: string, to: string, size: number, copyObjectMax: number): Promise<void> {
  const source = `${s3.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
  if (size <= copyObjectMax) {
    await s3.client.send(new CopyObjectCommand({ Bucket: s3.bucket, Key: to, CopySource: source, ContentType: 'application/gzip', MetadataDirective: 'REPLACE' }));
    return;
  }
  const { UploadId } = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: to, ContentType: 'application/gzip' }));
  try {
    const parts: { ETag: string; PartNumber: number }[] = [];
    const partSize = Math.max(COPY_PART_SIZE, Math.ceil(size / 10_000));
    for (let start = 0, PartNumber = 1; start < size; start += partSize, PartNumber++) {
      const end = Math.min(start + partSize, size) - 1;
      const answer = await s3.client.send(
        new UploadPartCopyCommand({ Bucket: s3.bucket, Key: to, UploadId, PartNumber, CopySource: source, CopySourceRange: `bytes=${start}-${end}` }),
      );
      parts.push({ ETag: answer.CopyPartResult!.ETag!, PartNumber });
    }
    await s3.client.send(new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (error) {
    await s3.client.send(new AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: to, UploadId })).catch(() => undefined);
    throw error;
  }
  const copied = await headSize(s3, to);
  if (copied !== size) {
    await deleteQuietly(s3, to);
    throw new Error(`Copying the images archive to ${to} kept ${copied ?? 'nothing'} of its ${size} bytes`);
  }
}
