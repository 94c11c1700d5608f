import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey } from '../signing/signing.ts';
import { freePort } from '../test-support/registry.ts';
import { buildSitePart, type BuildSitePartOptions } from '../site/site-part.ts';
import { stitchPlan } from '../site/stitch.ts';
import { main } from './main.ts';
import { verifyBundle } from './verify.ts';

// Bundles made by the real buildSitePart and laid out by stitchPlan, as the API's download sends
// them; extracted with GNU tar, as a site does. The images archive and content package are files of
// random bytes: their contents do not matter to verification, only their sizes and checksums.
const run = promisify(execFile);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let dir: string;
const key = generateSigningKey();
const other = generateSigningKey();
const images = randomBytes(300_001);
const content = randomBytes(40_000);

function partOptions(overrides: Partial<BuildSitePartOptions> = {}): BuildSitePartOptions {
  const createdAt = new Date();
  return {
    site: { id: 'site-1', code: 'KE-001', name: 'Kibera Clinic' },
    release: { id: 'rel-1', version: '2.4.0' },
    createdAt,
    expiresAt: new Date(createdAt.getTime() + 30 * 86_400_000),
    compose: 'services:\n  app:\n    image: registry.example.org/emr/app@sha256:' + '1'.repeat(64) + '\n',
    env: { OUTPOST_SITE_CODE: 'KE-001' },
    contentPackage: { fileName: 'forms-2.4.zip', sha256: sha256(content), size: content.length },
    imagesArchive: { sha256: sha256(images), size: images.length, delta: false },
    scripts: [
      { path: 'install', content: '#!/bin/sh\nset -eu\necho install\n' },
      { path: 'lib/receipt-code.sh', content: '#!/bin/sh\n' },
    ],
    readme: 'Update\n',
    signingKeyPem: key.privateKeyPem,
    keyFingerprint: key.fingerprint,
    publicKeyPem: key.publicKeyPem,
    ...overrides,
  };
}

/** The one-file bundle, byte for byte as the API stitches it. */
async function writeBundle(file: string, overrides: Partial<BuildSitePartOptions> = {}) {
  const part = buildSitePart(partOptions(overrides));
  const plan = stitchPlan({ sitePartSize: part.tarSize, shared: part.shared });
  const bodies = [content, images];
  const chunks = plan.segments.map((s) =>
    s.kind === 'site' ? part.tar : s.kind === 'object' ? bodies[s.index]! : s.bytes,
  );
  await fs.writeFile(file, Buffer.concat(chunks));
  return part;
}

async function cli(...args: string[]) {
  const out: string[] = [];
  const code = await main(args, { out: (l) => out.push(l), err: (l) => out.push(l), env: {} });
  return { code, text: out.join('\n') };
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-verify-'));
  await fs.writeFile(path.join(dir, 'public.pem'), key.publicKeyPem);
  await fs.writeFile(path.join(dir, 'other.pem'), other.publicKeyPem);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('bundle verify: a bundle tar', () => {
  it('should accept a good bundle with the given key, the bundled key and a matching fingerprint', async () => {
    const file = path.join(dir, 'good.tar');
    const part = await writeBundle(file);
    const withKey = await verifyBundle(file, { publicKeyPem: key.publicKeyPem });
    expect(withKey.problems).toEqual([]);
    expect(withKey).toMatchObject({
      ok: true,
      root: part.root,
      keySource: 'given',
      keyFingerprint: key.fingerprint,
      bytesChecked: expect.any(Number),
    });
    expect(withKey.bytesChecked).toBeGreaterThan(images.length + content.length);

    const bundled = await verifyBundle(file, { trustBundleKey: true });
    expect(bundled).toMatchObject({ ok: true, keySource: 'bundled' });
    expect(bundled.notes.join(' ')).toMatch(/Compare it with the fingerprint shown in Outpost → Settings/);

    expect(await cli('bundle', 'verify', file, '--fingerprint', key.fingerprint)).toMatchObject({
      code: 0,
      text: expect.stringContaining('OK: signature valid'),
    });
    expect(await cli('bundle', 'verify', file, '--key', path.join(dir, 'public.pem'))).toMatchObject({
      code: 0,
    });
  });

  it('should fail when one byte of the images archive is changed', async () => {
    const file = path.join(dir, 'tampered.tar');
    await writeBundle(file);
    const bytes = await fs.readFile(file);
    const stat = await fs.stat(file);
    // The images archive is the last object: change a byte in the middle of it.
    const at = stat.size - 1024 - Math.floor(images.length / 2);
    bytes[at] = bytes[at]! ^ 0xff;
    await fs.writeFile(file, bytes);
    const result = await verifyBundle(file, { publicKeyPem: key.publicKeyPem });
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      'images/images.tgz does not match its checksum: it was changed or damaged.',
    ]);
    const { code, text } = await cli('bundle', 'verify', file, '--key', path.join(dir, 'public.pem'));
    expect(code).toBe(1);
    expect(text).toContain('NOT OK: 1 problem');
  });

  it('should fail when the manifest is changed (the signature no longer matches)', async () => {
    const file = path.join(dir, 'manifest-changed.tar');
    await writeBundle(file);
    const bytes = await fs.readFile(file);
    const at = bytes.indexOf(Buffer.from('"Kibera Clinic"'));
    bytes.write('"Kibera Clinik"', at);
    await fs.writeFile(file, bytes);
    const result = await verifyBundle(file, { publicKeyPem: key.publicKeyPem });
    expect(
      result.problems.some((p) => p.startsWith('The signature (manifest.sig) does not match manifest.json')),
    ).toBe(true);
  });

  it('should fail with the wrong key, and with the bundled key when the fingerprint is not the expected one', async () => {
    const file = path.join(dir, 'good2.tar');
    await writeBundle(file);
    const wrong = await verifyBundle(file, { publicKeyPem: other.publicKeyPem });
    expect(wrong.ok).toBe(false);
    expect(wrong.problems.join('\n')).toMatch(/signature .* does not match/);
    const { code, text } = await cli('bundle', 'verify', file, '--fingerprint', other.fingerprint);
    expect(code).toBe(1);
    expect(text).toContain(`The bundle's key has fingerprint ${key.fingerprint}, not ${other.fingerprint}`);
  });

  it('should fail when a bundle signed by another key carries that key (a swapped key is caught by the fingerprint)', async () => {
    const file = path.join(dir, 'swapped.tar');
    await writeBundle(file, {
      signingKeyPem: other.privateKeyPem,
      keyFingerprint: other.fingerprint,
      publicKeyPem: other.publicKeyPem,
    });
    expect((await verifyBundle(file, { trustBundleKey: true })).ok).toBe(true); // self-consistent: only the fingerprint tells
    expect((await verifyBundle(file, { fingerprint: key.fingerprint })).ok).toBe(false);
    expect((await verifyBundle(file, { publicKeyPem: key.publicKeyPem })).ok).toBe(false);
  });

  it('should fail without --key or --fingerprint unless told --trust-bundle-key (a bundle re-signed by anyone is self-consistent)', async () => {
    const file = path.join(dir, 'resigned.tar');
    await writeBundle(file, {
      signingKeyPem: other.privateKeyPem,
      keyFingerprint: other.fingerprint,
      publicKeyPem: other.publicKeyPem,
    });
    const bare = await verifyBundle(file);
    expect(bare.ok).toBe(false);
    expect(bare.problems.join('\n')).toMatch(/No key to check the signature against/);
    const refused = await cli('bundle', 'verify', file);
    expect(refused.code).toBe(1);
    expect(refused.text).toContain('--trust-bundle-key');
    const trusting = await cli('bundle', 'verify', file, '--trust-bundle-key');
    expect(trusting.code).toBe(0);
    expect(trusting.text).toContain(`Compare it with the fingerprint shown in Outpost`);
  });

  it('should fail when the bundle has expired', async () => {
    const file = path.join(dir, 'expired.tar');
    const createdAt = new Date(Date.now() - 10 * 86_400_000);
    await writeBundle(file, { createdAt, expiresAt: new Date(Date.now() - 86_400_000) });
    const result = await verifyBundle(file, { publicKeyPem: key.publicKeyPem });
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatch(/^The bundle expired on /);
  });

  it('should fail when the download is cut short', async () => {
    const file = path.join(dir, 'short.tar');
    await writeBundle(file);
    const bytes = await fs.readFile(file);
    await fs.writeFile(file, bytes.subarray(0, bytes.length - 100_000));
    const result = await verifyBundle(file, { publicKeyPem: key.publicKeyPem });
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toMatch(/ends too early|images\/images.tgz/);
  });
});

describe('bundle verify: a folder', () => {
  async function extracted(name: string) {
    const file = path.join(dir, `${name}.tar`);
    const part = await writeBundle(file);
    const to = path.join(dir, name);
    await fs.mkdir(to);
    await run('tar', ['-xf', file, '-C', to]);
    return { folder: path.join(to, part.root), parent: to, part };
  }

  it('should accept an extracted bundle, given as its folder or the folder around it', async () => {
    const { folder, parent } = await extracted('x1');
    expect((await verifyBundle(folder, { publicKeyPem: key.publicKeyPem })).problems).toEqual([]);
    expect((await verifyBundle(parent, { publicKeyPem: key.publicKeyPem })).ok).toBe(true);
  });

  it('should find the shared objects in ../shared/sha256/ (the USB export layout) and check them', async () => {
    const { folder, parent, part } = await extracted('usb');
    // DIR/<site-code>/outpost-…/ with DIR/shared/sha256/<hex>.
    const top = path.join(dir, 'usb-top');
    await fs.mkdir(path.join(top, 'shared', 'sha256'), { recursive: true });
    await fs.rename(parent, path.join(top, 'KE-001'));
    const site = path.join(top, 'KE-001', part.root);
    for (const p of ['images/images.tgz', 'content/forms-2.4.zip']) {
      const sha = part.manifest.files.find((f) => f.path === p)!.sha256;
      await fs.rename(path.join(site, p), path.join(top, 'shared', 'sha256', sha));
    }
    expect((await verifyBundle(site, { publicKeyPem: key.publicKeyPem })).problems).toEqual([]);
    // A damaged shared object is reported with where it was found.
    const sha = part.manifest.files.find((f) => f.path === 'images/images.tgz')!.sha256;
    const shared = path.join(top, 'shared', 'sha256', sha);
    const bytes = await fs.readFile(shared);
    bytes[10] = bytes[10]! ^ 1;
    await fs.writeFile(shared, bytes);
    const bad = await verifyBundle(site, { publicKeyPem: key.publicKeyPem });
    expect(bad.problems).toEqual([
      `images/images.tgz (found at ${shared}) does not match its checksum: it was changed or damaged.`,
    ]);
    void folder;
  });

  it('should list a missing file, an extra file, a changed script and a symlink, each plainly', async () => {
    const { folder } = await extracted('x2');
    await fs.rm(path.join(folder, 'content', 'forms-2.4.zip'));
    await fs.writeFile(path.join(folder, 'scripts', 'extra.sh'), 'echo hi\n');
    await fs.appendFile(path.join(folder, 'scripts', 'install'), 'rm -rf /\n');
    await fs.symlink('/etc/passwd', path.join(folder, 'keys', 'link'));
    const result = await verifyBundle(folder, { publicKeyPem: key.publicKeyPem });
    expect(result.problems).toHaveLength(4);
    expect(result.problems).toEqual(
      expect.arrayContaining([
        'content/forms-2.4.zip is missing.',
        'keys/link is in the bundle but not in the manifest (and is not a plain file).',
        'scripts/extra.sh is in the bundle but not in the manifest.',
        expect.stringMatching(/^scripts\/install has \d+ bytes; the manifest says \d+\.$/),
      ]),
    );
  });

  it('should refuse a renamed bundle folder and an unknown format', async () => {
    const { folder, parent } = await extracted('x3');
    const renamed = path.join(parent, 'outpost-KE-002-2.4.0');
    await fs.rename(folder, renamed);
    expect((await verifyBundle(renamed, { publicKeyPem: key.publicKeyPem })).problems).toEqual([
      'The bundle folder is called "outpost-KE-002-2.4.0"; for this manifest it must be "outpost-KE-001-2.4.0".',
    ]);
    const manifest = JSON.parse(await fs.readFile(path.join(renamed, 'manifest.json'), 'utf8'));
    await fs.writeFile(
      path.join(renamed, 'manifest.json'),
      JSON.stringify({ ...manifest, format: 'outpost-bundle/2' }),
    );
    expect((await verifyBundle(renamed, { publicKeyPem: key.publicKeyPem })).problems).toEqual([
      'manifest.json says format "outpost-bundle/2"; this tool knows "outpost-bundle/1".',
    ]);
  });
});

describe('command line', () => {
  it('should answer a wrong command line with exit code 2 and one line', async () => {
    expect(await cli('bundle', 'verify')).toMatchObject({
      code: 2,
      text: 'outpost: bundle verify needs one bundle: a .tar file or a bundle folder.',
    });
    expect(await cli('bundle', 'frobnicate')).toMatchObject({ code: 2 });
    expect(await cli('export', '--release', '1.0.0', '--to', dir, '--sites', 'A')).toMatchObject({
      code: 2,
      text: expect.stringContaining('OUTPOST_URL'),
    });
    expect((await cli('bundle', 'verify', 'x', '--nope')).code).toBe(2);
  });

  it('should say plainly when the server cannot be reached', async () => {
    const port = await freePort(); // nothing listens there
    const errors: string[] = [];
    const { code, text } = await main(['export', '--release', '1.0.0', '--to', dir, '--sites', 'A'], {
      out: () => {},
      err: (l) => {
        errors.push(l);
      },
      env: { OUTPOST_URL: `http://127.0.0.1:${port}`, OUTPOST_TOKEN: 'op_secret' },
    }).then((c) => ({ code: c, text: errors.join('\n') }));
    expect(code).toBe(1);
    expect(text).toMatch(
      /^outpost: Cannot reach the Outpost server at http:\/\/127\.0\.0\.1:\d+: connection refused/,
    );
    expect(text).not.toContain('op_secret');
    expect(text.split('\n')).toHaveLength(1);
  });
});
