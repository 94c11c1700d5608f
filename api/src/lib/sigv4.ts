import { createHash, createHmac } from 'node:crypto';
import { timingSafeEqual } from './crypto.ts';

/**
 * Checks AWS Signature Version 4 on a request to the embedded object store: the Authorization header
 * the S3 client sends, or the query string of a presigned link. The canonical request is rebuilt
 * from what arrived, as S3 does; the payload hash is the one the request declares (the body is not
 * read here: the signature proves who made the request, the store keeps what it is sent).
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 */
export interface SigV4Request {
  method: string;
  /** Path and query exactly as sent (`/bucket/key?X-Amz-…`). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export type SigV4Result =
  { ok: true } | { ok: false; reason: 'unsigned' | 'malformed' | 'unknown-key' | 'expired' | 'mismatch' };

const MAX_SKEW_MS = 15 * 60_000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

const encode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
const hex = (data: string) => createHash('sha256').update(data).digest('hex');

function parseAmzDate(value: string | undefined): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '');
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : null;
}

function header(headers: SigV4Request['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function verifySigV4(
  req: SigV4Request,
  credentials: { accessKeyId: string; secretAccessKey: string },
  now = Date.now(),
): SigV4Result {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const pairs = (q < 0 ? '' : req.url.slice(q + 1))
    .split('&')
    .filter(Boolean)
    .map((p) => {
      const i = p.indexOf('=');
      const dec = (s: string) => {
        try {
          return decodeURIComponent(s.replace(/\+/g, '%20'));
        } catch {
          return s;
        }
      };
      return [dec(i < 0 ? p : p.slice(0, i)), dec(i < 0 ? '' : p.slice(i + 1))] as [string, string];
    });
  const query = new Map(pairs);
  const authorization = header(req.headers, 'authorization');
  const presigned = query.has('X-Amz-Signature') || query.has('X-Amz-Algorithm');
  if (!authorization && !presigned) return { ok: false, reason: 'unsigned' };
  if (authorization && presigned) return { ok: false, reason: 'malformed' };

  let credential: string;
  let signedHeaders: string;
  let signature: string;
  let amzDate: string | undefined;
  let payload: string;
  if (authorization) {
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(
        authorization.trim(),
      );
    if (!m) return { ok: false, reason: 'malformed' };
    [credential, signedHeaders, signature] = [m[1]!, m[2]!, m[3]!];
    amzDate = header(req.headers, 'x-amz-date');
    payload = header(req.headers, 'x-amz-content-sha256') ?? hex('');
  } else {
    if (query.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return { ok: false, reason: 'malformed' };
    credential = query.get('X-Amz-Credential') ?? '';
    signedHeaders = query.get('X-Amz-SignedHeaders') ?? '';
    signature = query.get('X-Amz-Signature') ?? '';
    amzDate = query.get('X-Amz-Date');
    payload =
      query.get('X-Amz-Content-Sha256') ?? header(req.headers, 'x-amz-content-sha256') ?? 'UNSIGNED-PAYLOAD';
    if (!/^[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: 'malformed' };
  }
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || !signedHeaders.split(';').includes('host'))
    return { ok: false, reason: 'malformed' };
  if (scope[0] !== credentials.accessKeyId) return { ok: false, reason: 'unknown-key' };
  const signedAt = parseAmzDate(amzDate);
  if (signedAt === null || amzDate!.slice(0, 8) !== scope[1]) return { ok: false, reason: 'malformed' };
  if (presigned) {
    const expires = Number(query.get('X-Amz-Expires'));
    if (!Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGN_SECONDS)
      return { ok: false, reason: 'malformed' };
    if (now > signedAt + expires * 1000 || signedAt - now > MAX_SKEW_MS)
      return { ok: false, reason: 'expired' };
  } else if (Math.abs(now - signedAt) > MAX_SKEW_MS) {
    return { ok: false, reason: 'expired' };
  }

  const canonicalQuery = pairs
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [encode(k), encode(v)])
    .sort(([a, x], [b, y]) => (a! < b! ? -1 : a! > b! ? 1 : x! < y! ? -1 : x! > y! ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = signedHeaders.split(';');
  const canonicalHeaders = names
    .map((n) => `${n}:${(header(req.headers, n) ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonicalRequest = [
    req.method.toUpperCase(),
    path,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    payload,
  ].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope.slice(1).join('/'), hex(canonicalRequest)].join(
    '\n',
  );
  const key = [scope[1]!, scope[2]!, scope[3]!, 'aws4_request'].reduce<Buffer | string>(
    (k, part) => hmac(k, part),
    `AWS4${credentials.secretAccessKey}`,
  );
  const expected = hmac(key, stringToSign);
  const given = Buffer.from(signature, 'hex');
  return timingSafeEqual(given, expected) ? { ok: true } : { ok: false, reason: 'mismatch' };
}
