// WebCrypto only, so the same code runs on Node and on Cloudflare Workers.
const enc = new TextEncoder();

export function toBase64Url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64Url(s: string): Uint8Array<ArrayBuffer> {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

export function randomToken(prefix = '', bytes = 32): string {
  return prefix + toBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

// Where node:crypto is at hand (Node, Workers with nodejs_compat), hashing a token is a synchronous
// microsecond; WebCrypto's digest goes through the thread pool and a promise, which at thousands
// of device check-ins a second was a seventh of the API's CPU.
const nodeCrypto = (
  globalThis as { process?: { getBuiltinModule?(id: string): unknown } }
).process?.getBuiltinModule?.('node:crypto') as typeof import('node:crypto') | undefined;

export async function sha256Hex(value: string): Promise<string> {
  if (nodeCrypto) return nodeCrypto.createHash('sha256').update(value).digest('hex');
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(value)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Equal bytes, in a time that depends only on the lengths: every byte is compared whatever the
 * first difference, so a MAC, a password hash or a token cannot be guessed byte by byte from how
 * long a refusal takes. The one such compare in the code base (WebCrypto has none; Node's
 * `crypto.timingSafeEqual` is not on Workers or in the browser).
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function timingSafeEqualString(a: string, b: string): boolean {
  return timingSafeEqual(enc.encode(a), enc.encode(b));
}
