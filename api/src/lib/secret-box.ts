import { fromBase64Url, toBase64Url } from './crypto.ts';

/**
 * Seals small secrets at rest (receipt keys, later registry credentials and signing keys) with
 * AES-256-GCM under the server's secret key. Format: `v1.<iv>.<ciphertext+tag>` (base64url).
 * The additional data binds a sealed value to its owner (e.g. the site id) so it cannot be moved.
 */
export interface SecretBox {
  seal(plain: Uint8Array, aad: string): Promise<string>;
  open(sealed: string, aad: string): Promise<Uint8Array<ArrayBuffer>>;
}

export async function createSecretBox(rawKey: Uint8Array): Promise<SecretBox> {
  if (rawKey.length !== 32) throw new Error('The secret key must be 32 bytes (OUTPOST_SECRET_KEY, base64).');
  const key = await crypto.subtle.importKey('raw', new Uint8Array(rawKey), 'AES-GCM', false, ['encrypt', 'decrypt']);
  const enc = new TextEncoder();
  return {
    async seal(plain, aad) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode(aad) }, key, new Uint8Array(plain));
      return `v1.${toBase64Url(iv)}.${toBase64Url(new Uint8Array(ct))}`;
    },
    async open(sealed, aad) {
      const [v, iv, ct] = sealed.split('.');
      if (v !== 'v1' || !iv || !ct) throw new Error('not a sealed value');
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: fromBase64Url(iv), additionalData: enc.encode(aad) }, key, fromBase64Url(ct));
      return new Uint8Array(plain);
    },
  };
}

export function parseSecretKey(b64: string): Uint8Array {
  const bytes = fromBase64Url(b64.trim().replace(/=+$/, ''));
  if (bytes.length !== 32) throw new Error('OUTPOST_SECRET_KEY must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`).');
  return bytes;
}
