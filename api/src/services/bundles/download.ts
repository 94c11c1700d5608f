import {
  blobKey,
  headSize,
  rangeSlices,
  readImagesArchive,
  readStoredRange,
  type ImagesArchiveLayout,
  type RangeSlice,
  type StitchPlan,
} from '@outpost/bundler';
import type { BlobStore } from '../../lib/blob-store.ts';
import type { ByteSource } from '../../lib/byte-source.ts';

/**
 * Where a shared object's bytes come from: a stored object (at `blobs/sha256/<hex>`, or at `key`),
 * or an images archive produced from its blobs by its `archive` layout.
 */
export interface SharedSource {
  sha256: string;
  key?: string;
  archive?: ImagesArchiveLayout | null;
}

export interface StitchedInput {
  store: BlobStore;
  /** From `stitchPlan({ sitePartSize: sitePart.length, shared })`. */
  plan: StitchPlan;
  /** The per-site tar (no trailer): the plan's `site` segment. */
  sitePart: Uint8Array;
  /** The shared objects in the plan's order (`object` segments point here by `index`). */
  shared: SharedSource[];
  /** Strong validator of exactly these bytes, quoted or not (`"abc"` or `abc`). */
  etag: string;
  /** Offered to the browser in Content-Disposition. */
  fileName: string;
}

/**
 * The one-file bundle download as a byte source (routes/ranged.ts answers ranges of it, so a broken
 * download resumes). The site part comes from memory; each shared object is streamed from the object
 * store with a ranged GET of only the bytes asked for, opened when the reader reaches it and
 * cancelled when the reader stops.
 */
export function stitchedSource(input: StitchedInput): ByteSource {
  return {
    size: input.plan.totalSize,
    etag: input.etag,
    fileName: input.fileName,
    contentType: 'application/x-tar',
    open: async (start, end) => stitchedBytes(input, rangeSlices(input.plan, start, end - 1)),
  };
}

/** Bytes `start` to `end` (exclusive) of a shared object, read from the object store when first pulled. */
export function readShared(
  store: BlobStore,
  source: SharedSource,
  start: number,
  end: number,
  size?: number,
): AsyncGenerator<Uint8Array> {
  if (source.archive) {
    return readImagesArchive(source.archive, start, end, (digest, from, to, blobSize) =>
      readStoredRange(store, blobKey(digest), from, to, blobSize),
    );
  }
  return readStoredRange(store, source.key ?? blobKey(`sha256:${source.sha256}`), start, end, size);
}

/** Blobs of an archive's layout that are not in the store with their size (`checked` skips ones seen whole before). */
export async function missingBlobs(
  store: BlobStore,
  layout: ImagesArchiveLayout,
  checked?: Set<string>,
): Promise<string[]> {
  const blobs = layout.entries.filter((e) => e.digest && !checked?.has(e.digest));
  const sizes = await Promise.all(blobs.map((e) => headSize(store, blobKey(e.digest!))));
  const missing = blobs.filter((e, i) => sizes[i] !== e.size).map((e) => e.digest!);
  for (const e of blobs) if (!missing.includes(e.digest!)) checked?.add(e.digest!);
  return missing;
}

/**
 * Blobs a download of this process found whole lately. A bundle download (and every resumed range of
 * it) checks the archive's blobs before answering, so a missing one is a clear 503 rather than a cut
 * body; within a few minutes the same blobs are not asked about again (a wave of sites downloads the
 * same archive). A build always asks the store (`missingBlobs`).
 */
const seenWhole = new Map<string, number>();
const SEEN_FOR_MS = 5 * 60_000;

export async function missingBlobsForDownload(
  store: BlobStore,
  layout: ImagesArchiveLayout,
): Promise<string[]> {
  const now = Date.now();
  const key = (digest: string) => `${store.bucket}/${digest}`;
  const recent = new Set(
    layout.entries.filter((e) => e.digest && (seenWhole.get(key(e.digest)) ?? 0) > now).map((e) => e.digest!),
  );
  const checked = new Set(recent);
  const missing = await missingBlobs(store, layout, checked);
  if (seenWhole.size > 10_000) seenWhole.clear();
  for (const digest of checked) if (!recent.has(digest)) seenWhole.set(key(digest), now + SEEN_FOR_MS);
  return missing;
}

async function* stitchedBytes(input: StitchedInput, slices: RangeSlice[]): AsyncGenerator<Uint8Array> {
  for (const { segment, start, end } of slices) {
    if (segment.kind === 'object') {
      const source = input.shared[segment.index];
      if (!source) throw new Error(`no shared object for ${segment.path}`);
      yield* readShared(input.store, source, start, end, segment.size);
      continue;
    }
    const bytes = segment.kind === 'site' ? input.sitePart : segment.bytes;
    if (segment.kind === 'site' && bytes.length !== segment.length)
      throw new Error(`the site part is ${bytes.length} bytes, the plan says ${segment.length}`);
    yield bytes.subarray(start, end);
  }
}
