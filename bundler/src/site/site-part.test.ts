import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateSigningKey, verifyManifest } from '../signing/signing.ts';
import { defaultReadme } from './readme.ts';
import { renderReleaseConf } from './env-file.ts';
import { buildSitePart, SitePartError, type BuildSitePartOptions } from './site-part.ts';
import { stitchPlan } from './stitch.ts';

// GNU tar, sh and openssl are the real consumers at the site; the shared objects are real files of
// random bytes standing in for images.tgz and the content zip (their contents do not matter here).
function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const dir = mkdtempSync(join(tmpdir(), 'outpost-site-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const key = generateSigningKey();
const images = randomBytes(1_234_567);
const content = randomBytes(98_765);
const imagesSha256 = sha256(images);
const contentSha256 = sha256(content);
const receiptScript = readFileSync(new URL('../../../edge-scripts/lib/receipt-code.sh', import.meta.url));

const compose = `name: outpost
services:
${['backend', 'frontend', 'worker', 'reports', 'proxy', 'db']
  .map(
    (name) => `  ${name}:
    image: registry.example.org/emr/${name}@sha256:${createHash('sha256').update(name).digest('hex')}
    restart: unless-stopped
    env_file: .env
    environment:
      SITE_CODE: \${SITE_CODE}
      DATABASE_URL: postgres://emr:\${DB_PASSWORD}@db:5432/emr
    volumes:
      - ${name}-data:/var/lib/${name}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://localhost:8080/health"]
      interval: 10s
      retries: 30
`,
  )
  .join('')}volumes:
${['backend', 'frontend', 'worker', 'reports', 'proxy', 'db'].map((name) => `  ${name}-data: {}\n`).join('')}`;

const env = {
  SITE_CODE: 'KSM-N',
  SITE_NAME: 'Kisumu North "Main" Clinic',
  DB_PASSWORD: 'p@ss word $HOME `id` \\n #not-a-comment',
  MULTILINE: 'line one\nline two',
  EMPTY: '',
};

const script = (name: string) =>
  `#!/bin/sh\nset -eu\necho "Step: ${name}"\n${'# plain words about this step\n'.repeat(40)}`;

function options(overrides: Partial<BuildSitePartOptions> = {}): BuildSitePartOptions {
  return {
    site: { id: 'site_01', code: 'KSM-N', name: 'Kisumu North Clinic' },
    release: { id: 'rel_24', version: '2.4.0' },
    fromRelease: { id: 'rel_23', version: '2.3.1' },
    createdAt: new Date('2026-11-21T10:00:00Z'),
    expiresAt: new Date('2027-02-19T10:00:00Z'),
    compose,
    env,
    contentPackage: { fileName: 'emr-content-2.4.0.zip', sha256: contentSha256, size: content.length },
    imagesArchive: { sha256: imagesSha256, size: images.length, delta: true },
    scripts: [
      ...['install', 'verify', 'backup', 'rollback', 'self-check', 'report'].map((name) => ({
        path: name,
        content: script(name),
      })),
      { path: 'lib/receipt-code.sh', content: new Uint8Array(receiptScript) },
    ],
    readme: defaultReadme({
      siteName: 'Kisumu North Clinic',
      version: '2.4.0',
      sizeBytes: images.length,
      estimatedMinutes: 20,
    }),
    signingKeyPem: key.privateKeyPem,
    keyFingerprint: key.fingerprint,
    ...overrides,
  };
}

function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, env: { ...process.env, TZ: 'UTC' } });
  return { status: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

describe('buildSitePart', () => {
  const part = buildSitePart(options());
  const plan = stitchPlan({ sitePartSize: part.tarSize, shared: part.shared });
  const bundle = join(dir, 'bundle.tar');
  const out = join(dir, 'out');
  const objects: Record<string, Uint8Array> = {
    [`${part.root}/images/images.tgz`]: images,
    [`${part.root}/content/emr-content-2.4.0.zip`]: content,
  };
  writeFileSync(bundle, '');
  for (const segment of plan.segments) {
    if (segment.kind === 'site') appendFileSync(bundle, part.tar);
    else if (segment.kind === 'object') appendFileSync(bundle, objects[segment.path]!);
    else appendFileSync(bundle, segment.bytes);
  }
  mkdirSync(out);
  const extracted = run('tar', ['-xf', bundle], out);
  const root = join(out, part.root);

  it('should stitch into one file of exactly the planned size that GNU tar extracts without complaint', () => {
    expect(statSync(bundle).size).toBe(plan.totalSize);
    expect(extracted.stderr).toBe('');
    expect(extracted.status).toBe(0);
    expect(part.root).toBe('outpost-KSM-N-2.4.0');
    const listing = run('tar', ['--full-time', '--numeric-owner', '-tvf', bundle], dir)
      .stdout.trim()
      .split('\n');
    for (const line of listing)
      expect(line, line).toMatch(/^\S+ 0\/0 +\d+ 2026-11-21 10:00:00 outpost-KSM-N-2\.4\.0\//);
    expect(listing.at(-1)).toMatch(/images\/images\.tgz$/);
    let offset = 0;
    for (const segment of plan.segments) {
      expect(segment.offset).toBe(offset);
      offset += segment.length;
    }
    expect(offset).toBe(plan.totalSize);
  });

  it('should list every file of the bundle in manifest.json with a size and sha256 that match what is extracted', () => {
    const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual(part.manifest);
    expect(manifest.format).toBe('outpost-bundle/1');
    expect(manifest.keyFingerprint).toBe(key.fingerprint);
    expect(manifest.fromRelease).toEqual({ id: 'rel_23', version: '2.3.1' });
    expect(manifest.images).toEqual({ path: 'images/images.tgz', delta: true });
    expect(manifest.created).toBe('2026-11-21T10:00:00.000Z');
    const paths = manifest.files.map((file: { path: string }) => file.path).sort();
    expect(paths).toEqual([
      'README.txt',
      'compose/.env',
      'compose/docker-compose.yml',
      'content/emr-content-2.4.0.zip',
      'images/images.tgz',
      'scripts/backup',
      'scripts/install',
      'scripts/lib/receipt-code.sh',
      'scripts/report',
      'scripts/rollback',
      'scripts/self-check',
      'scripts/verify',
    ]);
    for (const file of manifest.files) {
      const bytes = readFileSync(join(root, file.path));
      expect(bytes.length, file.path).toBe(file.size);
      expect(sha256(bytes), file.path).toBe(file.sha256);
    }
    // `sha256sum -c` at the site reads the same list.
    const sums = manifest.files
      .map((file: { path: string; sha256: string }) => `${file.sha256}  ${file.path}\n`)
      .join('');
    writeFileSync(join(dir, 'SHA256SUMS'), sums);
    expect(run('sha256sum', ['--quiet', '-c', join(dir, 'SHA256SUMS')], root).status).toBe(0);
  });

  it('should carry a manifest.sig that openssl dgst verifies over the extracted manifest.json', () => {
    writeFileSync(join(dir, 'public.pem'), key.publicKeyPem);
    const result = run(
      'openssl',
      ['dgst', '-sha256', '-verify', join(dir, 'public.pem'), '-signature', 'manifest.sig', 'manifest.json'],
      root,
    );
    expect(result.stdout.trim()).toBe('Verified OK');
    expect(
      verifyManifest(
        readFileSync(join(root, 'manifest.json')),
        readFileSync(join(root, 'manifest.sig')),
        key.publicKeyPem,
      ),
    ).toBe(true);
  });

  it('should make the scripts executable and keep the settings file private', () => {
    for (const name of [
      'install',
      'verify',
      'backup',
      'rollback',
      'self-check',
      'report',
      'lib/receipt-code.sh',
    ]) {
      expect(statSync(join(root, 'scripts', name)).mode & 0o777, name).toBe(0o755);
    }
    expect(statSync(join(root, 'compose/.env')).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, 'README.txt')).mode & 0o777).toBe(0o644);
    expect(run('sh', ['scripts/install'], root).stdout).toBe('Step: install\n');
  });

  it.each([['dash'], ['busybox', 'sh']])(
    'should write .env values that %s reads back unchanged, spaces, quotes, $ and newlines included',
    (...shell) => {
      for (const [name, value] of Object.entries(env)) {
        const result = run(
          shell[0]!,
          [...shell.slice(1), '-c', `. ./compose/.env; printf %s "$${name}"`],
          root,
        );
        expect(result.status, name).toBe(0);
        expect(result.stdout, name).toBe(value);
      }
    },
  );

  it('should keep the per-site part to kilobytes and without a trailer', () => {
    expect(part.tarSize).toBe(part.tar.length);
    expect(part.tarSize % 512).toBe(0);
    expect(part.tarSize).toBeLessThan(100 * 1024);
    expect(part.tar.subarray(part.tarSize - 1024).some((byte) => byte !== 0)).toBe(true);
    console.info(`per-site tar: ${part.tarSize} bytes; stitched bundle: ${plan.totalSize} bytes`);
  });

  it('should give the same bytes for the same inputs, apart from the randomised signature', () => {
    const again = buildSitePart(options());
    expect(again.manifestBytes).toEqual(part.manifestBytes);
    expect(again.tarSize).toBe(part.tarSize);
  });

  it('should build a full bundle without a content package or from-release', () => {
    const full = buildSitePart(
      options({
        fromRelease: null,
        contentPackage: null,
        imagesArchive: { sha256: sha256(images), size: images.length, delta: false },
      }),
    );
    expect(full.manifest.content).toBeNull();
    expect(full.manifest.fromRelease).toBeNull();
    expect(full.shared.map((object) => object.path)).toEqual(['outpost-KSM-N-2.4.0/images/images.tgz']);
  });

  it('should refuse inputs it cannot write safely', () => {
    expect(() => buildSitePart(options({ env: { NAME: "St. Mary's" } }))).toThrow(/single quote/);
    expect(() => buildSitePart(options({ env: { 'BAD-KEY': 'x' } }))).toThrow(/setting name/);
    expect(() => buildSitePart(options({ site: { id: 's', code: '../x', name: 'x' } }))).toThrow(
      SitePartError,
    );
    expect(() => buildSitePart(options({ scripts: [{ path: '../install', content: '' }] }))).toThrow(
      SitePartError,
    );
    expect(() => buildSitePart(options({ imagesArchive: { sha256: 'abc', size: 1, delta: false } }))).toThrow(
      /sha256/,
    );
    expect(() => buildSitePart(options({ expiresAt: new Date('2026-01-01T00:00:00Z') }))).toThrow(/expire/);
  });

  it("should write the site's secrets 0600 under site/, the release conf and key statements, all listed in the manifest", () => {
    const extra = buildSitePart(
      options({
        siteFiles: [
          { path: 'receipt-key', content: 'ab'.repeat(32) + '\n' },
          { path: 'enrolment-token', content: 'ope_x\n' },
        ],
        composeFiles: [
          {
            path: 'outpost.conf',
            content: renderReleaseConf({
              waitSeconds: 120,
              healthUrls: ['http://127.0.0.1:8080/health'],
              services: [{ name: 'db', backup: "pg_dump -U 'app' app", restore: 'psql -U app app' }],
            }),
          },
        ],
        keyFiles: [{ path: 'endorsed-by-0011223344556677.sig', content: new Uint8Array([1, 2, 3]) }],
      }),
    );
    const out = join(dir, 'extra');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'part.tar'), extra.tar);
    appendFileSync(join(out, 'part.tar'), new Uint8Array(1024));
    expect(run('tar', ['-xpf', 'part.tar'], out).status).toBe(0);
    const at = join(out, extra.root);
    expect(statSync(join(at, 'site/receipt-key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(at, 'site/enrolment-token')).mode & 0o777).toBe(0o600);
    expect(statSync(join(at, 'compose/outpost.conf')).mode & 0o777).toBe(0o644);
    const listed = extra.manifest.files.map((f) => f.path);
    expect(listed).toEqual(
      expect.arrayContaining([
        'site/receipt-key',
        'site/enrolment-token',
        'compose/outpost.conf',
        'keys/endorsed-by-0011223344556677.sig',
      ]),
    );
    // The installer sources outpost.conf with sh: a quote inside a command reads back as written.
    const r = spawnSync(
      'sh',
      [
        '-c',
        '. ./compose/outpost.conf && printf "%s|%s|%s|%s" "$OUTPOST_WAIT_SECONDS" "$OUTPOST_HEALTH_1" "$OUTPOST_SERVICE_1" "$OUTPOST_BACKUP_1"',
      ],
      { cwd: at, encoding: 'utf8' },
    );
    expect(r.stdout).toBe("120|http://127.0.0.1:8080/health|db|pg_dump -U 'app' app");
    expect(() => buildSitePart(options({ siteFiles: [{ path: '../x', content: 'x' }] }))).toThrow(
      SitePartError,
    );
  });

  it('should write the README in English, French and Portuguese, each telling the one command to run', () => {
    for (const language of ['en', 'fr', 'pt'] as const) {
      const text = defaultReadme({
        siteName: 'Clinique',
        version: '2.4.0',
        sizeBytes: 1_500_000_000,
        estimatedMinutes: 20,
        language,
      });
      expect(text).toContain('       sudo sh scripts/install\n');
      expect(text).toContain('2.4.0');
    }
    expect(
      defaultReadme({
        siteName: 'C',
        version: '1',
        sizeBytes: 1_500_000_000,
        estimatedMinutes: 20,
        language: 'fr',
      }),
    ).toContain('L’ensemble fait 1,5 Go.');
  });

  it('should build a thousand site parts quickly', () => {
    const started = performance.now();
    for (let i = 0; i < 1000; i++) {
      buildSitePart(options({ site: { id: `site_${i}`, code: `S${i}`, name: `Site ${i}` } }));
    }
    const seconds = (performance.now() - started) / 1000;
    console.info(`1000 site parts in ${seconds.toFixed(2)} s (${Math.round(1000 / seconds)} per second)`);
    expect(seconds).toBeLessThan(30); // a sanity bound only; `npm run bench` measures speed
  });
});
