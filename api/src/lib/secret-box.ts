import { fromBase64Url, toBase64Url } from './crypto.ts';

/**
 * Seals small secrets at rest (receipt keys, later registry credentials and signing keys) with
 * AES-256-GCM under the server's secret key. Format: `v1.<iv>.<ciphertext+tag>` (base64url).
 * The additional data binds a sealed value to its owner (e.g. the site id) so it cannot be moved.
 */
export interface SecretBox {
  seal(plain: Uint8Array, aad: string): Promise<string>;
  open(sealed: string, aad: string): Promise<Uint8Array<ArrayBuffer>>;
  /** HMAC-SHA256 of `message` (base64url) under a key derived from the secret key, e.g. for signed links. */
  mac(message: string): Promise<string>;
  /** Whether `mac` is `message`'s MAC (compared in constant time). */
  verifyMac(message: string, mac: string): Promise<boolean>;
}

export async function createSecretBox(rawKey: Uint8Array): Promise<SecretBox> {
  if (rawKey.length !== 32) throw new Error('The secret key must be 32 bytes (OUTPOST_SECRET_KEY, base64).');
  const key = await crypto.subtle.importKey('raw', new Uint8Array(rawKey), 'AES-GCM', false, [
    'encrypt',
    'decrypt',
  ]);
  const enc = new TextEncoder();
  // A key of its own for MACs, derived (HKDF) rather than the encryption key used twice.
  const hkdf = await crypto.subtle.importKey('raw', new Uint8Array(rawKey), 'HKDF', false, ['deriveKey']);
  const macKey = await crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: enc.encode('outpost mac v1') },
    hkdf,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign', 'verify'],
  );
  return {
    async mac(message) {
      return toBase64Url(new Uint8Array(await crypto.subtle.sign('HMAC', macKey, enc.encode(message))));
    },
    async verifyMac(message, mac) {
      let bytes: Uint8Array;
      try {
        bytes = fromBase64Url(mac);
      } catch {
        return false;
      }
      return crypto.subtle.verify('HMAC', macKey, new Uint8Array(bytes), enc.encode(message));
    },
    async seal(plain, aad) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: enc.encode(aad) },
        key,
        new Uint8Array(plain),
      );
      return `v1.${toBase64Url(iv)}.${toBase64Url(new Uint8Array(ct))}`;
    },
    async open(sealed, aad) {
      const [v, iv, ct] = sealed.split('.');
      if (v !== 'v1' || !iv || !ct) throw new Error('not a sealed value');
      const plain = await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: fromBase64Url(iv), additionalData: enc.encode(aad) },
        key,
        fromBase64Url(ct),
      );
      return new Uint8Array(plain);
    },
  };
}

export function parseSecretKey(b64: string): Uint8Array {
  const bytes = fromBase64Url(b64.trim().replace(/=+$/, ''));
  if (bytes.length !== 32)
    throw new Error('OUTPOST_SECRET_KEY must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`).');
  return bytes;
}
