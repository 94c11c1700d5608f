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

export interface StitchedRequest {
  method: 'GET' | 'HEAD';
  /** The `Range` header, if any. */
  range?: string | null;
  /** The `If-Range` header, if any. */
  ifRange?: string | null;
  /** For the error envelope of a 416 answer. */
  requestId?: string;
}

/**
 * Where a shared object's bytes come from: a stored object (at `blobs/sha256/<hex>`, or at `key`),
 * or an images archive produced from its blobs by its `archive` layout.
 */
export interface SharedSource {
  sha256: string;
  key?: string;
  archive?: ImagesArchiveLayout | null;
}

export interface ServeStitchedInput {
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
  request: StitchedRequest;
}

/**
 * The one-file bundle download as a web `Response` (a Hono handler returns it as is): 200 with the
 * whole tar, or 206 with one byte range of it, so a broken download resumes. The site part comes from
 * memory; each shared object is streamed from the object store with a ranged GET of only the bytes
 * the response needs, opened when the body reaches it and cancelled when the client goes away.
 *
 * Range handling (RFC 9110 §14):
 * - one range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) → 206; an end past the file is cut to its end,
 *   a suffix longer than the file is the whole file;
 * - a range starting at or past the end, or `bytes=-0` → 416 with `Content-Range: bytes *\/total`;
 * - several ranges → 200 with the whole file (§14.2 lets a server ignore Range; resuming clients
 *   ask for one range, and multipart/byteranges would only add a second body format to get right);
 * - a malformed header (`bytes=abc`, `bytes=5-2`, an unknown unit) → ignored, 200: §14.1.1 calls a
 *   set with first-pos > last-pos invalid, §14.2 says a server MAY ignore an invalid Range and MUST
 *   ignore an unknown unit. 416 is only for a syntactically valid range that misses the file;
 * - `If-Range` → the Range is honoured only when it names this ETag, compared strongly (§13.1.5);
 *   a different or weak tag, or a date (no Last-Modified is sent), means "the file changed": 200.
 */
export async function serveStitched(input: ServeStitchedInput): Promise<Response> {
  return serveRanges({
    total: input.plan.totalSize,
    etag: input.etag,
    fileName: input.fileName,
    contentType: 'application/x-tar',
    request: input.request,
    open: (start, end) => stitchedBytes(input, rangeSlices(input.plan, start, end - 1)),
  });
}

/** Any file of known size and strong ETag served with ranges as `serveStitched` describes; `open` streams bytes `start` to `end` (exclusive). */
export async function serveRanges(input: {
  total: number;
  etag: string;
  fileName: string;
  contentType: string;
  request: StitchedRequest;
  open: (start: number, end: number) => AsyncGenerator<Uint8Array>;
}): Promise<Response> {
  const { total, request } = input;
  const etag = strongEtag(input.etag);
  const headers = new Headers({
    'Accept-Ranges': 'bytes',
    ETag: etag,
    'Content-Type': input.contentType,
    'Content-Disposition': contentDisposition(input.fileName),
    // The bytes differ per site and per signature; caches between the API and the person must not mix them.
    'Cache-Control': 'private, no-transform',
  });

  const wanted =
    request.range && ifRangeHolds(request.ifRange, etag) ? parseRange(request.range, total) : null;
  if (wanted === 'unsatisfiable') {
    headers.set('Content-Range', `bytes */${total}`);
    headers.set('Content-Type', 'application/json');
    headers.delete('Content-Disposition');
    const body = JSON.stringify({
      error: {
        code: 'RANGE_NOT_SATISFIABLE',
        message: `The range starts past the end of the file (${total} bytes).`,
        requestId: request.requestId ?? 'unknown',
      },
    });
    headers.set('Content-Length', String(Buffer.byteLength(body)));
    return new Response(request.method === 'HEAD' ? null : body, { status: 416, headers });
  }

  const start = wanted ? wanted.start : 0;
  const end = wanted ? wanted.end : total - 1;
  if (wanted) headers.set('Content-Range', `bytes ${start}-${end}/${total}`);
  headers.set('Content-Length', String(end - start + 1));
  const status = wanted ? 206 : 200;
  if (request.method === 'HEAD' || total === 0) return new Response(null, { status, headers });
  return new Response(pulledStream(input.open(start, end + 1)), { status, headers });
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

async function* stitchedBytes(input: ServeStitchedInput, slices: RangeSlice[]): AsyncGenerator<Uint8Array> {
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

/**
 * Pull-based: nothing is read from the object store before the client asks for it, beyond the
 * read-ahead. An object that ends early errors the body (the client sees a cut-short download,
 * never a wrong one); a client that goes away cancels the object store's stream too.
 */
function pulledStream(chunks: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await chunks.return(undefined);
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: READ_AHEAD_BYTES }),
  );
}

/**
 * Bytes read ahead of the client: the next chunk comes from the object store while the last one is
 * being written to the client, instead of one after the other.
 */
const READ_AHEAD_BYTES = 1024 * 1024;

type WantedRange = { start: number; end: number } | 'unsatisfiable' | null;

/** One byte range of a `total`-byte file; null when the header is to be ignored (see `serveStitched`). */
export function parseRange(header: string, total: number): WantedRange {
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return null;
  const specs = m[1]!
    .split(',')
    .map((spec) => spec.trim())
    .filter((spec) => spec !== '');
  if (specs.length !== 1) return null;
  const spec = /^(\d*)-(\d*)$/.exec(specs[0]!);
  if (!spec || (spec[1] === '' && spec[2] === '')) return null;
  if (spec[1] === '') {
    const suffix = Number(spec[2]);
    if (!Number.isSafeInteger(suffix)) return null;
    if (suffix === 0 || total === 0) return 'unsatisfiable';
    return { start: Math.max(0, total - suffix), end: total - 1 };
  }
  const start = Number(spec[1]);
  const last = spec[2] === '' ? Infinity : Number(spec[2]);
  if (!Number.isSafeInteger(start) || (last !== Infinity && !Number.isSafeInteger(last))) return null;
  if (last < start) return null;
  if (start >= total) return 'unsatisfiable';
  return { start, end: Math.min(last, total - 1) };
}

function ifRangeHolds(ifRange: string | null | undefined, etag: string): boolean {
  if (ifRange == null) return true;
  return ifRange.trim() === etag; // strong comparison: a W/ tag or a date never matches
}

function strongEtag(etag: string): string {
  const quoted = /^".*"$/.test(etag) ? etag : `"${etag}"`;
  if (!/^"[\x21\x23-\x7e]*"$/.test(quoted))
    throw new Error(`not a strong entity tag: ${JSON.stringify(etag)}`);
  return quoted;
}

/** RFC 6266: an ASCII `filename` every client reads, plus `filename*` in UTF-8 when the name is not ASCII. */
export function contentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  if (ascii === fileName) return `attachment; filename="${ascii}"`;
  const encoded = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
