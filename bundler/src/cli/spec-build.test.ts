import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type TestRegistry } from '../test-support/registry.ts';
import { testAllowInsecure } from '../test-support/allow-list.ts';
import { buildTestImage, type TestImage } from '../test-support/image.ts';
import { pushImage } from '../test-support/skopeo.ts';
import { runProcess } from '../test-support/process.ts';
import { podmanLoad } from '../test-support/podman.ts';

// `outpost bundle build --spec` as a person runs it (the bin, in a child process), against a real
// registry on loopback with Basic auth; the result is checked by `outpost bundle verify`, GNU tar
// and podman, which loads the images the way a site's docker would.
const run = promisify(execFile);
const BIN = path.resolve(import.meta.dirname, '../../bin/outpost.mjs');
const LOGIN = { username: 'ministry', password: 'registry-pass-1' };

let registry: TestRegistry;
let work: string;
let backend: TestImage;
let frontend: TestImage;

// The registries this file started are allowed through the setting production reads.
const outpost = (args: string[], env: Record<string, string> = {}) =>
  runProcess(process.execPath, [BIN, ...args], {
    OUTPOST_REGISTRY_ALLOW_INSECURE: [...testAllowInsecure].join(','),
    ...env,
  });

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-cli-spec-'));
  registry = await startRegistry({ htpasswd: LOGIN });
  const layout = path.join(work, 'layout');
  const base = { files: { 'etc/os-release': 'NAME=outpost-test\n' } };
  backend = await buildTestImage({
    dir: layout,
    tag: 'backend',
    layers: [base, { files: { 'app/backend.txt': 'backend 1.0\n' } }],
  });
  frontend = await buildTestImage({
    dir: layout,
    tag: 'frontend',
    layers: [base, { files: { 'www/index.html': '<h1>EMR</h1>\n' } }],
  });
  await pushImage(layout, 'backend', `${registry.host}/emr/backend:1.0`, LOGIN);
  await pushImage(layout, 'frontend', `${registry.host}/emr/frontend:1.0`, LOGIN);

  await fs.writeFile(
    path.join(work, 'docker-compose.yml'),
    [
      'services:',
      '  backend:',
      '    image: {{ image.backend }}',
      '    environment:',
      '      SITE_NAME: {{ site.name }}',
      '      DB_PASSWORD: ${DB_PASSWORD}',
      '  frontend:',
      '    image: {{ image.frontend }}',
      '    ports:',
      '      - "80:80"',
      '',
    ].join('\n'),
  );
  await fs.writeFile(
    path.join(work, 'forms.zip'),
    'PK\u0003\u0004 not really a zip, but bytes all the same\n',
  );
  await fs.writeFile(
    path.join(work, 'spec.json'),
    JSON.stringify(
      {
        site: { code: 'KE-001', name: 'Kibera: "Olympic" #2' },
        release: { version: '1.0.0' },
        images: [
          { name: 'backend', reference: `${registry.host}/emr/backend:1.0` },
          { name: 'frontend', reference: `${registry.host}/emr/frontend:1.0` },
        ],
        registries: { [registry.host]: { usernameEnv: 'REG_USER', passwordEnv: 'REG_PASS' } },
        compose: 'docker-compose.yml',
        contentPackage: 'forms.zip',
        env: { TZ: 'Africa/Nairobi' },
        expiresInDays: 30,
      },
      null,
      2,
    ),
  );
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('outpost bundle build --spec', () => {
  const out = () => path.join(work, 'out', 'outpost-KE-001-1.0.0.tar');
  const keys = () => path.join(work, 'keys');

  it('should pull the images from the registry and write a signed one-file bundle', async () => {
    const r = await outpost(
      ['bundle', 'build', '--spec', path.join(work, 'spec.json'), '--out', out(), '--generate-key', keys()],
      { REG_USER: LOGIN.username, REG_PASS: LOGIN.password },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Wrote .*outpost-KE-001-1\.0\.0\.tar/);
    expect(r.stdout).not.toContain(LOGIN.password);
    expect((await fs.stat(path.join(keys(), 'signing-key.pem'))).mode & 0o777).toBe(0o600);
    // Nothing half-written is left beside it.
    expect((await fs.readdir(path.dirname(out()))).sort()).toEqual(['outpost-KE-001-1.0.0.tar']);
  });

  it('should verify with the generated public key, and not with another', async () => {
    const ok = await outpost(['bundle', 'verify', out(), '--key', path.join(keys(), 'public.pem')]);
    expect(ok.stdout).toContain('OK: signature valid');
    expect(ok.code).toBe(0);
    const other = path.join(work, 'other');
    await fs.mkdir(other);
    const { generateSigningKey } = await import('../signing/signing.ts');
    await fs.writeFile(path.join(other, 'public.pem'), generateSigningKey().publicKeyPem);
    const bad = await outpost(['bundle', 'verify', out(), '--key', path.join(other, 'public.pem')]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/does not match manifest\.json/);
  });

  it('should hold the rendered compose file, the .env, the edge scripts and the content package', async () => {
    const x = path.join(work, 'x');
    await fs.mkdir(x);
    await run('tar', ['-xf', out(), '-C', x]);
    const root = path.join(x, 'outpost-KE-001-1.0.0');
    const compose = await fs.readFile(path.join(root, 'compose/docker-compose.yml'), 'utf8');
    expect(compose).toContain(`image: ${registry.host}/emr/backend@${backend.digest}`);
    expect(compose).toContain(`image: ${registry.host}/emr/frontend@${frontend.digest}`);
    expect(compose).toContain('SITE_NAME: \'Kibera: "Olympic" #2\'');
    expect(compose).toContain('${DB_PASSWORD}');
    expect(await fs.readFile(path.join(root, 'compose/.env'), 'utf8')).toContain('TZ=');
    expect(await fs.readFile(path.join(root, 'scripts/lib/receipt-code.sh'), 'utf8')).toBe(
      await fs.readFile(
        path.resolve(import.meta.dirname, '../../../edge-scripts/lib/receipt-code.sh'),
        'utf8',
      ),
    );
    expect(await fs.readFile(path.join(root, 'content/forms.zip'), 'utf8')).toContain('not really a zip');
    const manifest = JSON.parse(await fs.readFile(path.join(root, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({
      format: 'outpost-bundle/1',
      site: { code: 'KE-001' },
      release: { version: '1.0.0' },
      images: { path: 'images/images.tgz', delta: false },
    });
    // The extracted folder verifies too, and openssl agrees about the signature.
    expect((await outpost(['bundle', 'verify', root, '--key', path.join(keys(), 'public.pem')])).code).toBe(
      0,
    );
    await run('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      path.join(keys(), 'public.pem'),
      '-signature',
      path.join(root, 'manifest.sig'),
      path.join(root, 'manifest.json'),
    ]);
  });

  it('should carry images that podman loads, by their tagged names, with the pulled config digests', async () => {
    const tgz = path.join(work, 'x', 'outpost-KE-001-1.0.0', 'images', 'images.tgz');
    const loaded = await podmanLoad(tgz, path.join(work, 'podman'));
    expect(loaded.get(`${registry.host}/emr/backend:1.0`)).toBe(backend.config.digest.slice(7));
    expect(loaded.get(`${registry.host}/emr/frontend:1.0`)).toBe(frontend.config.digest.slice(7));
  }, 60_000);

  it('should say plainly what is wrong: missing credentials, a refused login, an existing key', async () => {
    const missing = await outpost([
      'bundle',
      'build',
      '--spec',
      path.join(work, 'spec.json'),
      '--out',
      path.join(work, 'o2.tar'),
      '--generate-key',
      path.join(work, 'k2'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe(
      `outpost: The spec reads the ${registry.host} credentials from $REG_USER, which is not set.`,
    );
    const refused = await outpost(
      [
        'bundle',
        'build',
        '--spec',
        path.join(work, 'spec.json'),
        '--out',
        path.join(work, 'o3.tar'),
        '--generate-key',
        path.join(work, 'k3'),
      ],
      { REG_USER: LOGIN.username, REG_PASS: 'wrong-password' },
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).not.toContain('wrong-password');
    expect(refused.stderr).toContain(`${registry.host}/emr/backend:1.0: `);
    // A failed build leaves no key behind (a second try may use the same folder).
    await expect(fs.stat(path.join(work, 'k3'))).rejects.toThrow();
    const again = await outpost(
      [
        'bundle',
        'build',
        '--spec',
        path.join(work, 'spec.json'),
        '--out',
        path.join(work, 'o4.tar'),
        '--generate-key',
        keys(),
      ],
      { REG_USER: LOGIN.username, REG_PASS: LOGIN.password },
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists already; --generate-key does not overwrite a key/);
  });
});
