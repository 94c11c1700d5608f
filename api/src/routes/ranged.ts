import type { ByteSource } from '../lib/byte-source.ts';
import type { AppContext } from './app-env.ts';

/** What of a request decides a ranged answer. */
export interface RangedRequest {
  method: 'GET' | 'HEAD';
  /** The `Range` header, if any. */
  range?: string | null;
  /** The `If-Range` header, if any. */
  ifRange?: string | null;
  /** For the error envelope of a 416 answer. */
  requestId?: string;
}

/** The ranged answer to this request (GET or HEAD) for `source`. */
export function ranged(c: AppContext, source: ByteSource): Promise<Response> {
  return rangedResponse(source, {
    method: c.req.method === 'HEAD' ? 'HEAD' : 'GET',
    range: c.req.header('Range') ?? null,
    ifRange: c.req.header('If-Range') ?? null,
    requestId: c.var.requestId,
  });
}

/**
 * A file as a web `Response` (a Hono handler returns it as is): 200 with the whole file, or 206 with
 * one byte range of it, so a broken download resumes. The body is pulled from `source.open`: nothing
 * is read before the client asks for it, and a client that goes away stops the reads.
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
export async function rangedResponse(source: ByteSource, request: RangedRequest): Promise<Response> {
  const total = source.size;
  const etag = strongEtag(source.etag);
  const headers = new Headers({
    'Accept-Ranges': 'bytes',
    ETag: etag,
    'Content-Type': source.contentType,
    'Content-Disposition': contentDisposition(source.fileName),
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
  return new Response(pulledStream(await source.open(start, end + 1)), { status, headers });
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

/** One byte range of a `total`-byte file; null when the header is to be ignored (see `rangedResponse`). */
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
