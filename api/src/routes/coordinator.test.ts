// A coordinator's way to a bundle: the curl link, the checksum and the README, with real registry,
// runner, object store and databases (as routes/bundles.test.ts), and curl itself on the link.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { buildTestImage, pushImage, startRegistry, type TestRegistry } from '@outpost/bundler/test-support';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeSite, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { bundleDownloads, coordinatorSites, memberships } from '../db/schema/index.ts';
import type { BuildRunner } from '../services/bundles/build-runner.ts';
import { settleBuilds, testBuildRunner } from '../test/build-runner.ts';
import { ONE_IMAGE_TEMPLATE } from '../test/compose.ts';
import { readmeFromTar } from '../services/bundles/coordinator.ts';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';

// Asynchronous: curl talks to this very process, which must keep serving meanwhile.
const run = promisify(execFile);

let reg: TestRegistry;
let work: string;

beforeAll(async () => {
  reg = await startRegistry();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-coord-'));
  const image = await buildTestImage({
    dir: path.join(work, 'app'),
    tag: '1.0',
    layers: [{ files: { 'app/hello.txt': 'hello\n' } }],
  });
  await pushImage(image.dir, '1.0', `${reg.host}/emr/app:1.0`);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe.each(TEST_DRIVERS)('coordinator bundle routes on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  let runner: BuildRunner;
  let server: ReturnType<typeof serve>;
  let base: string;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
    runner = testBuildRunner(h.db, t);
    // curl needs a real socket: the same app served on loopback.
    server = serve({ fetch: t.app.fetch, hostname: '127.0.0.1', port: 0 });
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await h.close();
  });

  const settle = () => settleBuilds(h.db, runner);

  /** An organisation with 1.0.0 published, two sites, a coordinator of the first, both bundles built. */
  async function setup() {
    const org = await makeOrg(h.db);
    const api = withToken(t.app, (await makeApiToken(h.db, org.id, 'admin')).token);
    const rel = await (
      await api('/api/v1/releases', {
        method: 'POST',
        json: { version: '1.0.0', composeTemplate: ONE_IMAGE_TEMPLATE },
      })
    ).json();
    expect(
      (
        await api(`/api/v1/releases/${rel.id}/images`, {
          method: 'POST',
          json: { name: 'app', reference: `${reg.host}/emr/app:1.0` },
        })
      ).status,
    ).toBe(201);
    expect((await api(`/api/v1/releases/${rel.id}/publish`, { method: 'POST' })).status).toBe(200);
    const mine = await makeSite(h.db, org.id, { name: 'Kisumu Clinic' });
    const other = await makeSite(h.db, org.id);
    const asked = await (
      await api('/api/v1/bundles', {
        method: 'POST',
        json: { releaseId: rel.id, siteIds: [mine.id, other.id] },
      })
    ).json();
    await settle();
    const coord = await makeUser(h.db, org.id, 'coordinator');
    await h.db.insert(coordinatorSites).values({ orgId: org.id, userId: coord.id, siteId: mine.id });
    const c = await signIn(t.app, coord.email, coord.password);
    const idOf = (siteId: string) =>
      asked.bundles.find((b: { siteId: string }) => b.siteId === siteId).id as string;
    return { org, api, c, coord, mine, other, mineBundle: idOf(mine.id), otherBundle: idOf(other.id) };
  }

  it('should give a link that curl downloads (and resumes) without a session, whose bytes match the checksum', async () => {
    const { c, mineBundle, org } = await setup();
    const link = await (await c.request(`/api/v1/bundles/${mineBundle}/site-link`)).json();
    const url = link.url.replace(/^http:\/\/localhost/, base);
    const sum = await (await c.request(`/api/v1/bundles/${mineBundle}/checksum`)).json();
    expect(sum.size).toBe(link.size);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-curl-'));
    try {
      const file = path.join(dir, link.fileName);
      // A first, broken-off download: only the first 1000 bytes arrive; curl -C - carries on from there.
      await run('curl', ['-sf', '-r', '0-999', '-o', file, url]);
      expect((await fs.stat(file)).size).toBe(1000);
      await run('curl', ['-sf', '-C', '-', '-o', file, url]);
      const bytes = await fs.readFile(file);
      expect(bytes.length).toBe(link.size);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(sum.sha256);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    // The downloads count under the coordinator; working out the checksum is not one.
    const downloads = await h.db
      .select()
      .from(bundleDownloads)
      .where(eq(bundleDownloads.bundleId, mineBundle));
    expect(downloads.length).toBe(2);
    expect(new Set(downloads.map((d) => d.orgId))).toEqual(new Set([org.id]));
  });

  it("should show the bundle's own README.txt", async () => {
    const { c, mineBundle } = await setup();
    const res = await c.request(`/api/v1/bundles/${mineBundle}/readme`);
    expect(res.status).toBe(200);
    const { text } = await res.json();
    expect(text).toContain('Kisumu Clinic');
    expect(text).toContain('sh scripts/install');
    // Compared with the README inside the downloaded bundle itself.
    const all = new Uint8Array(
      await (await c.request(`/api/v1/bundles/${mineBundle}/download`)).arrayBuffer(),
    );
    expect(readmeFromTar(all)).toBe(text);
  });

  it('should refuse a changed, expired or unknown link, and one whose maker lost access', async () => {
    const { c, mineBundle, coord, org } = await setup();
    const link = await (await c.request(`/api/v1/bundles/${mineBundle}/site-link`)).json();
    const path0 = new URL(link.url).pathname + new URL(link.url).search;
    await expectEnvelope(
      await t.app.request(path0.replace(/signature=[^&]+/, 'signature=AAAA')),
      403,
      'LINK_INVALID',
    );
    await expectEnvelope(
      await t.app.request(path0.replace(/expires=\d+/, `expires=${Math.floor(Date.now() / 1000) + 99999}`)),
      403,
      'LINK_INVALID',
    );
    await expectEnvelope(
      await t.app.request(path0.replace(mineBundle, '00000000-0000-0000-0000-000000000000')),
      403,
      'LINK_INVALID',
    );
    await expectEnvelope(
      await t.app.request(`/api/v1/bundle-links/${mineBundle}/x.tar`),
      403,
      'LINK_INVALID',
    );
    expect((await t.app.request(path0, { method: 'HEAD' })).status).toBe(200);
    await h.db.delete(coordinatorSites).where(eq(coordinatorSites.userId, coord.id));
    await expectEnvelope(await t.app.request(path0), 403, 'LINK_INVALID');
    await h.db.delete(memberships).where(eq(memberships.userId, coord.id));
    await expectEnvelope(await t.app.request(path0), 403, 'LINK_INVALID');
    void org;
    await expectEnvelope(await c.request(`/api/v1/bundles/${mineBundle}/site-link?expiresInSeconds=5`), 401);
  });

  it("should not let a coordinator see, link, hash or read another site's bundle, nor another organisation", async () => {
    const { c, otherBundle, mineBundle } = await setup();
    for (const p of ['', '/site-link', '/checksum', '/readme', '/download', '/links']) {
      await expectEnvelope(await c.request(`/api/v1/bundles/${otherBundle}${p}`), 404, 'NOT_FOUND');
    }
    const list = await (await c.request('/api/v1/bundles')).json();
    expect(list.items.map((b: { id: string }) => b.id)).toEqual([mineBundle]);
    const sites = await (await c.request('/api/v1/sites')).json();
    expect(sites.items).toHaveLength(1);
    const stranger = await setup();
    for (const p of ['/site-link', '/checksum', '/readme']) {
      await expectEnvelope(await stranger.api(`/api/v1/bundles/${mineBundle}${p}`), 404, 'NOT_FOUND');
    }
  });
});
