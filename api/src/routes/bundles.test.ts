import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { and, count, eq } from 'drizzle-orm';
import {
  buildTestImage,
  corruptBlob,
  pushImage,
  startRegistry,
  type TestImage,
  type TestRegistry,
} from '@outpost/bundler/test-support';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { zipOf } from '../test/zip.ts';
import { makeTestApp } from '../test/app.ts';
import { runStore, stallingPath } from '../test/store.ts';
import { FACTORY_PASSWORD, makeApiToken, makeOrg, makeSite, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import {
  bundleDownloads,
  bundleJobs,
  bundles,
  coordinatorSites,
  imageArchives,
  releases,
} from '../db/schema/index.ts';
import type { BuildRunner } from '../services/bundles/build-runner.ts';
import { settleBuilds, testBuildRunner } from '../test/build-runner.ts';
import { EMR_TEMPLATE } from '../test/compose.ts';
import { pushEmrImages } from '../test/emr-images.ts';
import { claimJobs } from '../services/bundles/jobs.ts';
import { bundleLinks } from '../services/bundles/deliver.ts';
import { inject } from 'vitest';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';

// Real registries (Debian docker-registry on loopback) with images built by hand and pushed by
// skopeo, the run's real S3 server, PGlite and PostgreSQL; bundles are unpacked with GNU tar and
// their signatures checked with the openssl command line, as a site would.
let reg: TestRegistry;
let work: string;
const img: Record<string, TestImage> = {};

beforeAll(async () => {
  reg = await startRegistry();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-bundles-'));
  Object.assign(img, await pushEmrImages(work, reg.host));
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe.each(TEST_DRIVERS)('bundles on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  let runner: BuildRunner;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
    runner = makeRunner();
  });
  afterAll(async () => {
    await h.close();
  });

  const makeRunner = (over: Partial<ConstructorParameters<typeof BuildRunner>[0]> = {}) =>
    testBuildRunner(h.db, t, {
      logger: (level, msg, fields) => t.logs.push({ level, msg, fields }),
      ...over,
    });
  const settle = (w = runner, timeoutMs?: number) => settleBuilds(h.db, w, timeoutMs);

  async function orgWithApi(role: 'admin' | 'operator' = 'admin') {
    const org = await makeOrg(h.db);
    return { org, api: withToken(t.app, (await makeApiToken(h.db, org.id, role)).token) };
  }

  async function publish(api: ReturnType<typeof withToken>, version: string, images: Record<string, string>) {
    const res = await api('/api/v1/releases', {
      method: 'POST',
      json: { version, composeTemplate: EMR_TEMPLATE },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const { id } = (await res.json()) as { id: string };
    for (const [name, reference] of Object.entries(images)) {
      const add = await api(`/api/v1/releases/${id}/images`, { method: 'POST', json: { name, reference } });
      expect(add.status, await add.clone().text()).toBe(201);
    }
    const pub = await api(`/api/v1/releases/${id}/publish`, { method: 'POST' });
    expect(pub.status, await pub.clone().text()).toBe(200);
    return id;
  }
  const v10 = () => ({ backend: `${reg.host}/emr/backend:1.0`, frontend: `${reg.host}/emr/frontend:1.0` });
  /** The run's store reached through `endpoint`, giving up on a connection silent for 300 ms. */
  const quietStore = (endpoint: string) =>
    runStore({ endpoint, bucket: t.objectStore.bucket, idleTimeoutMs: 300 });
  const v11 = () => ({ backend: `${reg.host}/emr/backend:1.1`, frontend: `${reg.host}/emr/frontend:1.0` });

  /** A new organisation with release 1.0.0 (v10) published and one bundle of it asked for, for the site `code`. */
  async function oneBundle(code: string) {
    const { org, api } = await orgWithApi();
    const releaseId = await publish(api, '1.0.0', v10());
    const site = await makeSite(h.db, org.id, { code });
    const [b] = (await ask(api, { releaseId, siteIds: [site.id] })).bundles;
    return { org, api, releaseId, site, b };
  }

  async function ask(api: ReturnType<typeof withToken>, json: Record<string, unknown>) {
    const res = await api('/api/v1/bundles', { method: 'POST', json });
    expect(res.status, await res.clone().text()).toBe(202);
    return (await res.json()) as {
      created: number;
      kept: number;
      bundles: { id: string; siteId: string; siteCode: string; delta: boolean }[];
    };
  }
  const view = async (api: ReturnType<typeof withToken>, id: string) =>
    (await (await api(`/api/v1/bundles/${id}`)).json()) as {
      state: string;
      size: number;
      fullSize: number;
      delta: boolean;
      error: { code: string; message: string } | null;
      fileName: string;
      keyFingerprint: string;
      downloads: number;
      fromRelease: { version: string } | null;
      estimatedSeconds: number | null;
    };

  /** Downloads a bundle and unpacks it with GNU tar into a fresh folder; returns the bundle's folder. */
  async function unpack(api: ReturnType<typeof withToken>, id: string) {
    const res = await api(`/api/v1/bundles/${id}/download`);
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(bytes.length).toBe(Number(res.headers.get('content-length')));
    const dir = await fs.mkdtemp(path.join(work, 'unpacked-'));
    await fs.writeFile(path.join(dir, 'bundle.tar'), bytes);
    execFileSync('tar', ['-xf', 'bundle.tar'], { cwd: dir });
    const [root] = (await fs.readdir(dir)).filter((n) => n !== 'bundle.tar');
    return { bytes, dir: path.join(dir, root!), root: root! };
  }

  /** What a site does: the signature with openssl, then every listed file's size and sha256. */
  async function verifyFolder(dir: string, publicKeyPem?: string) {
    const keyFile = publicKeyPem ? path.join(dir, '..', 'given.pem') : path.join(dir, 'keys/signing-key.pem');
    if (publicKeyPem) await fs.writeFile(keyFile, publicKeyPem);
    const out = execFileSync(
      'openssl',
      ['dgst', '-sha256', '-verify', keyFile, '-signature', 'manifest.sig', 'manifest.json'],
      { cwd: dir },
    ).toString();
    expect(out.trim()).toBe('Verified OK');
    const manifest = JSON.parse(await fs.readFile(path.join(dir, 'manifest.json'), 'utf8'));
    for (const f of manifest.files as { path: string; size: number; sha256: string }[]) {
      const bytes = await fs.readFile(path.join(dir, f.path));
      expect({ path: f.path, size: bytes.length, sha256: sha256(bytes) }).toEqual(f);
    }
    return manifest;
  }

  describe('happy', () => {
    it('should build the images archive once for all sites and serve each site one signed file that verifies and loads', async () => {
      const { org, api } = await orgWithApi();
      const releaseId = await publish(api, '1.0.0', v10());
      const sitesMade = await Promise.all(
        ['A', 'B', 'C'].map((c) =>
          makeSite(h.db, org.id, { code: `KE-${c}`, name: `St. Mary's ${c}`, bandwidthKbps: 512 }),
        ),
      );
      const asked = await ask(api, { releaseId, siteCodes: sitesMade.map((s) => s.code), mode: 'full' });
      expect(asked).toMatchObject({ created: 3, kept: 0 });
      await settle();

      const archives = await h.db.select().from(imageArchives).where(eq(imageArchives.releaseId, releaseId));
      expect(archives).toHaveLength(1);
      expect(archives[0]).toMatchObject({ state: 'ready', fromReleaseId: null });
      const list = (await (await api(`/api/v1/bundles?releaseId=${releaseId}`)).json()) as {
        items: { id: string; state: string; size: number; sitePartSize: number }[];
      };
      expect(list.items.map((b) => b.state)).toEqual(['ready', 'ready', 'ready']);
      // Per extra site, only the small site part is stored (about 120 kB, most of it the installer's scripts).
      for (const b of list.items) expect(b.sitePartSize).toBeLessThan(160 * 1024);

      const first = asked.bundles.find((b) => b.siteCode === 'KE-A')!;
      const v = await view(api, first.id);
      expect(v).toMatchObject({
        state: 'ready',
        delta: false,
        fileName: 'outpost-KE-A-1.0.0.tar',
        error: null,
      });
      expect(v.estimatedSeconds).toBe(Math.ceil((v.size * 8) / 512_000));
      const { bytes, dir, root } = await unpack(api, first.id);
      expect(root).toBe('outpost-KE-A-1.0.0');
      expect(bytes.length).toBe(v.size);
      const manifest = await verifyFolder(dir);
      expect(manifest).toMatchObject({
        format: 'outpost-bundle/1',
        site: { code: 'KE-A', name: "St. Mary's A" },
        release: { version: '1.0.0' },
        fromRelease: null,
        images: { delta: false },
      });
      const keys = (await (await api('/api/v1/signing-keys')).json()) as {
        items: { fingerprint: string; publicKeyPem: string; active: boolean }[];
      };
      expect(keys.items).toHaveLength(1);
      expect(manifest.keyFingerprint).toBe(keys.items[0]!.fingerprint);
      expect(v.keyFingerprint).toBe(keys.items[0]!.fingerprint);
      await verifyFolder(dir, keys.items[0]!.publicKeyPem);

      const compose = await fs.readFile(path.join(dir, 'compose/docker-compose.yml'), 'utf8');
      expect(compose).toContain(`image: ${reg.host}/emr/backend@${img.backend10!.digest}`);
      expect(compose).toContain('KE-A');
      const env = await fs.readFile(path.join(dir, 'compose/.env'), 'utf8');
      expect(env).toContain("OUTPOST_SITE_CODE='KE-A'");
      expect(env).not.toContain('Mary');
      expect(await fs.readFile(path.join(dir, 'scripts/lib/receipt-code.sh'), 'utf8')).toContain('receipt');
      expect(await fs.readFile(path.join(dir, 'README.txt'), 'utf8')).toContain("St. Mary's A");

      // The images archive loads in a real consumer (skopeo reads the tar; the site's docker takes the gzip as it is).
      const tar = path.join(dir, '..', 'images.tar');
      execFileSync('sh', ['-c', 'zcat "$0" > "$1"', path.join(dir, 'images/images.tgz'), tar]);
      const inspected = JSON.parse(
        execFileSync('skopeo', ['inspect', `docker-archive:${tar}:${reg.host}/emr/backend:1.0`]).toString(),
      );
      // A docker-archive names layers by their uncompressed digests (diff_ids), which skopeo checks as it reads.
      expect(inspected.Layers).toEqual(img.backend10!.layers.map((l) => l.diffId));

      // The download was recorded with its bytes, sent to the end.
      const rows = await h.db.select().from(bundleDownloads).where(eq(bundleDownloads.bundleId, first.id));
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        kind: 'stitched',
        bytes: v.size,
        complete: true,
        rangeStart: 0,
        rangeEnd: v.size - 1,
      });
      expect((await view(api, first.id)).downloads).toBe(1);

      // Asking again keeps what is built.
      expect(await ask(api, { releaseId, siteCodes: ['KE-A', 'KE-B'], mode: 'full' })).toMatchObject({
        created: 0,
        kept: 2,
      });
    });

    it("should carry the release's content package in the bundle, listed and checked like every file", async () => {
      const { org, api } = await orgWithApi();
      const zip = await zipOf({
        'forms/anc.json': '{"form":"ANC"}',
        'concepts/list.csv': 'id,name\n1,Malaria\n',
      });
      const up = await api('/api/v1/content-packages?name=ke-forms&version=2026.11', {
        method: 'POST',
        headers: { 'content-type': 'application/zip' },
        body: new Uint8Array(zip),
      });
      expect(up.status, await up.clone().text()).toBe(201);
      const pkg = (await up.json()) as { id: string };
      const created = await api('/api/v1/releases', {
        method: 'POST',
        json: { version: '1.0.0', composeTemplate: EMR_TEMPLATE, contentPackageId: pkg.id },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const { id: releaseId } = (await created.json()) as { id: string };
      for (const [name, reference] of Object.entries(v10()))
        expect(
          (await api(`/api/v1/releases/${releaseId}/images`, { method: 'POST', json: { name, reference } }))
            .status,
        ).toBe(201);
      expect((await api(`/api/v1/releases/${releaseId}/publish`, { method: 'POST' })).status).toBe(200);
      const site = await makeSite(h.db, org.id, { code: 'KE-CP' });
      const [b] = (await ask(api, { releaseId, siteIds: [site.id] })).bundles;
      await settle();
      const { dir } = await unpack(api, b!.id);
      const manifest = await verifyFolder(dir);
      expect(manifest.content).toEqual({ path: 'content/ke-forms-2026.11.zip' });
      expect(Buffer.compare(await fs.readFile(path.join(dir, 'content/ke-forms-2026.11.zip')), zip)).toBe(0);
    });

    it('should resume: any byte range, across the part boundary, equals the same bytes of the whole file', async () => {
      const { api, b } = await oneBundle('KE-RANGE');
      await settle();
      const whole = new Uint8Array(await (await api(`/api/v1/bundles/${b!.id}/download`)).arrayBuffer());
      const partSize = ((await view(api, b!.id)) as unknown as { sitePartSize: number }).sitePartSize;
      const head = await api(`/api/v1/bundles/${b!.id}/download`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(Number(head.headers.get('content-length'))).toBe(whole.length);
      const etag = head.headers.get('etag')!;
      for (const [start, end] of [
        [0, 0],
        [partSize - 10, partSize + 10],
        [whole.length - 100, whole.length - 1],
        [1000, 300_000],
      ] as const) {
        const res = await api(`/api/v1/bundles/${b!.id}/download`, {
          headers: { range: `bytes=${start}-${end}`, 'if-range': etag },
        });
        expect(res.status).toBe(206);
        const last = Math.min(end, whole.length - 1);
        expect(res.headers.get('content-range')).toBe(`bytes ${start}-${last}/${whole.length}`);
        expect(
          Buffer.from(await res.arrayBuffer()).equals(Buffer.from(whole.subarray(start, last + 1))),
        ).toBe(true);
      }
      const beyond = await api(`/api/v1/bundles/${b!.id}/download`, {
        headers: { range: `bytes=${whole.length}-` },
      });
      expect(beyond.status).toBe(416);
      expect(beyond.headers.get('content-range')).toBe(`bytes */${whole.length}`);
      const malformed = await api(`/api/v1/bundles/${b!.id}/download`, { headers: { range: 'bytes=abc' } });
      expect(malformed.status).toBe(200);
      expect((await malformed.arrayBuffer()).byteLength).toBe(whole.length);
      // A stale If-Range (the file changed) gets the whole file.
      const stale = await api(`/api/v1/bundles/${b!.id}/download`, {
        headers: { range: 'bytes=0-9', 'if-range': '"other"' },
      });
      expect(stale.status).toBe(200);
      await stale.arrayBuffer();
      // Ranged GETs are recorded as such.
      const ranged = await h.db
        .select()
        .from(bundleDownloads)
        .where(and(eq(bundleDownloads.bundleId, b!.id), eq(bundleDownloads.rangeStart, partSize - 10)));
      expect(ranged[0]).toMatchObject({ rangeEnd: partSize + 10, bytes: 21, complete: true });
    });

    it('should make a delta for a site that reported an earlier release, smaller than the full bundle, and refuse a delta without a base', async () => {
      const { org, api } = await orgWithApi();
      const r10 = await publish(api, '1.0.0', v10());
      const r11 = await publish(api, '1.1.0', v11());
      const old = await makeSite(h.db, org.id, {
        code: 'KE-OLD',
        reportedVersion: '1.0.0',
        reportedReleaseId: r10,
        reportedStatus: 'healthy',
        reportedAt: new Date(),
      });
      const fresh = await makeSite(h.db, org.id, { code: 'KE-NEW' });

      const refused = await expectEnvelope(
        await api('/api/v1/bundles', {
          method: 'POST',
          json: { releaseId: r11, siteIds: [old.id, fresh.id], mode: 'delta' },
        }),
        422,
        'DELTA_BASE_UNKNOWN',
      );
      expect(refused.message).toContain('KE-NEW');
      expect(refused.details).toEqual([
        expect.objectContaining({ code: 'KE-NEW', message: 'Has never reported a release.' }),
      ]);
      expect((await h.db.select({ n: count() }).from(bundles).where(eq(bundles.orgId, org.id)))[0]!.n).toBe(
        0,
      );
      expect(
        (await h.db.select({ n: count() }).from(imageArchives).where(eq(imageArchives.orgId, org.id)))[0]!.n,
      ).toBe(0);

      const asked = await ask(api, { releaseId: r11, siteIds: [old.id, fresh.id], mode: 'auto' });
      expect(asked.bundles.map((b) => [b.siteCode, b.delta]).sort()).toEqual([
        ['KE-NEW', false],
        ['KE-OLD', true],
      ]);
      await settle();
      const archives = await h.db.select().from(imageArchives).where(eq(imageArchives.releaseId, r11));
      expect(archives.map((a) => [a.fromReleaseId, a.state]).sort()).toEqual(
        [
          [null, 'ready'],
          [r10, 'ready'],
        ].sort(),
      );
      const delta = await view(api, asked.bundles.find((b) => b.delta)!.id);
      const full = await view(api, asked.bundles.find((b) => !b.delta)!.id);
      expect(delta).toMatchObject({ state: 'ready', delta: true, fromRelease: { version: '1.0.0' } });
      expect(delta.size).toBeLessThan(delta.fullSize);
      const fullArchive = archives.find((a) => a.fromReleaseId === null)!;
      const deltaArchive = archives.find((a) => a.fromReleaseId === r10)!;
      expect(delta.fullSize - delta.size).toBe(fullArchive.size! - deltaArchive.size!);
      expect(full.size).toBe(full.fullSize);

      const { dir } = await unpack(api, asked.bundles.find((b) => b.delta)!.id);
      const manifest = await verifyFolder(dir);
      expect(manifest).toMatchObject({ fromRelease: { id: r10, version: '1.0.0' }, images: { delta: true } });
      const listing = execFileSync('tar', ['-tzf', path.join(dir, 'images/images.tgz')])
        .toString()
        .split('\n');
      const shared = img.backend10!.layers[0]!.digest.slice('sha256:'.length);
      const changed = img.backend11!.layers[1]!.digest.slice('sha256:'.length);
      expect(listing).not.toContain(`blobs/sha256/${shared}`);
      expect(listing).toContain(`blobs/sha256/${changed}`);

      // A site already on 1.1.0 gets a full bundle (a reinstall), and a delta for it is refused in plain words.
      const current = await makeSite(h.db, org.id, {
        code: 'KE-CUR',
        reportedVersion: '1.1.0',
        reportedReleaseId: r11,
        reportedStatus: 'healthy',
        reportedAt: new Date(),
      });
      expect((await ask(api, { releaseId: r11, siteIds: [current.id] })).bundles[0]!.delta).toBe(false);
      const again = await expectEnvelope(
        await api('/api/v1/bundles', {
          method: 'POST',
          json: { releaseId: r11, siteIds: [current.id], mode: 'delta' },
        }),
        422,
        'DELTA_BASE_UNKNOWN',
      );
      expect(again.details).toEqual([
        expect.objectContaining({
          code: 'KE-CUR',
          message: 'Already runs 1.1.0; a reinstall needs a full bundle.',
        }),
      ]);
    });

    it('should rotate the signing key: new bundles use the new key, old bundles still verify with the retired one', async () => {
      const { org, api } = await orgWithApi();
      const releaseId = await publish(api, '1.0.0', v10());
      const a = await makeSite(h.db, org.id, { code: 'KE-K1' });
      const b = await makeSite(h.db, org.id, { code: 'KE-K2' });
      const [before] = (await ask(api, { releaseId, siteIds: [a.id] })).bundles;
      await settle();
      const oldKey = (
        (await (await api('/api/v1/signing-keys')).json()) as {
          items: { fingerprint: string; publicKeyPem: string }[];
        }
      ).items[0]!;
      const rotated = await api('/api/v1/signing-keys/rotate', { method: 'POST' });
      expect(rotated.status).toBe(200);
      const newKey = (await rotated.json()) as { fingerprint: string; publicKeyPem: string; active: boolean };
      expect(newKey.active).toBe(true);
      expect(newKey.fingerprint).not.toBe(oldKey.fingerprint);
      const keys = (
        (await (await api('/api/v1/signing-keys')).json()) as {
          items: { fingerprint: string; active: boolean; retiredAt: string | null }[];
        }
      ).items;
      expect(keys.map((k) => [k.fingerprint, k.active])).toEqual([
        [newKey.fingerprint, true],
        [oldKey.fingerprint, false],
      ]);
      const [after] = (await ask(api, { releaseId, siteIds: [b.id] })).bundles;
      await settle();
      expect(
        (await verifyFolder((await unpack(api, before!.id)).dir, oldKey.publicKeyPem)).keyFingerprint,
      ).toBe(oldKey.fingerprint);
      expect(
        (await verifyFolder((await unpack(api, after!.id)).dir, newKey.publicKeyPem)).keyFingerprint,
      ).toBe(newKey.fingerprint);
      // The wrong key does not verify.
      const wrongDir = (await unpack(api, after!.id)).dir;
      await fs.writeFile(path.join(wrongDir, '..', 'old.pem'), oldKey.publicKeyPem);
      expect(() =>
        execFileSync(
          'openssl',
          ['dgst', '-sha256', '-verify', '../old.pem', '-signature', 'manifest.sig', 'manifest.json'],
          { cwd: wrongDir, stdio: 'pipe' },
        ),
      ).toThrow();
    });

    it('should share one queue between several runners: every bundle built once, no job taken twice', async () => {
      const { org, api } = await orgWithApi();
      const releaseId = await publish(api, '1.0.0', v10());
      const made = [];
      for (let i = 0; i < 30; i++)
        made.push(
          await makeSite(h.db, org.id, { code: `KE-Q${String(i).padStart(2, '0')}`, region: 'Queue' }),
        );
      const asked = await ask(api, { releaseId, filter: { region: 'Queue' } });
      expect(asked.created).toBe(30);
      // Three runners at once, small batches, so they compete for the same rows.
      const runners = [0, 1, 2].map((i) => makeRunner({ runnerId: `w${i}`, batch: 4, concurrency: 2 }));
      await Promise.all(runners.map((w) => settle(w)));
      const jobs = await h.db.select().from(bundleJobs).where(eq(bundleJobs.orgId, org.id));
      expect(jobs).toHaveLength(31);
      expect(jobs.every((j) => j.state === 'done' && j.attempts === 1)).toBe(true);
      expect(new Set(jobs.map((j) => j.lockedBy)).size).toBeGreaterThan(1);
      const built = await h.db.select().from(bundles).where(eq(bundles.orgId, org.id));
      expect(built.map((b) => b.state)).toEqual(Array(30).fill('ready'));
      expect(new Set(built.map((b) => b.sitePartSha256)).size).toBe(30);
    });

    it('should hand out presigned links to each part that fetch the same bytes', async () => {
      const { org, api, b } = await oneBundle('KE-LINK');
      await settle();
      const links = (await (await api(`/api/v1/bundles/${b!.id}/links`)).json()) as {
        root: string;
        files: { path: string; extract: boolean; size: number; sha256: string; url: string }[];
      };
      expect(links.root).toBe('outpost-KE-LINK-1.0.0');
      expect(links.files.map((f) => [f.path, f.extract])).toEqual([
        ['outpost-KE-LINK-1.0.0-site.tar', true],
        ['outpost-KE-LINK-1.0.0/images/images.tgz', false],
      ]);
      // The site part is a presigned S3 link; the images archive (produced from its blobs) a signed link to the API, no session needed.
      const [sitePartLink, archiveLink] = links.files;
      expect(archiveLink!.url).toMatch(
        /^http:\/\/localhost\/api\/v1\/archive-links\/[0-9a-f-]{36}\/images\.tgz\?expires=\d+&signature=[\w-]+$/,
      );
      const fetchLink = (url: string, init?: RequestInit) =>
        url.startsWith('http://localhost/') ? t.app.request(url, init) : fetch(url, init);
      for (const f of links.files) {
        const res = await fetchLink(f.url);
        expect(res.status).toBe(200);
        const bytes = new Uint8Array(await res.arrayBuffer());
        expect([bytes.length, sha256(bytes)]).toEqual([f.size, f.sha256]);
      }
      expect(sitePartLink!.url).toContain('X-Amz-Signature=');
      // It resumes like any download link: ranges, ETag, If-Range.
      const head = await fetchLink(archiveLink!.url, { method: 'HEAD' });
      expect(head.headers.get('content-length')).toBe(String(archiveLink!.size));
      const tail = await fetchLink(archiveLink!.url, {
        headers: { Range: 'bytes=100-', 'If-Range': head.headers.get('etag')! },
      });
      expect(tail.status).toBe(206);
      expect((await tail.arrayBuffer()).byteLength).toBe(archiveLink!.size - 100);
      // An altered signature, another archive's id or a later expiry is refused, in the envelope.
      const url = new URL(archiveLink!.url);
      const altered = [
        url.href.replace(/signature=([\w-])/, (_, c: string) => `signature=${c === 'A' ? 'B' : 'A'}`),
        url.href.replace(/expires=(\d+)/, (_, e: string) => `expires=${Number(e) + 1}`),
        url.href.replace(/archive-links\/[0-9a-f-]{36}/, `archive-links/${crypto.randomUUID()}`),
        url.href.replace(/\?.*$/, ''),
      ];
      for (const bad of altered) {
        const res = await fetchLink(bad);
        expect(res.status, bad).toBe(403);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('LINK_INVALID');
      }
      // Handing out links is not a download (a GET changes nothing).
      expect(await h.db.select().from(bundleDownloads).where(eq(bundleDownloads.bundleId, b!.id))).toEqual(
        [],
      );
      // With S3_PUBLIC_ENDPOINT the links name the address download managers reach, signed for it;
      // with OUTPOST_PUBLIC_URL the archive link names the API's public address.
      const publicStore = runStore({
        publicEndpoint: 'https://downloads.example.org',
        bucket: 'outpost-test',
      });
      const ctx = {
        db: h.db,
        orgId: org.id,
        actor: { userId: null, tokenId: null, role: 'viewer' as const },
      };
      const outside = await bundleLinks({
        ctx,
        store: publicStore,
        box: t.secretBox,
        baseUrl: 'https://outpost.example.org/',
        input: { id: b!.id, expiresInSeconds: 60 },
      });
      expect(outside.files[0]!.url.startsWith('https://downloads.example.org/outpost-test/')).toBe(true);
      expect(outside.files[0]!.url).toContain('X-Amz-Signature=');
      expect(outside.files[1]!.url.startsWith('https://outpost.example.org/api/v1/archive-links/')).toBe(
        true,
      );
      // Expired: signed for a time already past.
      vi.useFakeTimers({ now: Date.now() - 3600_000, toFake: ['Date'] });
      const old = await bundleLinks({
        ctx,
        store: publicStore,
        box: t.secretBox,
        baseUrl: 'http://localhost',
        input: { id: b!.id, expiresInSeconds: 60 },
      });
      vi.useRealTimers();
      const expired = await t.app.request(old.files[1]!.url);
      expect(expired.status).toBe(403);
      expect(((await expired.json()) as { error: { code: string } }).error.code).toBe('LINK_EXPIRED');
    });
  });

  describe('error', () => {
    it('should refuse revoked and draft releases, unknown sites and empty selections, writing nothing', async () => {
      const { org, api } = await orgWithApi();
      const site = await makeSite(h.db, org.id, { code: 'KE-E1' });
      const revoked = await publish(api, '1.0.0', v10());
      await api(`/api/v1/releases/${revoked}/revoke`, {
        method: 'POST',
        json: { reason: 'Data loss in the lab module' },
      });
      const e = await expectEnvelope(
        await api('/api/v1/bundles', { method: 'POST', json: { releaseId: revoked, siteIds: [site.id] } }),
        409,
        'RELEASE_REVOKED',
      );
      expect(e.message).toContain('Data loss in the lab module');
      const draft = (await (
        await api('/api/v1/releases', { method: 'POST', json: { version: '2.0.0' } })
      ).json()) as { id: string };
      await expectEnvelope(
        await api('/api/v1/bundles', { method: 'POST', json: { releaseId: draft.id, siteIds: [site.id] } }),
        409,
        'RELEASE_NOT_PUBLISHED',
      );
      // Published without images or a compose template (as the demo seeds its releases): refused at once,
      // not a build that fails later with nothing to try again.
      const [bare] = await h.db
        .insert(releases)
        .values({ orgId: org.id, version: '0.9.0', state: 'published', publishedAt: new Date() })
        .returning();
      const noImages = await expectEnvelope(
        await api('/api/v1/bundles', { method: 'POST', json: { releaseId: bare!.id, siteIds: [site.id] } }),
        422,
        'RELEASE_NOT_BUNDLABLE',
      );
      expect(noImages.message).toBe(
        'Release 0.9.0 has no images, so there is nothing to bundle; publish a release that has both.',
      );
      const ok = await publish(api, '1.1.0', v11());
      const unknown = await expectEnvelope(
        await api('/api/v1/bundles', {
          method: 'POST',
          json: { releaseId: ok, siteCodes: ['KE-E1', 'NOPE-1'] },
        }),
        422,
        'UNKNOWN_SITES',
      );
      expect(unknown.details).toEqual([{ path: 'siteCodes', value: 'NOPE-1', message: 'No such site.' }]);
      await expectEnvelope(
        await api('/api/v1/bundles', { method: 'POST', json: { releaseId: ok } }),
        400,
        'VALIDATION_FAILED',
      );
      await expectEnvelope(
        await api('/api/v1/bundles', {
          method: 'POST',
          json: { releaseId: ok, filter: { region: 'Nowhere' } },
        }),
        422,
        'NO_SITES',
      );
      await expectEnvelope(
        await api('/api/v1/bundles', { method: 'POST', json: { releaseId: ok, siteIds: ['not-a-uuid'] } }),
        400,
      );
      await expectEnvelope(
        await api('/api/v1/bundles', {
          method: 'POST',
          json: { releaseId: ok, siteIds: [site.id], mode: 'sideways' },
        }),
        400,
      );
      await expectEnvelope(
        await api('/api/v1/bundles', {
          method: 'POST',
          body: '{"releaseId":',
          headers: { 'content-type': 'application/json' },
        }),
        400,
      );
      expect((await h.db.select({ n: count() }).from(bundles).where(eq(bundles.orgId, org.id)))[0]!.n).toBe(
        0,
      );
      await expectEnvelope(await api('/api/v1/bundles/not-a-uuid/download'), 400);
    });

    it('should end in failed with a plain message when the registry is unreachable, and build after a retry once it is back', async () => {
      const { org, api } = await orgWithApi();
      const flaky = await startRegistry();
      await pushImage(img.frontend!.dir, '1.0', `${flaky.host}/emr/frontend:1.0`);
      const releaseId = await publish(api, '1.0.0', {
        backend: `${reg.host}/emr/backend:1.0`,
        frontend: `${flaky.host}/emr/frontend:1.0`,
      });
      const site = await makeSite(h.db, org.id, { code: 'KE-DOWN' });
      const [b] = (await ask(api, { releaseId, siteIds: [site.id] })).bundles;
      await flaky.stop();
      await settle();
      const failed = await view(api, b!.id);
      expect(failed.state).toBe('failed');
      expect(failed.error!.code).toBe('REGISTRY_UNREACHABLE');
      expect(failed.error!.message).toMatch(/^The images archive could not be built: .*127\.0\.0\.1/);
      const [job] = await h.db
        .select()
        .from(bundleJobs)
        .where(and(eq(bundleJobs.kind, 'image-archive'), eq(bundleJobs.orgId, org.id)));
      expect(job).toMatchObject({ state: 'failed', attempts: job!.maxAttempts });
      await expectEnvelope(await api(`/api/v1/bundles/${b!.id}/download`), 409, 'BUNDLE_NOT_READY');
      await expectEnvelope(await api(`/api/v1/bundles/${b!.id}/links`), 409, 'BUNDLE_NOT_READY');
      expect((await api(`/api/v1/bundles/${b!.id}/retry`, { method: 'POST' })).status).toBe(200);
      await expectEnvelope(
        await api(`/api/v1/bundles/${b!.id}/retry`, { method: 'POST' }),
        409,
        'BUNDLE_NOT_FAILED',
      );
      expect((await view(api, b!.id)).state).toBe('queued');
      // The registry comes back at the same address (empty: the images are pushed again).
      const again = await startRegistry({ port: Number(flaky.host.split(':')[1]) });
      try {
        await pushImage(img.frontend!.dir, '1.0', `${again.host}/emr/frontend:1.0`);
        await settle();
        expect((await view(api, b!.id)).state).toBe('ready');
      } finally {
        await again.stop();
      }
    });

    it('should refuse to serve an expired bundle and build a new one when asked again', async () => {
      const { org, api } = await orgWithApi();
      const releaseId = await publish(api, '1.0.0', v10());
      const site = await makeSite(h.db, org.id, { code: 'KE-EXP' });
      const [old] = (await ask(api, { releaseId, siteIds: [site.id], expiresInDays: 1 })).bundles;
      await settle();
      await h.db
        .update(bundles)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(eq(bundles.id, old!.id));
      await expectEnvelope(await api(`/api/v1/bundles/${old!.id}/download`), 409, 'BUNDLE_EXPIRED');
      await expectEnvelope(await api(`/api/v1/bundles/${old!.id}/links`), 409, 'BUNDLE_EXPIRED');
      const again = await ask(api, { releaseId, siteIds: [site.id] });
      expect(again).toMatchObject({ created: 1, kept: 0 });
      expect(again.bundles[0]!.id).not.toBe(old!.id);
      await settle();
      const fresh = await view(api, again.bundles[0]!.id);
      expect(fresh.state).toBe('ready');
      const manifest = await verifyFolder((await unpack(api, again.bundles[0]!.id)).dir);
      expect(new Date(manifest.expires).getTime()).toBeGreaterThan(Date.now() + 89 * 86_400_000);
      await expectEnvelope(
        await api('/api/v1/bundles', {
          method: 'POST',
          json: { releaseId, siteIds: [site.id], expiresInDays: 0 },
        }),
        400,
      );
    });

    it('should mark a bundle whose blobs vanished from storage failed, and build it whole again on Try again', async () => {
      const { org, api } = await orgWithApi();
      // A layer of its own: no other test's download has seen its blob in the store.
      const unique = await buildTestImage({
        dir: path.join(work, `gone-${driver}`),
        tag: '1.0',
        layers: [{ files: { 'app/gone.txt': `${driver} ${Date.now()}\n` } }],
      });
      await pushImage(unique.dir, '1.0', `${reg.host}/emr/gone-${driver}:1.0`);
      const releaseId = await publish(api, '1.0.0', {
        backend: `${reg.host}/emr/gone-${driver}:1.0`,
        frontend: `${reg.host}/emr/frontend:1.0`,
      });
      const site = await makeSite(h.db, org.id, { code: 'KE-GONE' });
      const [b] = (await ask(api, { releaseId, siteIds: [site.id] })).bundles;
      await settle();
      expect((await view(api, b!.id)).state).toBe('ready');
      const key = `blobs/sha256/${unique.layers[0]!.digest.slice(7)}`;
      await t.objectStore.client.send(new DeleteObjectCommand({ Bucket: t.objectStore.bucket, Key: key }));

      await expectEnvelope(await api(`/api/v1/bundles/${b!.id}/download`), 503, 'BUNDLE_PARTS_MISSING');
      expect(await view(api, b!.id)).toMatchObject({ state: 'failed', error: { code: 'PARTS_MISSING' } });
      const [archive] = await h.db.select().from(imageArchives).where(eq(imageArchives.releaseId, releaseId));
      expect(archive).toMatchObject({ state: 'failed', errorCode: 'PARTS_MISSING' });

      const retried = await api(`/api/v1/bundles/${b!.id}/retry`, { method: 'POST' });
      expect(retried.status, await retried.clone().text()).toBe(200);
      await settle();
      expect((await view(api, b!.id)).state).toBe('ready');
      // The archive build copied the blob from the registry again; the bundle unpacks and verifies.
      await t.objectStore.client.send(new HeadObjectCommand({ Bucket: t.objectStore.bucket, Key: key }));
      await verifyFolder((await unpack(api, b!.id)).dir);
    });

    it('should fail without retrying when a blob does not match its digest, and store nothing under that digest', async () => {
      const { org, api } = await orgWithApi();
      const bad = await startRegistry();
      try {
        // An image of its own: the store must not already hold (verified) copies of its blobs.
        const unique = await buildTestImage({
          dir: path.join(work, `bad-${driver}`),
          tag: '1.0',
          layers: [{ files: { 'app/unique.txt': `${driver} ${Date.now()}\n` } }],
        });
        await pushImage(unique.dir, '1.0', `${bad.host}/emr/backend:1.0`);
        await pushImage(img.frontend!.dir, '1.0', `${bad.host}/emr/frontend:1.0`);
        const releaseId = await publish(api, '1.0.0', {
          backend: `${bad.host}/emr/backend:1.0`,
          frontend: `${bad.host}/emr/frontend:1.0`,
        });
        const layer = unique.layers[0]!;
        await corruptBlob(bad, layer.digest);
        const site = await makeSite(h.db, org.id, { code: 'KE-BAD' });
        const [b] = (await ask(api, { releaseId, siteIds: [site.id] })).bundles;
        await settle();
        const failed = await view(api, b!.id);
        expect(failed).toMatchObject({ state: 'failed', error: { code: 'DIGEST_MISMATCH' } });
        const [job] = await h.db
          .select()
          .from(bundleJobs)
          .where(and(eq(bundleJobs.kind, 'image-archive'), eq(bundleJobs.orgId, org.id)));
        expect(job).toMatchObject({ state: 'failed', attempts: 1 });
        const stored = await t.objectStore.client
          .send(
            new HeadObjectCommand({
              Bucket: t.objectStore.bucket,
              Key: `blobs/sha256/${layer.digest.slice(7)}`,
            }),
          )
          .catch(() => null);
        expect(stored).toBeNull();
      } finally {
        await bad.stop();
      }
    });

    it('should never mark a bundle ready when the object store refuses writes', async () => {
      const { api, releaseId, b } = await oneBundle('KE-S3');
      // A real S3 server, but a bucket that does not exist: every write is refused.
      const missing = runStore({ bucket: 'no-such-bucket-here' });
      const w = makeRunner({ store: missing });
      await settle(w);
      const failed = await view(api, b!.id);
      expect(failed.state).toBe('failed');
      expect(failed.error!.code).toBe('STORAGE_FAILED');
      const [archive] = await h.db.select().from(imageArchives).where(eq(imageArchives.releaseId, releaseId));
      expect(archive).toMatchObject({ state: 'failed', sha256: null });
    });

    it('should give up on an object store that goes quiet, instead of building forever', async () => {
      const { api, b } = await oneBundle('KE-QUIET');
      // Connections reach the store, then nothing comes back (a stalled path): without an idle timeout
      // the build would wait for ever while its runner kept renewing the job's lease.
      const route = await stallingPath(inject('s3Endpoint'), { passRequests: 0 });
      try {
        await settle(makeRunner({ store: quietStore(route.endpoint) }), 30_000);
        const failed = await view(api, b!.id);
        expect(failed.state).toBe('failed');
        expect(failed.error!.code).toBe('STORAGE_FAILED');
        expect(failed.error!.message).toMatch(/timed out/);
        expect(route.stalled()).toBe(true);
      } finally {
        await route.close();
      }
      // Try again once the store answers: the same bundle builds.
      expect((await api(`/api/v1/bundles/${b!.id}/retry`, { method: 'POST' })).status).toBe(200);
      await settle();
      expect((await view(api, b!.id)).state).toBe('ready');
    });

    it('should answer 503 before a download, and cut it short during one, when the object store goes quiet', async () => {
      const { org, api, b } = await oneBundle('KE-STALL');
      await settle();
      const token = (await makeApiToken(h.db, org.id, 'admin')).token;
      const through = async (passGets: number) => {
        const route = await stallingPath(inject('s3Endpoint'), { passRequests: passGets, method: 'GET' });
        const stalled = await makeTestApp(h, { objectStore: quietStore(route.endpoint) });
        return { route, get: withToken(stalled.app, token) };
      };

      // The site part is read before answering: the store going quiet there is a 503 to try again.
      const before = await through(0);
      try {
        const started = Date.now();
        const res = await before.get(`/api/v1/bundles/${b!.id}/download`);
        await expectEnvelope(res, 503, 'STORAGE_UNAVAILABLE');
        expect(res.headers.get('retry-after')).toBe('60');
        expect(Date.now() - started).toBeLessThan(10_000);
      } finally {
        await before.route.close();
      }

      // Once the body is under way (the site part sent), the first blob never comes: the body breaks
      // off short of its length within about the idle timeout — a cut connection the client resumes
      // with a Range, never a complete-looking download.
      const during = await through(1);
      try {
        const res = await during.get(`/api/v1/bundles/${b!.id}/download`);
        expect(res.status).toBe(200);
        const expected = Number(res.headers.get('content-length'));
        const reader = res.body!.getReader();
        let received = 0;
        const started = Date.now();
        const outcome = await (async () => {
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) return 'ended';
              received += value.length;
            }
          } catch {
            return 'errored';
          }
        })();
        expect(outcome).toBe('errored');
        expect(received).toBeGreaterThan(0);
        expect(received).toBeLessThan(expected);
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(during.route.stalled()).toBe(true);
      } finally {
        await during.route.close();
      }
      // The bundle stays ready (its parts are stored; the store was only slow) and downloads whole.
      expect((await view(api, b!.id)).state).toBe('ready');
      await verifyFolder((await unpack(api, b!.id)).dir);
    });

    it('should take over the job of a runner that died mid-build once its lease lapses', async () => {
      const { api, b } = await oneBundle('KE-DEAD');
      // A runner claims the archive job with a short lease and then never reports back (as if killed).
      const [claimed] = await claimJobs(h.db, {
        runnerId: 'dead-runner',
        kind: 'image-archive',
        limit: 1,
        leaseMs: 300,
      });
      expect(claimed).toBeDefined();
      await h.db
        .update(imageArchives)
        .set({ state: 'building' })
        .where(eq(imageArchives.id, claimed!.targetId));
      // While it holds the lease, nobody else takes it and nothing is ready.
      expect(await makeRunner().runOnce()).toBe(false);
      expect((await view(api, b!.id)).state).toBe('queued');
      await new Promise((r) => setTimeout(r, 400));
      await settle();
      expect((await view(api, b!.id)).state).toBe('ready');
      const [job] = await h.db.select().from(bundleJobs).where(eq(bundleJobs.id, claimed!.id));
      expect(job).toMatchObject({ state: 'done', attempts: 2 });
      await verifyFolder((await unpack(api, b!.id)).dir);
    });
  });

  describe('security', () => {
    it("should make another organisation's bundles invisible (404) and refuse its sites and releases", async () => {
      const mine = await orgWithApi();
      const theirs = await orgWithApi();
      const releaseId = await publish(mine.api, '1.0.0', v10());
      const site = await makeSite(h.db, mine.org.id, { code: 'KE-MINE' });
      const [b] = (await ask(mine.api, { releaseId, siteIds: [site.id] })).bundles;
      await settle();
      for (const p of [
        `/api/v1/bundles/${b!.id}`,
        `/api/v1/bundles/${b!.id}/download`,
        `/api/v1/bundles/${b!.id}/links`,
      ]) {
        await expectEnvelope(await theirs.api(p), 404, 'NOT_FOUND');
      }
      await expectEnvelope(await theirs.api(`/api/v1/bundles/${b!.id}/retry`, { method: 'POST' }), 404);
      expect(((await (await theirs.api('/api/v1/bundles')).json()) as { items: unknown[] }).items).toEqual(
        [],
      );
      await expectEnvelope(
        await theirs.api('/api/v1/bundles', { method: 'POST', json: { releaseId, siteIds: [site.id] } }),
        404,
      );
      const theirRelease = await publish(theirs.api, '1.0.0', v10());
      await expectEnvelope(
        await theirs.api('/api/v1/bundles', {
          method: 'POST',
          json: { releaseId: theirRelease, siteIds: [site.id] },
        }),
        422,
        'UNKNOWN_SITES',
      );
      // Their signing keys are theirs: mine is not listed for them.
      const their = (
        (await (await theirs.api('/api/v1/signing-keys')).json()) as { items: { fingerprint: string }[] }
      ).items;
      const my = (
        (await (await mine.api('/api/v1/signing-keys')).json()) as { items: { fingerprint: string }[] }
      ).items;
      expect(their.map((k) => k.fingerprint)).not.toContain(my[0]!.fingerprint);
    });

    it("should let a coordinator see and download only their sites' bundles, and not ask for builds", async () => {
      const { org, api } = await orgWithApi();
      const releaseId = await publish(api, '1.0.0', v10());
      const mineSite = await makeSite(h.db, org.id, { code: 'KE-CO1' });
      const other = await makeSite(h.db, org.id, { code: 'KE-CO2' });
      const asked = await ask(api, { releaseId, siteIds: [mineSite.id, other.id] });
      await settle();
      const coordinator = await makeUser(h.db, org.id, 'coordinator');
      await h.db
        .insert(coordinatorSites)
        .values({ orgId: org.id, userId: coordinator.id, siteId: mineSite.id });
      const browser = await signIn(t.app, coordinator.email, FACTORY_PASSWORD);
      const list = (await (await browser.request('/api/v1/bundles')).json()) as {
        items: { site: { code: string } }[];
      };
      expect(list.items.map((i) => i.site.code)).toEqual(['KE-CO1']);
      const own = asked.bundles.find((b) => b.siteCode === 'KE-CO1')!;
      const notOwn = asked.bundles.find((b) => b.siteCode === 'KE-CO2')!;
      const dl = await browser.request(`/api/v1/bundles/${own.id}/download`);
      expect(dl.status).toBe(200);
      await dl.arrayBuffer();
      await expectEnvelope(await browser.request(`/api/v1/bundles/${notOwn.id}/download`), 404);
      await expectEnvelope(
        await browser.request('/api/v1/bundles', {
          method: 'POST',
          json: { releaseId, siteIds: [mineSite.id] },
        }),
        403,
      );
      const [row] = await h.db.select().from(bundleDownloads).where(eq(bundleDownloads.bundleId, own.id));
      expect(row!.userId).toBe(coordinator.id);
    });

    it('should keep private keys out of every answer and log, and let only owners and admins rotate', async () => {
      const { org, api } = await orgWithApi();
      const viewer = withToken(t.app, (await makeApiToken(h.db, org.id, 'viewer')).token);
      const operator = withToken(t.app, (await makeApiToken(h.db, org.id, 'operator')).token);
      await expectEnvelope(await viewer('/api/v1/signing-keys/rotate', { method: 'POST' }), 403);
      await expectEnvelope(await operator('/api/v1/signing-keys/rotate', { method: 'POST' }), 403);
      const rotated = await api('/api/v1/signing-keys/rotate', { method: 'POST' });
      const text = await rotated.text();
      expect(text).not.toMatch(/PRIVATE KEY/);
      expect(JSON.stringify(t.logs)).not.toMatch(/PRIVATE KEY/);
      const listed = await (await viewer('/api/v1/signing-keys')).text();
      expect(listed).toContain('PUBLIC KEY');
      expect(listed).not.toMatch(/PRIVATE KEY|sealed/i);
      const audit = (await (await api('/api/v1/audit?limit=10')).json()) as { items: { action: string }[] };
      expect(audit.items.map((i) => i.action)).toContain('signing_key.rotate');
    });
  });
});
