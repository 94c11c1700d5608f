import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, signManifest } from '@outpost/bundler';
import { startEngine, type Engine } from './engine.ts';
import {
  busyboxPath,
  getBundle,
  makeFixture,
  runScript,
  type Bundle,
  type Fixture,
  type Run,
} from './fixture.ts';
import { activeSigningKey } from '../../services/bundles/signing-keys.ts';
import { encodeReceiptCode, keyFromHex } from '../../services/receipts/code.ts';

// The site installer end to end with a real container engine (podman behind its Docker-compatible
// socket, docker-compose v1): bundles built by Outpost from images in a real registry, installed by
// edge-scripts under dash and under busybox sh, into a compose project of this file's own.
const engine = await startEngine();
const unavailable = 'unavailable' in engine ? engine.unavailable : null;
if (unavailable) console.warn(`installer tests skipped: ${unavailable}`);

let e: Engine;
let f: Fixture;
let state: string;
let cron: string;
let bbin: string;
let project: string;
const SITE = 'INST-A';
const bundles = new Map<string, Bundle>();

function siteEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...e.env,
    OUTPOST_STATE_DIR: state,
    OUTPOST_PROJECT: project,
    OUTPOST_SCHEDULER: 'cron',
    OUTPOST_CRON_DIR: cron,
    ...extra,
  };
}

function script(b: Bundle | string, name: string) {
  return path.join(typeof b === 'string' ? b : b.dir, 'scripts', name);
}

async function run(
  shell: 'dash' | 'busybox',
  b: Bundle | string,
  name: string,
  args: string[] = [],
  extra: Record<string, string> = {},
): Promise<Run> {
  const r = await runScript({ shell, script: script(b, name), args, env: siteEnv(extra), busyboxBin: bbin });
  // The state folder's log follows the output, so that a failure shows what the commands said.
  const logs = await fs.readdir(path.join(state, 'log')).catch(() => [] as string[]);
  const log = logs.length ? await fs.readFile(path.join(state, 'log', logs.sort().at(-1)!), 'utf8') : '';
  return Object.assign(r, {
    toString: () => `${r.stdout}\n${r.stderr}\n--- log ---\n${log.split('\n').slice(-60).join('\n')}`,
  });
}

async function appContainer(): Promise<string> {
  const ps = await e.docker([
    'ps',
    '-q',
    '--filter',
    `label=com.docker.compose.project=${project}`,
    '--filter',
    'label=com.docker.compose.service=app',
  ]);
  return ps.stdout.trim().split('\n')[0] ?? '';
}

async function database(): Promise<string> {
  const id = await appContainer();
  expect(id, 'the app container is running').not.toBe('');
  const r = await e.docker(['exec', id, '/bin/busybox', 'cat', '/data/db.txt']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

async function runningVersion(): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${f.port}/version`);
  return (await r.text()).trim();
}

const read = (p: string) =>
  fs.readFile(p, 'utf8').then(
    (t) => t.trim(),
    () => '',
  );
const current = () => read(path.join(state, 'current'));
const codeIn = (out: string) =>
  /RECEIPT CODE: ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})/.exec(out)?.[1];

/** A copy of a bundle folder to tamper with. */
async function copyOf(b: Bundle, name: string): Promise<string> {
  const dir = path.join(f.work, `tampered-${name}`, path.basename(b.dir));
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await fs.cp(b.dir, dir, { recursive: true });
  return dir;
}

describe.skipIf(unavailable !== null)('the site installer with a real engine', () => {
  beforeAll(async () => {
    e = engine as Engine;
    f = await makeFixture('installer', [
      { code: SITE },
      { code: 'INST-B' },
      { code: 'INST-FR', language: 'fr' },
    ]);
    state = path.join(f.work, 'state');
    cron = path.join(f.work, 'cron.d');
    await fs.mkdir(cron);
    bbin = await busyboxPath(f.work);
    project = `opi${path
      .basename(e.dir)
      .replace(/[^a-z0-9]/gi, '')
      .toLowerCase()}`;
  }, 240_000);

  afterAll(async () => {
    await f?.close();
    await e?.stop();
  }, 60_000);

  it('should install a first release from the bundle file under dash: verified, running, a receipt code the API accepts, reported by itself', async () => {
    const b = await getBundle(f, SITE, '1.0.0');
    bundles.set('1.0.0', b);
    const r = await run('dash', b, 'install', [b.tar]);
    expect(r.code, String(r)).toBe(0);
    expect(r.stdout).toContain('Step 1 — Checking the bundle');
    expect(r.stdout).toContain('This is the first install here');
    expect(r.stdout).toMatch(/Finished: version 1\.0\.0 is installed and works/);
    expect(await current()).toBe('1.0.0');
    expect(await runningVersion()).toBe('1.0.0');
    expect(await database()).toBe('schema=1\n');

    // The receipt code: the API's own encoding for the same inputs, and accepted by the API.
    const code = codeIn(r.stdout)!;
    expect(code).toBeDefined();
    const receipt = JSON.parse(await fs.readFile(await read(path.join(state, 'last-receipt')), 'utf8')) as {
      at: string;
      code: string;
      outcome: string;
    };
    expect(receipt.code).toBe(code);
    expect(receipt.outcome).toBe('installed');
    const key = keyFromHex(await read(path.join(b.dir, 'site/receipt-key')));
    expect(
      await encodeReceiptCode({
        key,
        siteId: b.manifest.site.id,
        version: '1.0.0',
        outcome: 'installed',
        at: new Date(receipt.at),
      }),
    ).toBe(code);
    const submitted = await f.api('/api/v1/receipts', {
      method: 'POST',
      json: { siteId: b.manifest.site.id, code },
    });
    expect(submitted.status, await submitted.clone().text()).toBe(201);
    expect((await submitted.json()) as { version: string; outcome: string }).toMatchObject({
      version: '1.0.0',
      outcome: 'installed',
    });

    // Secrets of the site: mode 0600; the signing key pinned; the report went out with a device token from the enrolment.
    expect(statSync(path.join(state, 'receipt-key')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(state, 'device-token')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(b.dir, 'site/enrolment-token')).mode & 0o777).toBe(0o600);
    expect(await read(path.join(state, 'keys/signing-key.pem'))).toBe(
      await read(path.join(b.dir, 'keys/signing-key.pem')),
    );
    const site = (await (await f.api(`/api/v1/sites/${b.manifest.site.id}`)).json()) as {
      reportedVersion: string;
      deviceToken: { prefix: string } | null;
    };
    expect(site.reportedVersion).toBe('1.0.0');
    expect(site.deviceToken?.prefix).toMatch(/^opd_/);
    expect(
      await fs.readdir(path.join(state, 'queue')).then((l) => l.filter((n) => n.endsWith('.json'))),
    ).toEqual([]);

    // A nightly backup and a periodic report, set up once.
    const cronFile = await read(path.join(cron, 'outpost'));
    expect(cronFile).toMatch(
      /^30 2 \* \* \* root OUTPOST_STATE_DIR=\S+ \/bin\/sh \S+\/scripts\/backup --quiet$/m,
    );
    expect(cronFile).toMatch(/\/scripts\/report --quiet$/m);
  }, 300_000);
  it('should upgrade to 2.0.0 with a delta bundle under busybox sh: the 1.0.0 data backed up first, then migrated', async () => {
    const b = await getBundle(f, SITE, '2.0.0', 'delta');
    bundles.set('2.0.0', b);
    expect(b.manifest.images.delta).toBe(true);
    const full = await getBundle(f, SITE, '2.0.0', 'full');
    expect((await fs.stat(path.join(b.dir, 'images/images.tgz'))).size).toBeLessThan(
      (await fs.stat(path.join(full.dir, 'images/images.tgz'))).size / 10,
    );

    const cronBefore = await read(path.join(cron, 'outpost'));
    const r = await run('busybox', b, 'install');
    expect(r.code, String(r)).toBe(0);
    expect(r.stdout).toContain('Step 3 — Backing up the data of version 1.0.0');
    // The schedule is written again, not added to.
    expect(await fs.readdir(cron)).toEqual(['outpost']);
    expect(await read(path.join(cron, 'outpost'))).toBe(cronBefore);
    expect(r.stdout).not.toContain('first install');
    expect(await current()).toBe('2.0.0');
    expect(await read(path.join(state, 'previous'))).toBe('1.0.0');
    expect(await runningVersion()).toBe('2.0.0');
    expect(await database()).toBe('schema=2\n');
    const backup = await read(path.join(state, 'last-good-backup'));
    expect(backup).toMatch(/-1\.0\.0-before-2\.0\.0$/);
    expect(await fs.readFile(path.join(state, 'backups', backup, 'app.dump'), 'utf8')).toBe('schema=1\n');
    const site = (await (await f.api(`/api/v1/sites/${b.manifest.site.id}`)).json()) as {
      reportedVersion: string;
    };
    expect(site.reportedVersion).toBe('2.0.0');

    const status = await run('busybox', b, 'status');
    expect(status.code, String(status)).toBe(0);
    expect(status.stdout).toContain('Installed version: 2.0.0');
    expect(status.stdout).toContain('Version before it: 1.0.0');
    expect(status.stdout).toContain('Reports waiting to be sent: 0');

    // Data the clinic enters with 2.0.0, which later tests expect back exactly.
    const id = await appContainer();
    const w = await e.docker([
      'exec',
      id,
      '/bin/sh',
      '-c',
      'printf "patient=42\\nname=Amina \\"A\\" $HOME\\n" >>/data/db.txt',
    ]);
    expect(w.code, w.stderr).toBe(0);
  }, 300_000);

  describe('bundles that must be refused before anything changes', () => {
    let before: string;
    beforeAll(async () => {
      bundles.set('3.0.0', await getBundle(f, SITE, '3.0.0', 'full'));
      before = await database();
    }, 120_000);

    const refused = async (
      dir: string,
      pattern: RegExp,
      extra: Record<string, string> = {},
      args: string[] = [],
    ) => {
      const r = await run('dash', dir, 'install', args, extra);
      expect(r.code, String(r)).toBe(1);
      expect(r.stderr).toMatch(pattern);
      expect(await current()).toBe('2.0.0');
      expect(await runningVersion()).toBe('2.0.0');
      expect(await database()).toBe(before);
      await expect(fs.stat(path.join(state, 'journal'))).rejects.toThrow();
    };

    it('should refuse an images archive with one byte flipped', async () => {
      const dir = await copyOf(bundles.get('3.0.0')!, 'flipped');
      const file = path.join(dir, 'images/images.tgz');
      const bytes = await fs.readFile(file);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      await fs.writeFile(file, bytes);
      await refused(dir, /STOP: the file images\/images\.tgz is damaged or was changed/);
    }, 60_000);

    it('should refuse a manifest changed after signing', async () => {
      const dir = await copyOf(bundles.get('3.0.0')!, 'manifest');
      const file = path.join(dir, 'manifest.json');
      await fs.writeFile(
        file,
        (await fs.readFile(file, 'utf8')).replace(/"expires": "\d{4}/, '"expires": "2099'),
      );
      await refused(dir, /STOP: the bundle’s signature does not match/);
    }, 60_000);

    it('should refuse a bundle signed by another key, even one that ships that key', async () => {
      const dir = await copyOf(bundles.get('3.0.0')!, 'other-key');
      const key = generateSigningKey();
      await fs.writeFile(
        path.join(dir, 'manifest.sig'),
        signManifest(await fs.readFile(path.join(dir, 'manifest.json')), key.privateKeyPem),
      );
      await fs.writeFile(path.join(dir, 'keys/signing-key.pem'), key.publicKeyPem);
      await refused(dir, /STOP: the bundle’s signature does not match/);
    }, 60_000);

    it('should refuse an expired bundle signed by the organisation', async () => {
      const dir = await copyOf(bundles.get('3.0.0')!, 'expired');
      const file = path.join(dir, 'manifest.json');
      const manifest = JSON.parse(await fs.readFile(file, 'utf8')) as { expires: string };
      manifest.expires = new Date(Date.now() - 60_000).toISOString();
      const bytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
      await fs.writeFile(file, bytes);
      const key = await activeSigningKey(f.h.db, f.app.secretBox, f.orgId);
      await fs.writeFile(path.join(dir, 'manifest.sig'), signManifest(bytes, key.privateKeyPem));
      await refused(dir, /STOP: this bundle expired on/);
    }, 60_000);

    it('should refuse a bundle for another site', async () => {
      const other = await getBundle(f, 'INST-B', '3.0.0');
      await refused(
        other.dir,
        /STOP: this bundle is for the site INST-B, but this server is the site INST-A/,
      );
    }, 120_000);

    it('should refuse an older release without --rollback, and the same release without --force', async () => {
      await refused(
        bundles.get('1.0.0')!.dir,
        /STOP: this bundle holds version 1\.0\.0, older than the installed 2\.0\.0\. To go back on purpose, add --rollback/,
      );
      const same = await run('dash', bundles.get('2.0.0')!, 'install');
      expect(same.code, String(same)).toBe(0);
      expect(same.stdout).toContain('Version 2.0.0 is already installed here. Nothing to do.');
    }, 60_000);

    it('should refuse when the disk is too small, saying how much is needed', async () => {
      await refused(
        bundles.get('3.0.0')!.dir,
        /STOP: not enough free disk space: this update needs about \d+ MB and only 1000 KB are free/,
        { OUTPOST_TEST_DISK_FREE_KB: '1000' },
      );
    }, 60_000);
  });

  it('should put 2.0.0 and its data back exactly when 3.0.0 fails its health check after the switch', async () => {
    const before = await database();
    expect(before).toContain('patient=42');
    const b = bundles.get('3.0.0')!;
    const r = await run('dash', b, 'install');
    expect(r.code, String(r)).toBe(1);
    expect(r.stderr).toContain('The new version 3.0.0 does not work. Putting the previous version back');
    expect(r.stdout).toContain('Putting back the data of app from the backup');
    expect(r.stdout).toMatch(
      /The update did not work, so version 2\.0\.0 and its data were put back and work again\. Version 3\.0\.0 is NOT installed/,
    );
    expect(await current()).toBe('2.0.0');
    expect(await runningVersion()).toBe('2.0.0');
    // 3.0.0 had migrated the database to schema 3 before failing: the backup put back byte for byte.
    expect(await database()).toBe(before);
    const receipt = JSON.parse(await fs.readFile(await read(path.join(state, 'last-receipt')), 'utf8')) as {
      outcome: string;
      version: string;
      code: string;
    };
    expect(receipt).toMatchObject({ outcome: 'rolled_back', version: '3.0.0' });
    expect(codeIn(r.stdout)).toBe(receipt.code);
    const submitted = await f.api('/api/v1/receipts', {
      method: 'POST',
      json: { siteId: b.manifest.site.id, code: receipt.code },
    });
    expect(submitted.status, await submitted.clone().text()).toBe(201);
    expect(await submitted.json()).toMatchObject({ version: '3.0.0', outcome: 'rolled_back' });
    await expect(fs.stat(path.join(state, 'journal'))).rejects.toThrow();
  }, 300_000);

  it('should queue the report while the server cannot be reached and send it when it can', async () => {
    const b = bundles.get('2.0.0')!;
    const siteBefore = (await (await f.api(`/api/v1/sites/${b.manifest.site.id}`)).json()) as {
      reportedAt: string;
    };
    await f.stopServer();
    try {
      const offline = await run('busybox', b, 'report');
      expect(offline.code, String(offline)).toBe(1);
      expect(offline.stdout).toMatch(/cannot be reached now/);
      expect((await fs.readdir(path.join(state, 'queue'))).filter((n) => n.endsWith('.json'))).toHaveLength(
        1,
      );
      const status = await run('dash', b, 'status');
      expect(status.stdout).toContain('Reports waiting to be sent: 1');
    } finally {
      await f.startServer();
    }
    const online = await run('dash', b, 'report');
    expect(online.code, String(online)).toBe(0);
    expect((await fs.readdir(path.join(state, 'queue'))).filter((n) => n.endsWith('.json'))).toHaveLength(0);
    const site = (await (await f.api(`/api/v1/sites/${b.manifest.site.id}`)).json()) as {
      reportedAt: string;
      reportedVersion: string;
      reportedStatus: string;
    };
    expect(site.reportedVersion).toBe('2.0.0');
    expect(site.reportedStatus).toBe('healthy');
    expect(Date.parse(site.reportedAt)).toBeGreaterThan(Date.parse(siteBefore.reportedAt));
  }, 120_000);

  it('should back up and restore by hand, and roll back to 1.0.0 with the data from before the upgrade', async () => {
    const b = bundles.get('2.0.0')!;
    const before = await database();
    const backup = await run('busybox', b, 'backup');
    expect(backup.code, String(backup)).toBe(0);
    const id = await read(path.join(state, 'last-backup'));
    expect(id).toMatch(/-2\.0\.0-manual$/);
    const c = await appContainer();
    await e.docker(['exec', c, '/bin/sh', '-c', 'echo lost=1 >>/data/db.txt']);
    const restore = await run('dash', path.join(state), 'restore', [id]);
    expect(restore.code, String(restore)).toBe(0);
    expect(await database()).toBe(before);

    const check = await run('dash', state, 'self-check');
    expect(check.code, String(check)).toBe(0);
    expect(check.stdout).toContain('Everything works: version 2.0.0.');

    const back = await run('dash', state, 'rollback', ['--yes']);
    expect(back.code, String(back)).toBe(0);
    expect(await current()).toBe('1.0.0');
    expect(await runningVersion()).toBe('1.0.0');
    expect(await database()).toBe('schema=1\n');
    expect(back.stdout).toMatch(
      /The data of the newer version is kept in the backup \S+-2\.0\.0-before-rollback/,
    );
  }, 300_000);

  it("should write the README in the site's language and print the steps in it (French), LANG overriding it", async () => {
    const b = await getBundle(f, 'INST-FR', '1.0.0');
    const readme = await fs.readFile(path.join(b.dir, 'README.txt'), 'utf8');
    expect(readme).toContain('Mise à jour vers la version 1.0.0 pour Clinic INST-FR');
    expect(readme).toContain('sudo sh scripts/install');
    const fr = await runScript({
      shell: 'dash',
      script: script(b, 'verify'),
      env: siteEnv({ OUTPOST_STATE_DIR: path.join(f.work, 'state-fr') }),
    });
    expect(fr.code, fr.stdout + fr.stderr).toBe(0);
    expect(fr.stdout).toContain('Étape 1 — Vérification du paquet');
    const en = await runScript({
      shell: 'dash',
      script: script(b, 'verify'),
      env: siteEnv({ OUTPOST_STATE_DIR: path.join(f.work, 'state-fr'), LANG: 'en_GB.UTF-8' }),
    });
    expect(en.stdout).toContain('Step 1 — Checking the bundle');
  }, 120_000);

  it("should accept a bundle signed by the organisation's new key when the pinned key endorsed it, and re-pin it only once installed", async () => {
    const rotated = await f.api('/api/v1/signing-keys/rotate', { method: 'POST' });
    expect(rotated.status, await rotated.clone().text()).toBe(200);
    // A bundle not asked for before (a site keeps a ready bundle of the same release and base): 3.0.0 from 1.0.0, which the site reports now.
    const b = await getBundle(f, SITE, '3.0.0', 'delta');
    const endorsements = (await fs.readdir(path.join(b.dir, 'keys'))).filter((n) =>
      n.startsWith('endorsed-by-'),
    );
    expect(endorsements).toHaveLength(1);
    const pinned = await read(path.join(state, 'keys/signing-key.pem'));
    expect(await read(path.join(b.dir, 'keys/signing-key.pem'))).not.toBe(pinned);
    const ok = await run('dash', b, 'verify');
    expect(ok.code, String(ok)).toBe(0);
    expect(ok.stdout).toContain(
      'The organisation changed its signing key; the key this server trusts approved the new one.',
    );
    expect(await read(path.join(state, 'keys/signing-key.pem'))).toBe(pinned);

    // The statement is the pinned key's signature over this very key: over another key it does not count.
    const forged = await copyOf(b, 'forged-rotation');
    const key = generateSigningKey();
    await fs.writeFile(path.join(forged, 'keys/signing-key.pem'), key.publicKeyPem);
    await fs.writeFile(
      path.join(forged, 'manifest.sig'),
      signManifest(await fs.readFile(path.join(forged, 'manifest.json')), key.privateKeyPem),
    );
    const refused = await run('dash', forged, 'verify');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/STOP: the bundle’s signature does not match/);
  }, 120_000);
});
