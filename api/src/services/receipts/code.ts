// Receipt codes: the short code an install script prints and a coordinator types in from a
// phone. The scheme is specified in docs/receipt-codes.md and mirrored byte for byte by
// edge-scripts/lib/receipt-code.sh; docs/receipt-code-vectors.json pins both.
//
// WebCrypto only (crypto.subtle), so this runs on Node, Workers and — for checkReceiptCode,
// which is synchronous and needs no key — in the browser.

import { timingSafeEqual } from '../../lib/crypto.ts';

/** The 31 symbols, in value order: no 0/O, 1/I/L. 31 is prime, which the check character needs. */
export const RECEIPT_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';

/** Outcome names by the 3-bit value carried in the code; values 3–7 are reserved. */
export const RECEIPT_OUTCOMES = ['installed', 'failed', 'rolled_back'] as const;
export type ReceiptOutcome = (typeof RECEIPT_OUTCOMES)[number];

/** Minute 0 of the time field: 2024-01-01T00:00:00Z. The field is 24 bits of minutes (~31.9 years). */
export const RECEIPT_CODE_EPOCH_MS = Date.UTC(2024, 0, 1);
export const RECEIPT_CODE_MAX_MINUTE = 2 ** 24 - 1;

export const RECEIPT_CODE_FORMAT = 1;
/** Data symbols (74 bits fit in 31^15) plus one check symbol. */
export const RECEIPT_CODE_LENGTH = 16;
export const RECEIPT_CODE_MAC_BITS = 40;

const DATA_LENGTH = RECEIPT_CODE_LENGTH - 1;
const MAC_BYTES = RECEIPT_CODE_MAC_BITS / 8;
const MESSAGE_TAG = 'outpost-receipt-code/1';
const SITE_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// C0 controls and DEL: forbidding them keeps the line-based MAC message unambiguous and lets
// the shell script write the version into JSON by escaping only `"` and `\`.

const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const MAX_VERSION_BYTES = 128;
const enc = new TextEncoder();

export type CheckFailureReason = 'malformed' | 'checksum';
export type CheckReceiptCodeResult =
  { ok: true; normalized: string } | { ok: false; reason: CheckFailureReason; message: string };

export interface DecodedReceiptCode {
  /** The code as printed: upper case, `XXXX-XXXX-XXXX-XXXX`. Use it as the idempotency key. */
  normalized: string;
  format: 1;
  outcome: ReceiptOutcome;
  /** Start of the minute (UTC) the install finished, as carried in the code. */
  at: Date;
  /** Minutes since RECEIPT_CODE_EPOCH_MS. */
  minute: number;
  /** 0–31: top 5 bits of SHA-256(version); see receiptVersionHint. */
  versionHint: number;
}

export type DecodeReceiptCodeResult =
  ({ ok: true } & DecodedReceiptCode) | { ok: false; reason: CheckFailureReason; message: string };

export interface EncodeReceiptCodeInput {
  /** The site's 32-byte receipt key. */
  key: Uint8Array;
  siteId: string;
  version: string;
  outcome: ReceiptOutcome;
  at: Date;
}

export interface VerifyReceiptCodeInput {
  key: Uint8Array;
  siteId: string;
  /** As typed: any case, spaces or dashes anywhere. */
  code: string;
  /** Versions the code may be for: the organisation's releases plus what the site last reported. */
  candidateVersions: readonly string[];
}

export type VerifyReceiptCodeResult =
  | { ok: true; normalized: string; version: string; outcome: ReceiptOutcome; at: Date }
  | { ok: false; reason: 'malformed' | 'checksum' | 'no-match'; message: string };

export const RECEIPT_CODE_MESSAGES = {
  empty: 'Type the receipt code shown at the end of the install.',
  checksum: 'The code has a typing mistake. Check each letter and number again.',
  newer: 'This code was made by a newer install script than this server understands. Ask your support team.',
  invalid: 'This is not a receipt code. Check the code again.',
  noMatch:
    'This code does not match this site. Check that you chose the right site and typed the code from its last install.',
} as const;

const CONFUSABLE_MESSAGES: Record<string, string> = {
  '0': 'The code has no number 0 (zero). Check the code again.',
  O: 'The code has no letter O. Check the code again.',
  '1': 'The code has no number 1 (one). Check the code again.',
  I: 'The code has no letter I. Check the code again.',
  L: 'The code has no letter L. Check the code again.',
};

// Spaces of any kind and the dashes phones substitute for '-' ("smart punctuation").
const SEPARATORS_RE = /[\s\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d]+/g;
const VALUE_OF = new Map([...RECEIPT_CODE_ALPHABET].map((ch, i) => [ch, i]));

/**
 * Checks a typed code without the key: characters, length and the check character, then
 * that it decodes (format, outcome, range). Synchronous and pure, for the web page.
 */
export function checkReceiptCode(input: string): CheckReceiptCodeResult {
  const r = decodeReceiptCode(input);
  return r.ok ? { ok: true, normalized: r.normalized } : r;
}

/** Reads the fields carried in a code (no key needed; nothing here is authenticated yet). */
export function decodeReceiptCode(input: string): DecodeReceiptCodeResult {
  const symbols = normalizeSymbols(input);
  if (typeof symbols === 'string') return { ok: false, reason: 'malformed', message: symbols };
  if (checkSum(symbols) !== 0)
    return { ok: false, reason: 'checksum', message: RECEIPT_CODE_MESSAGES.checksum };

  let n = 0n;
  for (let i = 0; i < DATA_LENGTH; i++) n = n * 31n + BigInt(symbols[i]!);
  if (n >> 74n !== 0n) return { ok: false, reason: 'malformed', message: RECEIPT_CODE_MESSAGES.invalid };
  // 74 bits, most significant first: format 2 | outcome 3 | minute 24 | version hint 5 | MAC 40.
  const header = n >> BigInt(RECEIPT_CODE_MAC_BITS);
  const format = Number(header >> 32n);
  const outcomeValue = Number((header >> 29n) & 7n);
  const minute = Number((header >> 5n) & 0xffffffn);
  const versionHint = Number(header & 31n);
  if (format !== RECEIPT_CODE_FORMAT) {
    return {
      ok: false,
      reason: 'malformed',
      message: format === 0 ? RECEIPT_CODE_MESSAGES.invalid : RECEIPT_CODE_MESSAGES.newer,
    };
  }
  const outcome = RECEIPT_OUTCOMES[outcomeValue];
  if (!outcome) return { ok: false, reason: 'malformed', message: RECEIPT_CODE_MESSAGES.newer };
  return {
    ok: true,
    normalized: format4(symbols),
    format: 1,
    outcome,
    at: new Date(RECEIPT_CODE_EPOCH_MS + minute * 60_000),
    minute,
    versionHint,
  };
}

/** Makes the code an install script prints, e.g. `8AAZ-8XJM-ZZAE-WWJS`. */
export async function encodeReceiptCode({
  key,
  siteId,
  version,
  outcome,
  at,
}: EncodeReceiptCodeInput): Promise<string> {
  const site = canonicalSiteId(siteId);
  assertVersion(version);
  const outcomeValue = RECEIPT_OUTCOMES.indexOf(outcome);
  if (outcomeValue < 0) throw new TypeError(`Unknown receipt outcome: ${String(outcome)}`);
  const minute = receiptMinute(at);
  const mac = await macBytes(key, site, version, outcomeValue, minute);
  const header =
    ((RECEIPT_CODE_FORMAT * 8 + outcomeValue) * 2 ** 24 + minute) * 32 + (await receiptVersionHint(version));
  let n = (BigInt(header) << BigInt(RECEIPT_CODE_MAC_BITS)) | bytesToBigInt(mac);
  const symbols = new Array<number>(RECEIPT_CODE_LENGTH);
  for (let i = DATA_LENGTH - 1; i >= 0; i--) {
    symbols[i] = Number(n % 31n);
    n /= 31n;
  }
  symbols[DATA_LENGTH] = 0;
  // Weight of the check position is 16 and 16⁻¹ ≡ 2 (mod 31), so c = −2·S mod 31.
  symbols[DATA_LENGTH] = (31 - ((2 * checkSum(symbols)) % 31)) % 31;
  return format4(symbols);
}

/**
 * Verifies a typed code against the site's key, trying each candidate version whose hint
 * matches. Failures carry a reason and a plain-words message for the coordinator.
 */
export async function verifyReceiptCode({
  key,
  siteId,
  code,
  candidateVersions,
}: VerifyReceiptCodeInput): Promise<VerifyReceiptCodeResult> {
  const site = canonicalSiteId(siteId);
  assertKey(key);
  const decoded = decodeReceiptCode(code);
  if (!decoded.ok) return decoded;

  const n = codeValue(decoded.normalized);
  const carried = bigIntToBytes(n & ((1n << BigInt(RECEIPT_CODE_MAC_BITS)) - 1n), MAC_BYTES);
  const outcomeValue = RECEIPT_OUTCOMES.indexOf(decoded.outcome);
  let match: string | undefined;
  // Every hint-matching candidate is tried (no early exit), so timing says nothing about
  // which one matched; the first in the caller's order wins the (≈2⁻⁴⁰) tie.
  for (const version of new Set(candidateVersions)) {
    if (!isValidVersion(version)) continue;
    if ((await receiptVersionHint(version)) !== decoded.versionHint) continue;
    const expected = await macBytes(key, site, version, outcomeValue, decoded.minute);
    if (timingSafeEqual(expected, carried) && match === undefined) match = version;
  }
  if (match === undefined) return { ok: false, reason: 'no-match', message: RECEIPT_CODE_MESSAGES.noMatch };
  return {
    ok: true,
    normalized: decoded.normalized,
    version: match,
    outcome: decoded.outcome,
    at: decoded.at,
  };
}

/** The 5-bit version hint carried in the code: the top 5 bits of SHA-256(UTF-8 version). */
export async function receiptVersionHint(version: string): Promise<number> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(version)));
  return digest[0]! >> 3;
}

/** The exact bytes the code's MAC covers (see docs/receipt-codes.md §3). */
export function receiptCodeMessage(
  siteId: string,
  version: string,
  outcome: ReceiptOutcome,
  minute: number,
): string {
  return codeMessage(canonicalSiteId(siteId), version, RECEIPT_OUTCOMES.indexOf(outcome), minute);
}

/** Minutes since the code epoch, rounded down; throws if `at` is outside the 24-bit range. */
export function receiptMinute(at: Date): number {
  const ms = at.getTime();
  const minute = Math.floor((ms - RECEIPT_CODE_EPOCH_MS) / 60_000);
  if (!Number.isFinite(ms) || minute < 0 || minute > RECEIPT_CODE_MAX_MINUTE) {
    throw new RangeError(
      `Receipt time out of range (2024-01-01T00:00Z to 2055-11-24T20:15:59Z): ${Number.isFinite(ms) ? at.toISOString() : 'invalid date'}`,
    );
  }
  return minute;
}

/** Parses a 64-hex-digit key (the form the bundle and the shell script carry). */
export function keyFromHex(hex: string): Uint8Array<ArrayBuffer> {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new TypeError('A receipt key is 64 hex digits (32 bytes).');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function isValidVersion(version: string): boolean {
  if (typeof version !== 'string' || version.length === 0 || CONTROL_RE.test(version)) return false;
  if (LONE_SURROGATE_RE.test(version)) return false;
  return enc.encode(version).length <= MAX_VERSION_BYTES;
}

export function assertVersion(version: string): void {
  if (!isValidVersion(version)) {
    throw new TypeError('A release version is 1–128 bytes of UTF-8 text without control characters.');
  }
}

export function canonicalSiteId(siteId: string): string {
  const s = typeof siteId === 'string' ? siteId.toLowerCase() : '';
  if (!SITE_ID_RE.test(s)) throw new TypeError(`A site id is a UUID: ${String(siteId)}`);
  return s;
}

export function assertKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new TypeError('A receipt key is 32 bytes.');
}

export async function hmacSha256(key: Uint8Array, message: string): Promise<Uint8Array> {
  assertKey(key);
  const k = await crypto.subtle.importKey(
    'raw',
    new Uint8Array(key),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, enc.encode(message)));
}

function codeMessage(site: string, version: string, outcomeValue: number, minute: number): string {
  return `${MESSAGE_TAG}\nsite:${site}\nversion:${version}\noutcome:${outcomeValue}\nminute:${minute}\n`;
}

async function macBytes(
  key: Uint8Array,
  site: string,
  version: string,
  outcomeValue: number,
  minute: number,
) {
  return (await hmacSha256(key, codeMessage(site, version, outcomeValue, minute))).subarray(0, MAC_BYTES);
}

/** Symbol values of a typed code, or a plain-words message saying what is wrong with it. */
function normalizeSymbols(input: string): number[] | string {
  const s = String(input ?? '')
    .normalize('NFKC')
    .replace(SEPARATORS_RE, '')
    .toUpperCase();
  if (s.length === 0) return RECEIPT_CODE_MESSAGES.empty;
  for (const ch of s) {
    const confusable = CONFUSABLE_MESSAGES[ch];
    if (confusable) return confusable;
  }
  const symbols: number[] = [];
  for (const ch of s) {
    const v = VALUE_OF.get(ch);
    if (v === undefined) return `The code has only letters and numbers. Remove the “${ch}”.`;
    symbols.push(v);
  }
  if (symbols.length !== RECEIPT_CODE_LENGTH) {
    const which = symbols.length < RECEIPT_CODE_LENGTH ? 'too short' : 'too long';
    return `The code is ${which}. A receipt code has ${RECEIPT_CODE_LENGTH} letters and numbers, and you typed ${symbols.length}. Check the code again.`;
  }
  return symbols;
}

/** Σ position·value (mod 31), positions 1…16; a valid code sums to 0. */
function checkSum(symbols: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < symbols.length; i++) s += (i + 1) * symbols[i]!;
  return s % 31;
}

function format4(symbols: readonly number[]): string {
  const s = symbols.map((v) => RECEIPT_CODE_ALPHABET[v]).join('');
  return `${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}`;
}

function codeValue(normalized: string): bigint {
  let n = 0n;
  const s = normalized.replace(/-/g, '');
  for (let i = 0; i < DATA_LENGTH; i++) n = n * 31n + BigInt(VALUE_OF.get(s[i]!)!);
  return n;
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function bigIntToBytes(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}
