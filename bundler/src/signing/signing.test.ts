import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fingerprintOf, generateSigningKey, signManifest, verifyManifest } from './signing.ts';

// The real openssl stands in for the site's: it is the verifier the bundle has to satisfy.
const dir = mkdtempSync(join(tmpdir(), 'outpost-signing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openssl(args: string[], input?: Uint8Array) {
  const result = spawnSync('openssl', args, { cwd: dir, input });
  return {
    status: result.status,
    stdout: result.stdout.toString(),
    stderr: result.stderr.toString(),
    bytes: result.stdout,
  };
}

function file(name: string, content: string | Uint8Array): string {
  writeFileSync(join(dir, name), content);
  return name;
}

const manifest = new TextEncoder().encode(
  JSON.stringify({ format: 'outpost-bundle/1', files: [{ path: 'a', size: 1 }] }, null, 2),
);

describe('manifest signatures', () => {
  const key = generateSigningKey();
  file('public.pem', key.publicKeyPem);

  it('should produce a signature that openssl dgst verifies', () => {
    file('manifest.json', manifest);
    file('manifest.sig', signManifest(manifest, key.privateKeyPem));
    const result = openssl([
      'dgst',
      '-sha256',
      '-verify',
      'public.pem',
      '-signature',
      'manifest.sig',
      'manifest.json',
    ]);
    expect(result.stdout.trim()).toBe('Verified OK');
    expect(result.status).toBe(0);
  });

  it('should accept a signature made by openssl dgst', () => {
    file('private.pem', key.privateKeyPem);
    file('manifest.json', manifest);
    const signed = openssl(['dgst', '-sha256', '-sign', 'private.pem', 'manifest.json']);
    expect(signed.status).toBe(0);
    expect(verifyManifest(manifest, new Uint8Array(signed.bytes), key.publicKeyPem)).toBe(true);
  });

  it('should fail verification in openssl and here when one byte of the manifest changes', () => {
    const signature = signManifest(manifest, key.privateKeyPem);
    const tampered = manifest.slice();
    tampered[10] = tampered[10]! ^ 0x01;
    file('tampered.json', tampered);
    file('manifest.sig', signature);
    const result = openssl([
      'dgst',
      '-sha256',
      '-verify',
      'public.pem',
      '-signature',
      'manifest.sig',
      'tampered.json',
    ]);
    expect(result.stdout.trim()).toBe('Verification failure');
    expect(result.status).not.toBe(0);
    expect(verifyManifest(tampered, signature, key.publicKeyPem)).toBe(false);
    expect(verifyManifest(manifest, signature, key.publicKeyPem)).toBe(true);
  });

  it('should return false for a malformed signature or key instead of throwing', () => {
    expect(verifyManifest(manifest, new Uint8Array([1, 2, 3]), key.publicKeyPem)).toBe(false);
    expect(verifyManifest(manifest, signManifest(manifest, key.privateKeyPem), 'not a key')).toBe(false);
  });

  it('should compute the same fingerprint as the openssl pipeline', () => {
    const der = openssl(['pkey', '-pubin', '-in', 'public.pem', '-outform', 'DER']).bytes;
    const digest = openssl(['dgst', '-sha256', '-binary'], der).bytes;
    const base64 = openssl(['base64'], digest).stdout.trim().replace(/=+$/, '');
    expect(key.fingerprint).toBe(`SHA256:${base64}`);
    expect(fingerprintOf(key.publicKeyPem)).toBe(key.fingerprint);
    expect(fingerprintOf(key.privateKeyPem)).toBe(key.fingerprint);
  });

  it('should write PKCS#8 and SPKI PEM that openssl reads', () => {
    expect(key.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(key.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    file('private.pem', key.privateKeyPem);
    const text = openssl(['pkey', '-in', 'private.pem', '-noout', '-text']).stdout;
    expect(text).toMatch(/prime256v1|P-256/);
  });

  it('should refuse to sign with a key that is not P-256', () => {
    const ed25519 = openssl(['genpkey', '-algorithm', 'ed25519']).stdout;
    expect(() => signManifest(manifest, ed25519)).toThrow(/P-256/);
  });

  it('should keep old bundles verifiable with the old key after a rotation, and only with it', () => {
    const oldKey = generateSigningKey();
    const newKey = generateSigningKey();
    expect(newKey.fingerprint).not.toBe(oldKey.fingerprint);
    const oldSignature = signManifest(manifest, oldKey.privateKeyPem);
    const newSignature = signManifest(manifest, newKey.privateKeyPem);
    expect(verifyManifest(manifest, oldSignature, oldKey.publicKeyPem)).toBe(true);
    expect(verifyManifest(manifest, oldSignature, newKey.publicKeyPem)).toBe(false);
    expect(verifyManifest(manifest, newSignature, newKey.publicKeyPem)).toBe(true);
    expect(verifyManifest(manifest, newSignature, oldKey.publicKeyPem)).toBe(false);

    file('old.pem', oldKey.publicKeyPem);
    file('new.pem', newKey.publicKeyPem);
    file('manifest.json', manifest);
    file('manifest.sig', oldSignature);
    const verify = (pem: string) =>
      openssl([
        'dgst',
        '-sha256',
        '-verify',
        pem,
        '-signature',
        'manifest.sig',
        'manifest.json',
      ]).stdout.trim();
    expect(verify('old.pem')).toBe('Verified OK');
    expect(verify('new.pem')).toBe('Verification failure');
  });
});
