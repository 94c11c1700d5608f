import { rangeSlices, type RangeSlice, type StitchPlan } from '@outpost/bundler';
import { get, type BlobStore } from '../../lib/blob-store.ts';

export interface StitchedRequest {
  method: 'GET' | 'HEAD';
  /** The `Range` header, if any. */
  range?: string | null;
  /** The `If-Range` header, if any. */
  ifRange?: string | null;
}

export interface ServeStitchedInput {
  store: BlobStore;
  /** From `stitchPlan({ sitePartSize: sitePart.length, shared })`. */
  plan: StitchPlan;
  /** The per-site tar (no trailer): the plan's `site` segment. */
  sitePart: Uint8Array;
  /** The shared objects in the plan's order (`object` segments point here by `index`); `key` when not at `blobs/sha256/<hex>`. */
  shared: { sha256: string; key?: string }[];
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
  const { plan, request } = input;
  const total = plan.totalSize;
  const etag = strongEtag(input.etag);
  const headers = new Headers({
    'Accept-Ranges': 'bytes',
    ETag: etag,
    'Content-Type': 'application/x-tar',
    'Content-Disposition': contentDisposition(input.fileName),
    // The bytes differ per site and per signature; caches between the API and the person must not mix them.
    'Cache-Control': 'private, no-transform',
  });

  const wanted = request.range && ifRangeHolds(request.ifRange, etag) ? parseRange(request.range, total) : null;
  if (wanted === 'unsatisfiable') {
    headers.set('Content-Range', `bytes */${total}`);
    headers.set('Content-Type', 'application/json');
    headers.delete('Content-Disposition');
    const body = JSON.stringify({ error: { code: 'RANGE_NOT_SATISFIABLE', message: `The range starts past the end of the file (${total} bytes).` } });
    headers.set('Content-Length', String(Buffer.byteLength(body)));
    return new Response(request.method === 'HEAD' ? null : body, { status: 416, headers });
  }

  const start = wanted ? wanted.start : 0;
  const end = wanted ? wanted.end : total - 1;
  if (wanted) headers.set('Content-Range', `bytes ${start}-${end}/${total}`);
  headers.set('Content-Length', String(end - start + 1));
  const status = wanted ? 206 : 200;
  if (request.method === 'HEAD' || total === 0) return new Response(null, { status, headers });
  return new Response(stitchedBody(input, rangeSlices(plan, start, end)), { status, headers });
}

/** Pull-based: nothing is read from the object store before the client asks for it (backpressure). */
function stitchedBody(input: ServeStitchedInput, slices: RangeSlice[]): ReadableStream<Uint8Array> {
  let next = 0;
  let object: { reader: ReadableStreamDefaultReader<Uint8Array>; skip: number; remaining: number; what: string } | null = null;

  const stopObject = async (reason?: unknown) => {
    const open = object;
    object = null;
    await open?.reader.cancel(reason).catch(() => undefined);
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          if (object) {
            const { done, value } = await object.reader.read();
            if (done) {
              // A short object would shift every later byte: fail the response rather than send a wrong file.
              if (object.remaining !== 0) throw new Error(`${object.what} ended ${object.remaining} bytes early`);
              object = null;
              continue;
            }
            if (object.remaining === 0) {
              await stopObject(); // more than the range was sent (see below): the slice is complete
              continue;
            }
            let chunk = value;
            if (object.skip > 0) {
              const dropped = Math.min(object.skip, chunk.byteLength);
              object.skip -= dropped;
              chunk = chunk.subarray(dropped);
            }
            if (chunk.byteLength === 0) continue;
            if (chunk.byteLength > object.remaining) {
              chunk = chunk.subarray(0, object.remaining);
              await stopObject();
            } else {
              object.remaining -= chunk.byteLength;
            }
            controller.enqueue(chunk);
            return;
          }
          const slice = slices[next++];
          if (!slice) {
            controller.close();
            return;
          }
          const { segment } = slice;
          if (segment.kind === 'object') {
            const blob = input.shared[segment.index];
            if (!blob) throw new Error(`no shared object for ${segment.path}`);
            const length = slice.end - slice.start;
            const whole = slice.start === 0 && slice.end === segment.size;
            const read = await get(input.store, blob.sha256, whole ? undefined : { start: slice.start, end: slice.end - 1 }, blob.key);
            // Some S3-compatible servers answer a range with more than was asked (s3rver sends the whole
            // object for `bytes=0-0`): start from where the answer starts and cut it off at the slice's end.
            const from = read.range?.start ?? 0;
            if (from > slice.start) throw new Error(`${segment.path} (blob ${blob.sha256}) came back from byte ${from}, not ${slice.start}`);
            object = { reader: read.body.getReader(), skip: slice.start - from, remaining: length, what: `${segment.path} (blob ${blob.sha256})` };
            continue;
          }
          const bytes = segment.kind === 'site' ? input.sitePart : segment.bytes;
          if (segment.kind === 'site' && bytes.length !== segment.length) throw new Error(`the site part is ${bytes.length} bytes, the plan says ${segment.length}`);
          controller.enqueue(bytes.subarray(slice.start, slice.end));
          return;
        }
      } catch (err) {
        await stopObject(err);
        throw err; // errors the stream: the client sees a cut-short body, never a wrong one
      }
    },
    // The client went away: stop the object store's stream too, so no socket is left reading.
    async cancel(reason) {
      await stopObject(reason);
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: READ_AHEAD_BYTES }));
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
  const specs = m[1]!.split(',').map((spec) => spec.trim()).filter((spec) => spec !== '');
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
  if (!/^"[\x21\x23-\x7e]*"$/.test(quoted)) throw new Error(`not a strong entity tag: ${JSON.stringify(etag)}`);
  return quoted;
}

/** RFC 6266: an ASCII `filename` every client reads, plus `filename*` in UTF-8 when the name is not ASCII. */
export function contentDisposition(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  if (ascii === fileName) return `attachment; filename="${ascii}"`;
  const encoded = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
