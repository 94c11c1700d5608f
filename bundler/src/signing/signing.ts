import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';

/**
 * Bundle signatures: ECDSA P-256 with SHA-256, DER-encoded — what `openssl dgst -sha256 -sign`
 * writes and `-verify` reads. P-256 rather than Ed25519 because OpenSSL 1.1.1 (still on common
 * server distributions) cannot verify Ed25519 through `dgst`.
 */

export interface SigningKey {
  /** PKCS#8 PEM; keep it secret. */
  privateKeyPem: string;
  /** SPKI PEM; this is what the site verifies with (`public.pem`). */
  publicKeyPem: string;
  /** `SHA256:` + unpadded base64 of sha256 over the DER SPKI. */
  fingerprint: string;
}

/**
 * A new organisation signing key.
 *
 * @example
 * const { privateKeyPem, publicKeyPem, fingerprint } = generateSigningKey();
 */
export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem,
    fingerprint: fingerprintOf(publicKeyPem),
  };
}

/**
 * Fingerprint of a public key (a private key PEM gives the fingerprint of its public half), equal to
 * `openssl pkey -pubin -in public.pem -outform DER | openssl dgst -sha256 -binary | base64` without `=` padding.
 *
 * @example
 * fingerprintOf(publicKeyPem); // 'SHA256:q3Jd…'
 */
export function fingerprintOf(keyPem: string): string {
  const der = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}

/**
 * DER signature of `manifest.json`'s bytes, verifiable with
 * `openssl dgst -sha256 -verify public.pem -signature manifest.sig manifest.json`.
 *
 * @example
 * const signature = signManifest(manifestBytes, key.privateKeyPem);
 */
export function signManifest(bytes: Uint8Array, privateKeyPem: string): Uint8Array {
  const key = privateKey(privateKeyPem);
  return new Uint8Array(sign('sha256', bytes, { key, dsaEncoding: 'der' }));
}

// Parsing a PEM costs far more than signing; a wave signs hundreds of manifests with one key.
let cached: { pem: string; key: KeyObject } | undefined;

function privateKey(pem: string): KeyObject {
  if (cached?.pem === pem) return cached.key;
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('the signing key must be an ECDSA P-256 key');
  }
  cached = { pem, key };
  return key;
}

/**
 * Whether `signature` (DER) is a valid signature of `bytes` by the key; false for any malformed input.
 *
 * @example
 * if (!verifyManifest(manifestBytes, signature, publicKeyPem)) throw new Error('not signed by us');
 */
export function verifyManifest(bytes: Uint8Array, signature: Uint8Array, publicKeyPem: string): boolean {
  try {
    return verify('sha256', bytes, { key: createPublicKey(publicKeyPem), dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}
