import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeSite } from '../test/factories.ts';
import { expectEnvelope, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { registryCredentials, releaseImages, releases } from '../db/schema/index.ts';
import {
  buildMultiArchImage,
  allowTestHost,
  freePort,
  pushImage,
  startRegistry,
  type TestImage,
  type TestRegistry,
} from '@outpost/bundler/test-support';
import { pushEmrImages } from '../test/emr-images.ts';

// Real registries (Debian docker-registry on loopback), images built by hand and pushed with skopeo.
let open: TestRegistry;
let locked: TestRegistry;
let work: string;
const img: Record<string, TestImage> = {};
let multiDigests: Record<string, string>;
const PRIVATE = { username: 'ministry', password: 'registry-password-1' };

beforeAll(async () => {
  [open, locked] = await Promise.all([startRegistry(), startRegistry({ htpasswd: PRIVATE })]);
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-release-images-'));
  Object.assign(img, await pushEmrImages(work, open.host));
  const multi = await buildMultiArchImage({
    dir: path.join(work, 'gateway'),
    tag: '1.0',
    layers: [{ files: { 'etc/gateway.conf': 'listen 80;\n' } }],
  });
  multiDigests = Object.fromEntries(multi.images.map((i) => [i.platform.architecture, i.digest]));
  await pushImage(multi.dir, '1.0', `${open.host}/emr/gateway:1.0`);
  await pushImage(img.frontend!.dir, '1.0', `${locked.host}/private/frontend:1.0`, PRIVATE);
}, 120_000);

afterAll(async () => {
  await Promise.all([open?.stop(), locked?.stop()]);
  if (work) await fs.rm(work, { recursive: true, force: true });
});

const TEMPLATE = `services:
  backend:
    image: {{ image.backend }}
    environment:
      SITE_CODE: {{ site.code }}
      SITE_NAME: {{ site.name }}
      DB_PASSWORD: \${DB_PASSWORD}
    healthcheck:
      test: ["CMD", "true"]
  frontend:
    image: {{ image.frontend }}
    ports:
      - "80:80"
    depends_on:
      backend:
        condition: service_healthy
`;

describe.each(TEST_DRIVERS)('releases on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  async function operator() {
    const org = await makeOrg(h.db);
    return { org, api: withToken(t.app, (await makeApiToken(h.db, org.id, 'admin')).token) };
  }
  async function draft(
    api: ReturnType<typeof withToken>,
    version: string,
    extra: Record<string, unknown> = {},
  ) {
    const res = await api('/api/v1/releases', { method: 'POST', json: { version, ...extra } });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as { id: string };
  }
  const add = (api: ReturnType<typeof withToken>, id: string, name: string, reference: string) =>
    api(`/api/v1/releases/${id}/images`, { method: 'POST', json: { name, reference } });

  describe('happy', () => {
    it('should pin images by digest, show sizes, render the compose file, publish, and then refuse changes', async () => {
      const { org, api } = await operator();
      const r = await draft(api, '1.0.0', { channel: 'pilot', notes: '# First\nForms for ANC.' });
      expect((await add(api, r.id, 'backend', `${open.host}/emr/backend:1.0`)).status).toBe(201);
      const withBoth = await (await add(api, r.id, 'frontend', `${open.host}/emr/frontend:1.0`)).json();
      const backend = withBoth.images.find((i: { name: string }) => i.name === 'backend');
      expect(backend).toMatchObject({
        digest: img.backend10!.digest,
        platform: 'linux/amd64',
        pinned: `${open.host}/emr/backend@${img.backend10!.digest}`,
      });
      expect(backend.layers.map((l: { digest: string }) => l.digest)).toEqual(
        img.backend10!.layers.map((l) => l.digest),
      );
      // The shared base layer counts once in the download size.
      const sizes = new Map<string, number>();
      for (const i of [img.backend10!, img.frontend!])
        for (const b of [i.config, ...i.layers]) sizes.set(b.digest, b.size);
      expect(withBoth.totalSize).toBe([...sizes.values()].reduce((a, b) => a + b, 0));

      await api(`/api/v1/releases/${r.id}`, { method: 'PATCH', json: { composeTemplate: TEMPLATE } });
      const site = await makeSite(h.db, org.id, { code: 'KE-001', name: 'Kibera: "Olympic" #2' });
      const preview = await (await api(`/api/v1/releases/${r.id}/compose?siteId=${site.id}`)).json();
      expect(preview.ok).toBe(true);
      expect(preview.rendered).toContain(`image: ${open.host}/emr/backend@${img.backend10!.digest}`);
      expect(preview.rendered).toContain('${DB_PASSWORD}');

      const pub = await api(`/api/v1/releases/${r.id}/publish`, { method: 'POST' });
      expect(pub.status, await pub.clone().text()).toBe(200);
      expect((await pub.json()).state).toBe('published');
      await expectEnvelope(
        await api(`/api/v1/releases/${r.id}`, { method: 'PATCH', json: { notes: 'changed' } }),
        409,
      );
      await expectEnvelope(await add(api, r.id, 'extra', `${open.host}/emr/frontend:1.0`), 409);
      await expectEnvelope(await api(`/api/v1/releases/${r.id}`, { method: 'DELETE' }), 409);
    });

    it('should choose the platform from a multi-arch index', async () => {
      const { api } = await operator();
      const amd = await draft(api, '1.0.0');
      const arm = await draft(api, '1.0.1', { platform: 'linux/arm64' });
      const a = await (await add(api, amd.id, 'gateway', `${open.host}/emr/gateway:1.0`)).json();
      const b = await (await add(api, arm.id, 'gateway', `${open.host}/emr/gateway:1.0`)).json();
      expect(a.images[0]).toMatchObject({ digest: multiDigests.amd64, platform: 'linux/amd64' });
      expect(b.images[0]).toMatchObject({ digest: multiDigests.arm64, platform: 'linux/arm64/v8' });
      expect(a.images[0].indexDigest).toBe(b.images[0].indexDigest);
      const s390 = await draft(api, '1.0.2', { platform: 'linux/s390x' });
      const e = await expectEnvelope(
        await add(api, s390.id, 'gateway', `${open.host}/emr/gateway:1.0`),
        422,
        'PLATFORM_NOT_FOUND',
      );
      expect(e.message).toMatch(/arm64/);
    });

    it('should order releases by version and show what changed since the previous one', async () => {
      const { api } = await operator();
      for (const [v, backendTag] of [
        ['1.9.0', '1.0'],
        ['1.10.0', '1.1'],
      ] as const) {
        const r = await draft(api, v, { composeTemplate: TEMPLATE });
        await add(api, r.id, 'backend', `${open.host}/emr/backend:${backendTag}`);
        await add(api, r.id, 'frontend', `${open.host}/emr/frontend:1.0`);
        expect((await api(`/api/v1/releases/${r.id}/publish`, { method: 'POST' })).status).toBe(200);
      }
      await draft(api, '2.0.0-rc.1');
      const list = await (await api('/api/v1/releases')).json();
      expect(list.items.map((r: { version: string }) => r.version)).toEqual([
        '2.0.0-rc.1',
        '1.10.0',
        '1.9.0',
      ]);
      expect(list.items.map((r: { behindLatest: number }) => r.behindLatest)).toEqual([0, 0, 1]);
      expect(list.items.map((r: { imageCount: number }) => r.imageCount)).toEqual([0, 2, 2]);
      // One version, as the CLI asks for it (a leading v is what people type).
      for (const asked of ['1.10.0', 'v1.10.0']) {
        const one = await (await api(`/api/v1/releases?version=${asked}`)).json();
        expect(
          one.items.map((r: { version: string; behindLatest: number }) => [r.version, r.behindLatest]),
        ).toEqual([['1.10.0', 0]]);
      }
      expect((await (await api('/api/v1/releases?version=1.10')).json()).items).toEqual([]);
      await expectEnvelope(await api(`/api/v1/releases?version=${'9'.repeat(65)}`), 400, 'VALIDATION_FAILED');
      // The list's size is the release page's: the shared base layer counted once.
      const page = await (await api(`/api/v1/releases/${list.items[1].id}`)).json();
      expect(list.items[1].totalSize).toBe(page.totalSize);
      expect(page.totalSize).toBeGreaterThan(0);
      const newest = list.items[1];
      const diff = await (await api(`/api/v1/releases/${newest.id}/diff`)).json();
      expect(diff.from.version).toBe('1.9.0');
      expect(diff.added).toEqual([]);
      expect(diff.removed).toEqual([]);
      expect(diff.changed.map((c: { name: string }) => c.name)).toEqual(['backend']);
      // Only the changed app layer and the new config are new bytes; the base layer is shared.
      const b11 = img.backend11!;
      expect(diff.deltaSize).toBe(b11.config.size + b11.layers[1]!.size);
      expect(diff.newLayers).toBe(1); // the config is new bytes too, but not a layer
    });

    it('should deprecate and revoke, recording the reason, and flag sites running the revoked release', async () => {
      const { org, api } = await operator();
      const r = await draft(api, '3.0.0', { composeTemplate: TEMPLATE });
      await add(api, r.id, 'backend', `${open.host}/emr/backend:1.0`);
      await add(api, r.id, 'frontend', `${open.host}/emr/frontend:1.0`);
      await api(`/api/v1/releases/${r.id}/publish`, { method: 'POST' });
      expect((await (await api(`/api/v1/releases/${r.id}/deprecate`, { method: 'POST' })).json()).state).toBe(
        'deprecated',
      );
      const revoked = await (
        await api(`/api/v1/releases/${r.id}/revoke`, {
          method: 'POST',
          json: { reason: 'Data loss in the lab module' },
        })
      ).json();
      expect(revoked).toMatchObject({ state: 'revoked', revokedReason: 'Data loss in the lab module' });
      const site = await makeSite(h.db, org.id, {
        reportedVersion: '3.0.0',
        reportedReleaseId: r.id,
        reportedStatus: 'healthy',
        reportedAt: new Date(),
      });
      expect((await (await api(`/api/v1/sites/${site.id}`)).json()).status).toBe('revoked');
      expect(
        (await (await api('/api/v1/sites?status=revoked')).json()).items.map((x: { id: string }) => x.id),
      ).toEqual([site.id]);
      expect((await (await api('/api/v1/sites/summary')).json()).byStatus.revoked).toBe(1);
      await expectEnvelope(await api(`/api/v1/releases/${r.id}/deprecate`, { method: 'POST' }), 409);
    });

    it("should use the organisation's credentials for a private registry", async () => {
      const { api } = await operator();
      const r = await draft(api, '1.0.0');
      const ref = `${locked.host}/private/frontend:1.0`;
      await expectEnvelope(await add(api, r.id, 'frontend', ref), 422, 'REGISTRY_AUTH_FAILED');
      const saved = await api('/api/v1/registry-credentials', {
        method: 'PUT',
        json: { registry: `http://${locked.host}/`, username: PRIVATE.username, password: 'wrong-password' },
      });
      expect(saved.status).toBe(200);
      await expectEnvelope(await add(api, r.id, 'frontend', ref), 422, 'REGISTRY_AUTH_FAILED');
      await api('/api/v1/registry-credentials', {
        method: 'PUT',
        json: { registry: locked.host, ...PRIVATE },
      });
      const ok = await add(api, r.id, 'frontend', ref);
      expect(ok.status, await ok.clone().text()).toBe(201);
      expect((await ok.json()).images[0].digest).toBe(img.frontend!.digest);
    });
  });

  describe('error', () => {
    it('should give clear 4xx answers for unknown tags, unknown images, a registry that is down and bad references', async () => {
      const { api } = await operator();
      const r = await draft(api, '1.0.0');
      const tag = await expectEnvelope(
        await add(api, r.id, 'backend', `${open.host}/emr/backend:9.9`),
        422,
        'IMAGE_NOT_FOUND',
      );
      expect(tag.message).toMatch(/9\.9/);
      await expectEnvelope(
        await add(api, r.id, 'backend', `${open.host}/emr/nothing-here:1.0`),
        422,
        'IMAGE_NOT_FOUND',
      );
      // An allow-listed address with nothing listening is unreachable; one not on the list is never tried.
      const port = await freePort();
      const disallow = allowTestHost(`127.0.0.1:${port}`);
      const down = await expectEnvelope(
        await add(api, r.id, 'backend', `127.0.0.1:${port}/emr/backend:1.0`),
        422,
        'REGISTRY_UNREACHABLE',
      ).finally(disallow);
      expect(down.message).toMatch(/reach/i);
      const refused = await expectEnvelope(
        await add(api, r.id, 'backend', `127.0.0.1:${port}/emr/backend:1.0`),
        422,
        'REGISTRY_NOT_ALLOWED',
      );
      expect(refused.message).toBe(`127.0.0.1:${port} is not an allowed registry address`);
      await expectEnvelope(await add(api, r.id, 'backend', 'UPPER/Case:bad tag'), 400);
      const [{ n }] = (await h.db
        .select({ n: count() })
        .from(releaseImages)
        .where(eq(releaseImages.releaseId, r.id))) as [{ n: number }];
      expect(n).toBe(0);
    });

    it('should refuse a bad version, a duplicate version, and a duplicate image name', async () => {
      const { api } = await operator();
      await expectEnvelope(
        await api('/api/v1/releases', { method: 'POST', json: { version: 'v-two' } }),
        400,
        'VALIDATION_FAILED',
      );
      const r = await draft(api, '1.2.3');
      await expectEnvelope(
        await api('/api/v1/releases', { method: 'POST', json: { version: '1.2.3' } }),
        409,
      );
      await add(api, r.id, 'backend', `${open.host}/emr/backend:1.0`);
      await expectEnvelope(await add(api, r.id, 'backend', `${open.host}/emr/backend:1.1`), 409);
      await expectEnvelope(
        await api('/api/v1/releases', { method: 'POST', json: { version: '1.0.0', unknown: 1 } }),
        400,
      );
    });

    it('should not publish without images or with a broken template, and say which line', async () => {
      const { api } = await operator();
      const r = await draft(api, '1.0.0');
      const empty = await (await api(`/api/v1/releases/${r.id}/publish`, { method: 'POST' })).json();
      expect(empty.error.code).toBe('NOT_PUBLISHABLE');
      expect(JSON.stringify(empty.error.details)).toMatch(/image/);
      await add(api, r.id, 'backend', `${open.host}/emr/backend:1.0`);
      await api(`/api/v1/releases/${r.id}`, {
        method: 'PATCH',
        json: {
          composeTemplate:
            'services:\n  backend:\n    image: {{ image.backend }}\n  web:\n    image: nginx:latest\n',
        },
      });
      const res = await api(`/api/v1/releases/${r.id}/publish`, { method: 'POST' });
      const body = await res.json();
      expect(res.status).toBe(422);
      expect(body.error.details[0]).toMatchObject({ line: 5 });
      const [row] = await h.db.select().from(releases).where(eq(releases.id, r.id));
      expect(row!.state).toBe('draft');
    });
  });

  describe('security', () => {
    it("should make another organisation's releases invisible and keep its credentials to itself", async () => {
      const a = await operator();
      const b = await operator();
      const r = await draft(a.api, '1.0.0');
      await expectEnvelope(await b.api(`/api/v1/releases/${r.id}`), 404);
      await expectEnvelope(await add(b.api, r.id, 'x', `${open.host}/emr/backend:1.0`), 404);
      await expectEnvelope(await b.api(`/api/v1/releases/${r.id}/publish`, { method: 'POST' }), 404);
      expect((await (await b.api('/api/v1/releases')).json()).items).toEqual([]);
      expect((await (await b.api('/api/v1/releases?version=1.0.0')).json()).items).toEqual([]);
      expect(
        (await (await a.api('/api/v1/releases?version=1.0.0')).json()).items.map((x: { id: string }) => x.id),
      ).toEqual([r.id]);

      await a.api('/api/v1/registry-credentials', {
        method: 'PUT',
        json: { registry: locked.host, ...PRIVATE },
      });
      const list = await (await a.api('/api/v1/registry-credentials')).text();
      expect(list).toContain(locked.host);
      expect(list).not.toContain(PRIVATE.password);
      const [row] = await h.db
        .select()
        .from(registryCredentials)
        .where(eq(registryCredentials.orgId, a.org.id));
      expect(row!.secretSealed).not.toContain(PRIVATE.password);
      expect(JSON.stringify(t.logs)).not.toContain(PRIVATE.password);
      // B's release cannot pull through A's credentials.
      const rb = await draft(b.api, '1.0.0');
      await expectEnvelope(
        await add(b.api, rb.id, 'frontend', `${locked.host}/private/frontend:1.0`),
        422,
        'REGISTRY_AUTH_FAILED',
      );
      const cred = (await (await a.api('/api/v1/registry-credentials')).json()).items[0];
      await expectEnvelope(await b.api(`/api/v1/registry-credentials/${cred.id}`, { method: 'DELETE' }), 404);
    });

    it('should let viewers read releases but not change them', async () => {
      const { org, api } = await operator();
      const r = await draft(api, '1.0.0');
      const viewer = withToken(t.app, (await makeApiToken(h.db, org.id, 'viewer')).token);
      expect((await viewer(`/api/v1/releases/${r.id}`)).status).toBe(200);
      await expectEnvelope(
        await viewer('/api/v1/releases', { method: 'POST', json: { version: '9.0.0' } }),
        403,
      );
      await expectEnvelope(await add(viewer, r.id, 'b', `${open.host}/emr/backend:1.0`), 403);
      await expectEnvelope(await viewer('/api/v1/registry-credentials'), 403);
    });
  });
});
