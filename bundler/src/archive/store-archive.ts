import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  buildImagesArchive,
  type ArchiveImage,
  type BuildImagesArchiveOptions,
  type ImagesArchiveLayout,
} from './images-archive.ts';
import { storeBlobReader } from './store.ts';
import { BLOB_PREFIX, type ObjectStoreTarget } from './object-store.ts';

export interface RecordImagesArchiveOptions {
  images: ArchiveImage[];
  /** Where the blobs come from; default the store itself (`storeBlobReader`), e.g. `teeingBlobReader(…).readBlob` to copy them at the same time. */
  readBlob?: BuildImagesArchiveOptions['readBlob'];
  /** Where the blobs are, for the default `readBlob`. */
  s3?: ObjectStoreTarget;
  omitLayers?: Iterable<string>;
  fromRelease?: string;
  /** Prefix of content-addressed blobs; default `blobs/sha256/`. */
  prefix?: string;
}

export interface RecordedImagesArchive {
  sha256: string;
  /** Bytes of `images.tgz`. */
  size: number;
  /** Bytes of the tar inside the gzip. */
  tarSize: number;
  /** Layer digests a delta left out. */
  omitted: string[];
  /** From which `readImagesArchive` serves the archive out of the stored blobs. */
  layout: ImagesArchiveLayout;
}

/**
 * Runs a release's `images.tgz` through once — to learn its sha256 (which the signed site manifests
 * list), size and CRC — without writing it anywhere: the archive is served from its blobs with
 * `readImagesArchive`, so the store holds each blob once for every release and every site, and a
 * build writes each byte once. With `teeingBlobReader(…).readBlob`, the blobs are copied from their
 * registry into the store during the same pass.
 *
 * @example
 * const tee = teeingBlobReader({ s3, sources });
 * const archive = await recordImagesArchive({ images, readBlob: tee.readBlob });
 * await tee.settled(); // every blob stored and verified
 * // keep archive.layout, sha256 and size with the release
 */
export async function recordImagesArchive(
  options: RecordImagesArchiveOptions,
): Promise<RecordedImagesArchive> {
  const readBlob =
    options.readBlob ?? (options.s3 ? storeBlobReader(options.s3, options.prefix ?? BLOB_PREFIX) : undefined);
  if (!readBlob) throw new TypeError('recordImagesArchive needs readBlob or s3');
  const archive = buildImagesArchive({
    images: options.images,
    readBlob,
    ...(options.omitLayers ? { omitLayers: options.omitLayers } : {}),
    ...(options.fromRelease ? { fromRelease: options.fromRelease } : {}),
  });
  await pipeline(archive.stream, new Writable({ write: (_chunk, _encoding, callback) => callback() }));
  const { size, sha256, layout } = await archive.done;
  if (size !== archive.size)
    throw new Error(`the images archive came to ${size} bytes, ${archive.size} were expected`);
  return { sha256, size, tarSize: archive.tarSize, omitted: archive.omitted, layout };
}
