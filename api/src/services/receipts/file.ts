// Receipt files: the JSON receipt an install writes beside the code, uploadable when the site
// is online or carried off on a USB stick. Its `hmac` covers a fixed line-based message that
// POSIX sh can produce byte for byte (edge-scripts/lib/receipt-code.sh), not JSON.stringify of
// the details: the details enter the MAC as the SHA-256 of their raw text in the file.
// Specified in docs/receipt-codes.md §9.

import {
  RECEIPT_OUTCOMES,
  assertVersion,
  canonicalSiteId,
  checkReceiptCode,
  encodeReceiptCode,
  hmacSha256,
  isValidVersion,
  verifyReceiptCode,
  type ReceiptOutcome,
} from './code.ts';
import { timingSafeEqual } from '../../lib/crypto.ts';

export const RECEIPT_FILE_FORMAT = 'outpost-receipt/1';

const ISO_SECONDS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const JSON_WS = ' \t\n\r';
const enc = new TextEncoder();

export interface SignReceiptFileInput {
  key: Uint8Array;
  siteId: string;
  version: string;
  outcome: ReceiptOutcome;
  /** Rounded down to the second in the file (and to the minute in the code). */
  at: Date;
  /** The details object's JSON text exactly as it will appear in the file; default `{}`. */
  detailsText?: string;
}

export interface SignedReceiptFile {
  /** The whole file, as the shell script writes it (2-space layout, trailing newline). */
  json: string;
  code: string;
  hmac: string;
  /** The line-based text the HMAC covers. */
  message: string;
}

export interface VerifiedReceiptFile {
  siteId: string;
  version: string;
  outcome: ReceiptOutcome;
  at: Date;
  details: Record<string, unknown>;
  /** Normalized receipt code; the same idempotency key as a typed-in code. */
  code: string;
}

export type VerifyReceiptFileResult =
  | ({ ok: true } & VerifiedReceiptFile)
  | { ok: false; reason: 'malformed' | 'wrong-site' | 'bad-hmac' | 'code-mismatch'; message: string };

export const RECEIPT_FILE_MESSAGES = {
  malformed: 'This is not an Outpost receipt file, or it was changed after the install wrote it.',
  wrongSite: 'This receipt file is for a different site.',
  badHmac:
    'This receipt file was changed after the install wrote it, or it is from another site. It cannot be accepted.',
  codeMismatch:
    'The receipt code inside this file does not match the rest of the file. It cannot be accepted.',
} as const;

/** Writes a receipt file as the install script does; for tests and for tools that make receipts. */
export async function signReceiptFile({
  key,
  siteId,
  version,
  outcome,
  at,
  detailsText = '{}',
}: SignReceiptFileInput): Promise<SignedReceiptFile> {
  const site = canonicalSiteId(siteId);
  assertVersion(version);
  const details = detailsText.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, '');
  if (!isJsonObjectText(details)) throw new TypeError('Receipt details must be the text of a JSON object.');
  const seconds = new Date(Math.floor(at.getTime() / 1000) * 1000);
  const code = await encodeReceiptCode({ key, siteId: site, version, outcome, at: seconds });
  const atText = seconds.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const message = fileMessage({
    site,
    version,
    outcome,
    atText,
    code,
    detailsSha256: await sha256Hex(details),
  });
  const hmac = toHex(await hmacSha256(key, message));
  const json = [
    '{',
    `  "format": ${JSON.stringify(RECEIPT_FILE_FORMAT)},`,
    `  "siteId": ${JSON.stringify(site)},`,
    `  "version": ${JSON.stringify(version)},`,
    `  "outcome": ${JSON.stringify(outcome)},`,
    `  "at": ${JSON.stringify(atText)},`,
    `  "details": ${details},`,
    `  "code": ${JSON.stringify(code)},`,
    `  "hmac": ${JSON.stringify(hmac)}`,
    '}',
    '',
  ].join('\n');
  return { json, code, hmac, message };
}

/**
 * Verifies an uploaded receipt file — pass the file's text exactly as received; the details
 * are authenticated through their raw text, so a file re-serialised on the way is refused.
 */
export async function verifyReceiptFile({
  key,
  siteId,
  json,
}: {
  key: Uint8Array;
  siteId: string;
  json: string;
}): Promise<VerifyReceiptFileResult> {
  const site = canonicalSiteId(siteId);
  const malformed = { ok: false, reason: 'malformed', message: RECEIPT_FILE_MESSAGES.malformed } as const;
  const text = json.startsWith('\ufeff') ? json.slice(1) : json;

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return malformed;
  }
  const spans = topLevelSpans(text);
  if (!spans || !isRecord(parsed)) return malformed;
  const { format, siteId: fileSite, version, outcome, at, details, code, hmac } = parsed;
  if (format !== RECEIPT_FILE_FORMAT) return malformed;
  if (typeof fileSite !== 'string' || typeof version !== 'string' || typeof outcome !== 'string')
    return malformed;
  if (typeof at !== 'string' || typeof code !== 'string' || typeof hmac !== 'string') return malformed;
  if (!isRecord(details) || !isValidVersion(version) || !HEX64_RE.test(hmac)) return malformed;
  if (!(RECEIPT_OUTCOMES as readonly string[]).includes(outcome)) return malformed;
  const atDate = parseIsoSeconds(at);
  const checked = checkReceiptCode(code);
  if (!atDate || !checked.ok) return malformed;
  if (fileSite !== site) return { ok: false, reason: 'wrong-site', message: RECEIPT_FILE_MESSAGES.wrongSite };

  const span = spans.get('details')!;
  const detailsSha256 = await sha256Hex(text.slice(span.start, span.end));
  const message = fileMessage({
    site,
    version,
    outcome,
    atText: at,
    code: checked.normalized,
    detailsSha256,
  });
  const expected = await hmacSha256(key, message);
  if (!timingSafeEqual(expected, fromHex(hmac)))
    return { ok: false, reason: 'bad-hmac', message: RECEIPT_FILE_MESSAGES.badHmac };

  // The MAC says the script wrote these fields together; the code must say the same thing.
  const v = await verifyReceiptCode({
    key,
    siteId: site,
    code: checked.normalized,
    candidateVersions: [version],
  });
  const minuteOfAt = Math.floor(atDate.getTime() / 60_000) * 60_000;
  if (!v.ok || v.outcome !== outcome || v.at.getTime() !== minuteOfAt) {
    return { ok: false, reason: 'code-mismatch', message: RECEIPT_FILE_MESSAGES.codeMismatch };
  }
  return {
    ok: true,
    siteId: site,
    version,
    outcome: outcome as ReceiptOutcome,
    at: atDate,
    details,
    code: checked.normalized,
  };
}

/** The exact text the receipt file's HMAC covers (docs/receipt-codes.md §9). */
export function receiptFileMessage(f: {
  siteId: string;
  version: string;
  outcome: ReceiptOutcome;
  at: string;
  code: string;
  detailsSha256: string;
}): string {
  return fileMessage({
    site: canonicalSiteId(f.siteId),
    version: f.version,
    outcome: f.outcome,
    atText: f.at,
    code: f.code,
    detailsSha256: f.detailsSha256,
  });
}

function fileMessage(f: {
  site: string;
  version: string;
  outcome: string;
  atText: string;
  code: string;
  detailsSha256: string;
}): string {
  return `${RECEIPT_FILE_FORMAT}\nsite:${f.site}\nversion:${f.version}\noutcome:${f.outcome}\nat:${f.atText}\ncode:${f.code}\ndetails-sha256:${f.detailsSha256}\n`;
}

function parseIsoSeconds(s: string): Date | null {
  if (!ISO_SECONDS_RE.test(s)) return null;
  const d = new Date(s);
  // Rejects dates JavaScript would roll over (2025-02-30) so the MAC'd text has one meaning.
  return Number.isFinite(d.getTime()) && d.toISOString().replace(/\.000Z$/, 'Z') === s ? d : null;
}

/**
 * Where each top-level member's value lies in the text, so the details can be hashed exactly
 * as written. Call only on text JSON.parse accepted; returns null on a duplicate key (which
 * JSON.parse would silently resolve) or a non-object top level.
 */
function topLevelSpans(text: string): Map<string, { start: number; end: number }> | null {
  let i = 0;
  const skipWs = () => {
    while (i < text.length && JSON_WS.includes(text[i]!)) i++;
  };
  const skipString = () => {
    i++; // opening quote
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  const skipValue = () => {
    const first = text[i];
    if (first === '"') return skipString();
    if (first === '{' || first === '[') {
      let depth = 0;
      do {
        const ch = text[i];
        if (ch === '"') {
          skipString();
          continue;
        }
        if (ch === '{' || ch === '[') depth++;
        else if (ch === '}' || ch === ']') depth--;
        i++;
      } while (depth > 0);
      return;
    }
    while (i < text.length && !',}]'.includes(text[i]!) && !JSON_WS.includes(text[i]!)) i++;
  };

  const spans = new Map<string, { start: number; end: number }>();
  skipWs();
  if (text[i] !== '{') return null;
  i++;
  skipWs();
  if (text[i] === '}') return spans;
  for (;;) {
    skipWs();
    const keyStart = i;
    skipString();
    const key = JSON.parse(text.slice(keyStart, i)) as string;
    if (spans.has(key)) return null;
    skipWs();
    i++; // ':'
    skipWs();
    const start = i;
    skipValue();
    spans.set(key, { start, end: i });
    skipWs();
    if (text[i] === '}') return spans;
    i++; // ','
  }
}

function isJsonObjectText(s: string): boolean {
  try {
    return isRecord(JSON.parse(s));
  } catch {
    return false;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function sha256Hex(text: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(text))));
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
