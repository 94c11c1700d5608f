import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, sql } from 'drizzle-orm';
import { guardedFetch } from '@outpost/bundler/guarded-fetch';
import { startDemoRegistry, type DemoRegistry } from './demo-registry.ts';
import { demoImages, tarOf } from '../services/seed/demo-image.ts';
import { DEMO_RELEASE_VERSION, seedDemoRelease } from '../services/seed/demo.ts';
import { registryImageResolver } from '../services/releases/registry-resolver.ts';
import { ImageResolveError } from '../services/releases/resolver.ts';
import { BuildRunner } from '../services/bundles/build-runner.ts';
import { bundleJobs } from '../db/schema/index.ts';
import { createTestDb } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeSite } from '../test/factories.ts';
import { withToken } from '../test/http.ts';

// The demo registry is real HTTP on loopback, read by the bundler's real registry client, skopeo
// and GNU tar; the bundle is built by a real runner into the run's S3 server, on PGlite.
let reg: DemoRegistry;
let work: string;
const images = demoImages();
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const policy = (host: string) => ({ allowInsecure: [host], fetch: guardedFetch([host]) });

beforeAll(async () => {
  reg = await startDemoRegistry(images);
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-demo-registry-'));
});
afterAll(async () => {
  await reg?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe('demo images', () => {
  it('should make the same digests every time', () => {
    expect(demoImages().map((i) => i.manifest.digest)).toEqual(images.map((i) => i.manifest.digest));
  });

  it('should write a tar that GNU tar lists and reads', async () => {
    const file = path.join(work, 'layer.tar');
    await fs.writeFile(file, tarOf({ 'etc/a.txt': 'hello\n', 'b.txt': 'bee' }));
    expect(execFileSync('tar', ['-tf', file]).toString().trim().split('\n')).toEqual(['b.txt', 'etc/a.txt']);
    expect(execFileSync('tar', ['-xOf', file, 'etc/a.txt']).toString()).toBe('hello\n');
  });
});

describe('demo registry', () => {
  const url = (p: string) => `http://${reg.host}${p}`;

  it('should answer the API version check', async () => {
    const res = await fetch(url('/v2/'));
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('should serve a manifest by tag and by digest with its media type and digest', async () => {
    const [img] = images;
    for (const ref of [img!.tag, img!.manifest.digest]) {
      const res = await fetch(url(`/v2/${img!.repository}/manifests/${ref}`));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(res.headers.get('docker-content-digest')).toBe(img!.manifest.digest);
      expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(img!.manifest.digest);
    }
    const head = await fetch(url(`/v2/${img!.repository}/manifests/${img!.tag}`), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(img!.manifest.digest);
    expect(Number(head.headers.get('content-length'))).toBe(img!.manifest.bytes.length);
  });

  it('should serve blobs by digest, HEAD included', async () => {
    const [img] = images;
    const res = await fetch(url(`/v2/${img!.repository}/blobs/${img!.layer.digest}`));
    expect(res.status).toBe(200);
    expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(img!.layer.digest);
    const head = await fetch(url(`/v2/${img!.repository}/blobs/${img!.config.digest}`), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(img!.config.bytes.length);
  });

  it('should answer 404 with a registry error for an unknown tag, blob or repository', async () => {
    const [img] = images;
    const tag = await fetch(url(`/v2/${img!.repository}/manifests/9.9`));
    expect(tag.status).toBe(404);
    expect(await tag.json()).toMatchObject({ errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    const blob = await fetch(url(`/v2/${img!.repository}/blobs/sha256:${'0'.repeat(64)}`));
    expect(blob.status).toBe(404);
    expect(await blob.json()).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] });
    // A blob of another repository is not served under this one.
    const other = await fetch(url(`/v2/demo/elsewhere/blobs/${img!.layer.digest}`));
    expect(other.status).toBe(404);
  });

  it('should refuse writes', async () => {
    const res = await fetch(url('/v2/demo/emr-backend/manifests/evil'), { method: 'PUT', body: '{}' });
    expect(res.status).toBe(405);
  });

  it('should be resolved by the registry client only when its address is allowed', async () => {
    const ref = `${reg.host}/demo/emr-backend:1.0`;
    const allowed = await registryImageResolver(policy(reg.host)).resolve({
      reference: ref,
      platform: 'linux/amd64',
    });
    expect(allowed.digest).toBe(images[0]!.manifest.digest);
    expect(allowed.layers.map((l) => l.digest)).toEqual([images[0]!.layer.digest]);
    const refused = registryImageResolver({ allowInsecure: [], fetch: guardedFetch([]) }).resolve({
      reference: ref,
      platform: 'linux/amd64',
    });
    await expect(refused).rejects.toBeInstanceOf(ImageResolveError);
    await expect(refused).rejects.toMatchObject({ kind: 'forbidden-address' });
  });
});

describe('demo release', () => {
  it('should be published pinned in the demo registry, and bundle for a demo site into images skopeo reads', async () => {
    const h = await createTestDb('pglite');
    try {
      const t = await makeTestApp(h);
      const org = await makeOrg(h.db);
      const resolver = registryImageResolver(policy(reg.host));
      const seeded = await seedDemoRelease(h.db, { box: t.secretBox, resolver, registryHost: reg.host });
      expect(seeded).toMatchObject({ version: DEMO_RELEASE_VERSION });
      // Seeding again changes nothing.
      expect(await seedDemoRelease(h.db, { box: t.secretBox, resolver, registryHost: reg.host })).toBeNull();

      const api = withToken(t.app, (await makeApiToken(h.db, org.id, 'admin')).token);
      const release = (await (await api(`/api/v1/releases/${seeded!.releaseId}`)).json()) as {
        state: string;
        images: { name: string; digest: string }[];
      };
      expect(release.state).toBe('published');
      expect(release.images.map((i) => [i.name, i.digest])).toEqual([
        ['backend', images[0]!.manifest.digest],
        ['frontend', images[1]!.manifest.digest],
      ]);

      const site = await makeSite(h.db, org.id, { code: 'DEMO-1' });
      const asked = await api('/api/v1/bundles', {
        method: 'POST',
        json: { releaseId: seeded!.releaseId, siteIds: [site.id] },
      });
      expect(asked.status, await asked.clone().text()).toBe(202);
      const {
        bundles: [b],
      } = (await asked.json()) as { bundles: { id: string }[] };

      const runner = new BuildRunner({
        db: h.db,
        store: t.objectStore,
        secretBox: t.secretBox,
        logger: () => {},
        registry: { retries: 0, backoffMs: 10, timeoutMs: 5000, ...policy(reg.host) },
        backoffMs: 10,
        leaseMs: 10_000,
        pollMs: 20,
        waitMs: 10,
      });
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (await runner.runOnce()) continue;
        const [open] = await h.db
          .select({ n: count() })
          .from(bundleJobs)
          .where(sql`state in ('queued', 'running')`);
        if (open!.n === 0) break;
        if (Date.now() > deadline) throw new Error('the build queue did not settle');
        await new Promise((r) => setTimeout(r, 20));
      }
      const view = (await (await api(`/api/v1/bundles/${b!.id}`)).json()) as {
        state: string;
        error: unknown;
      };
      expect(view).toMatchObject({ state: 'ready', error: null });

      const res = await api(`/api/v1/bundles/${b!.id}/download`);
      expect(res.status).toBe(200);
      const dir = await fs.mkdtemp(path.join(work, 'bundle-'));
      await fs.writeFile(path.join(dir, 'bundle.tar'), new Uint8Array(await res.arrayBuffer()));
      execFileSync('tar', ['-xf', 'bundle.tar'], { cwd: dir });
      const root = path.join(dir, `outpost-DEMO-1-${DEMO_RELEASE_VERSION}`);
      const compose = await fs.readFile(path.join(root, 'compose/docker-compose.yml'), 'utf8');
      expect(compose).toContain(`image: ${reg.host}/demo/emr-backend@${images[0]!.manifest.digest}`);
      expect(compose).toContain(`image: ${reg.host}/demo/emr-frontend@${images[1]!.manifest.digest}`);

      // The images archive loads in a real consumer: skopeo reads each image and checks its layers.
      const tar = path.join(dir, 'images.tar');
      execFileSync('sh', ['-c', 'zcat "$0" > "$1"', path.join(root, 'images/images.tgz'), tar]);
      for (const img of images) {
        const inspected = JSON.parse(
          execFileSync('skopeo', [
            'inspect',
            `docker-archive:${tar}:${reg.host}/${img.repository}:${img.tag}`,
          ]).toString(),
        );
        const diffId = (JSON.parse(img.config.bytes.toString()) as { rootfs: { diff_ids: string[] } }).rootfs
          .diff_ids;
        expect(inspected.Layers).toEqual(diffId);
      }
    } finally {
      await h.close();
    }
  }, 120_000);
});
