import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeRelease, makeSite } from '../test/factories.ts';
import { expectEnvelope, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { siteReports, sites } from '../db/schema/index.ts';
import { sha256Hex } from '../lib/crypto.ts';

describe.each(TEST_DRIVERS)('check-ins on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h, { checkinsPerMinute: 5 });
  });
  afterAll(async () => {
    await h.close();
  });

  /** A site with a freshly issued device token, issued through the API as an operator would. */
  async function siteWithToken(fields: Parameters<typeof makeSite>[2] = {}) {
    const org = await makeOrg(h.db);
    const op = withToken(t.app, (await makeApiToken(h.db, org.id, 'operator')).token);
    const site = await makeSite(h.db, org.id, fields);
    const res = await op(`/api/v1/sites/${site.id}/device-token`, { method: 'POST' });
    expect(res.status).toBe(201);
    const { token } = await res.json();
    return { org, site, op, token: token as string, device: withToken(t.app, token) };
  }

  const beat = (over: Record<string, unknown> = {}) => ({
    version: '2.0.0',
    status: 'healthy',
    idempotencyKey: `hb-${crypto.randomUUID()}`,
    healthChecks: [
      { name: 'openmrs-http', ok: true },
      { name: 'db', ok: true },
    ],
    dockerVersion: '27.3.1',
    imageStore: 'containerd',
    composeVersion: '2.29.7',
    diskFreeBytes: 52_000_000_000,
    ...over,
  });

  describe('happy', () => {
    it('should append a report and update the site in one go, and tell the site its target', async () => {
      const { org, site, device, op } = await siteWithToken();
      const r2 = await makeRelease(h.db, org.id, '2.0.0');
      await h.db.update(sites).set({ targetReleaseId: r2.id }).where(eq(sites.id, site.id));
      const res = await device('/api/v1/checkin', { method: 'POST', json: beat() });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toMatchObject({ duplicate: false, site: { code: site.code }, targetVersion: '2.0.0' });
      const s = await (await op(`/api/v1/sites/${site.id}`)).json();
      expect(s).toMatchObject({
        reportedVersion: '2.0.0',
        reportedReleaseId: r2.id,
        reportedStatus: 'healthy',
        status: 'on_target',
      });
      const hist = await (await op(`/api/v1/sites/${site.id}/reports`)).json();
      expect(hist.items[0]).toMatchObject({
        source: 'heartbeat',
        imageStore: 'containerd',
        diskFreeBytes: 52_000_000_000,
      });
      expect(hist.items[0].healthChecks).toHaveLength(2);
    });

    it('should store the content package, scripts and compose file the site reports, on the report and the site', async () => {
      const { site, device, op } = await siteWithToken();
      const sha = 'ab'.repeat(32);
      const res = await device('/api/v1/checkin', {
        method: 'POST',
        json: beat({ contentPackageVersion: '2024.11', edgeScriptsVersion: '1.4.0', composeSha256: sha }),
      });
      expect(res.status).toBe(200);
      const s = await (await op(`/api/v1/sites/${site.id}`)).json();
      expect(s).toMatchObject({
        reportedContentVersion: '2024.11',
        reportedScriptsVersion: '1.4.0',
        reportedComposeSha256: sha,
      });
      const hist = await (await op(`/api/v1/sites/${site.id}/reports`)).json();
      expect(hist.items[0]).toMatchObject({
        contentPackageVersion: '2024.11',
        edgeScriptsVersion: '1.4.0',
        composeSha256: sha,
      });
      // An old client that does not send them: accepted, and the site no longer claims the earlier values.
      expect((await device('/api/v1/checkin', { method: 'POST', json: beat() })).status).toBe(200);
      const after = await (await op(`/api/v1/sites/${site.id}`)).json();
      expect(after).toMatchObject({
        reportedContentVersion: null,
        reportedScriptsVersion: null,
        reportedComposeSha256: null,
      });
    });

    it('should record an unknown version as sent, not reject it', async () => {
      const { site, device } = await siteWithToken();
      const res = await device('/api/v1/checkin', {
        method: 'POST',
        json: beat({ version: '2.0.0-local-patch' }),
      });
      expect(res.status, JSON.stringify(t.logs.filter((l) => l.level === 'error'))).toBe(200);
      const [row] = await h.db.select().from(sites).where(eq(sites.id, site.id));
      expect(row).toMatchObject({ reportedVersion: '2.0.0-local-patch', reportedReleaseId: null });
    });

    it('should treat a repeated idempotency key as a no-op returning the first result', async () => {
      const { site, device } = await siteWithToken();
      const first = await (
        await device('/api/v1/checkin', { method: 'POST', json: beat({ idempotencyKey: 'boot-42-aaaa' }) })
      ).json();
      const again = await (
        await device('/api/v1/checkin', {
          method: 'POST',
          json: beat({ idempotencyKey: 'boot-42-aaaa', status: 'failed' }),
        })
      ).json();
      expect(again).toMatchObject({
        reportId: first.reportId,
        duplicate: true,
        receivedAt: first.receivedAt,
      });
      const [{ n }] = (await h.db
        .select({ n: count() })
        .from(siteReports)
        .where(eq(siteReports.siteId, site.id))) as [{ n: number }];
      expect(n).toBe(1);
      const [row] = await h.db.select().from(sites).where(eq(sites.id, site.id));
      expect(row!.reportedStatus).toBe('healthy');
    });

    it('should stop an old token working when the device token is rotated', async () => {
      const { site, device, op } = await siteWithToken();
      const res = await op(`/api/v1/sites/${site.id}/device-token`, { method: 'POST' });
      const { token: fresh } = await res.json();
      await expectEnvelope(
        await device('/api/v1/checkin', { method: 'POST', json: beat() }),
        401,
        'INVALID_DEVICE_TOKEN',
      );
      expect(
        (await withToken(t.app, fresh)('/api/v1/checkin', { method: 'POST', json: beat() })).status,
      ).toBe(200);
      const [row] = await h.db.select().from(sites).where(eq(sites.id, site.id));
      expect(row!.deviceTokenHash).toBe(await sha256Hex(fresh));
      expect(row!.receiptKeySealed).toMatch(/^v1\./);
    });

    it('should answer every one of many concurrent check-ins, grouped into shared transactions', async () => {
      const fleet = await Promise.all(Array.from({ length: 8 }, () => siteWithToken()));
      const calls = fleet.flatMap((f, si) => [0, 1, 2].map((k) => ({ f, key: `conc-${si}-${k % 2}` })));
      const results = await Promise.all(
        calls.map(async ({ f, key }) => {
          const r = await f.device('/api/v1/checkin', {
            method: 'POST',
            json: beat({ idempotencyKey: key }),
          });
          return { status: r.status, body: await r.json(), key, siteId: f.site.id };
        }),
      );
      expect(results.every((r) => r.status === 200)).toBe(true);
      // Per site: keys k0, k1, k0 again — two reports, and the repeat gets the first report's id.
      for (const f of fleet) {
        const mine = results.filter((r) => r.siteId === f.site.id);
        expect(mine.filter((r) => !r.body.duplicate)).toHaveLength(2);
        const k0 = mine.filter((r) => r.key.endsWith('-0'));
        expect(new Set(k0.map((r) => r.body.reportId)).size).toBe(1);
        const [{ n }] = (await h.db
          .select({ n: count() })
          .from(siteReports)
          .where(eq(siteReports.siteId, f.site.id))) as [{ n: number }];
        expect(n).toBe(2);
        const [row] = await h.db.select().from(sites).where(eq(sites.id, f.site.id));
        expect(row!.reportedVersion).toBe('2.0.0');
      }
    });
  });

  describe('error', () => {
    it('should refuse a compose hash that is not 64 lowercase hex digits, and over-long layer versions', async () => {
      const { device } = await siteWithToken();
      for (const bad of [
        { composeSha256: 'AB'.repeat(32) },
        { composeSha256: 'ab'.repeat(31) },
        { contentPackageVersion: 'x'.repeat(101) },
        { edgeScriptsVersion: '' },
      ]) {
        const res = await device('/api/v1/checkin', { method: 'POST', json: beat(bad) });
        await expectEnvelope(res, 400, 'VALIDATION_FAILED');
      }
    });

    it('should refuse a malformed body, wrong types and unknown fields, recording nothing', async () => {
      const { site, token } = await siteWithToken();
      const raw = await t.app.request('/api/v1/checkin', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{"version":',
      });
      await expectEnvelope(raw, 400, 'MALFORMED_JSON');
      const device = withToken(t.app, token);
      for (const json of [
        beat({ status: 'great' }),
        beat({ diskFreeBytes: -1 }),
        beat({ idempotencyKey: 'short' }),
        beat({ extra: true }),
        beat({ version: '' }),
      ]) {
        await expectEnvelope(
          await device('/api/v1/checkin', { method: 'POST', json }),
          400,
          'VALIDATION_FAILED',
        );
      }
      const [{ n }] = (await h.db
        .select({ n: count() })
        .from(siteReports)
        .where(eq(siteReports.siteId, site.id))) as [{ n: number }];
      expect(n).toBe(0);
    });

    it('should refuse a huge body with 413', async () => {
      const { device } = await siteWithToken();
      const res = await device('/api/v1/checkin', {
        method: 'POST',
        json: beat({ healthChecks: [{ name: 'x', ok: true, message: 'y'.repeat(2_000_000) }] }),
      });
      await expectEnvelope(res, 413, 'BODY_TOO_LARGE');
    });

    it('should rate-limit a site that checks in too often, per site', async () => {
      const { device } = await siteWithToken();
      for (let i = 0; i < 5; i++)
        expect((await device('/api/v1/checkin', { method: 'POST', json: beat() })).status).toBe(200);
      const res = await device('/api/v1/checkin', { method: 'POST', json: beat() });
      await expectEnvelope(res, 429, 'TOO_MANY_REQUESTS');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      const other = await siteWithToken();
      expect((await other.device('/api/v1/checkin', { method: 'POST', json: beat() })).status).toBe(200);
    });
  });

  describe('security', () => {
    it('should refuse a revoked token, a user API token and no token', async () => {
      const { org, site, device, op } = await siteWithToken();
      expect((await op(`/api/v1/sites/${site.id}/device-token`, { method: 'DELETE' })).status).toBe(200);
      await expectEnvelope(
        await device('/api/v1/checkin', { method: 'POST', json: beat() }),
        401,
        'INVALID_DEVICE_TOKEN',
      );
      const userToken = await makeApiToken(h.db, org.id, 'owner');
      await expectEnvelope(
        await withToken(t.app, userToken.token)('/api/v1/checkin', { method: 'POST', json: beat() }),
        401,
        'INVALID_DEVICE_TOKEN',
      );
      await expectEnvelope(
        await t.app.request('/api/v1/checkin', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(beat()),
        }),
        401,
      );
    });

    it("should only ever write to the token's own site", async () => {
      const a = await siteWithToken({ code: 'SAME-CODE' });
      const b = await siteWithToken({ code: 'SAME-CODE' });
      await a.device('/api/v1/checkin', { method: 'POST', json: beat({ version: '7.7.7' }) });
      const [rowB] = await h.db.select().from(sites).where(eq(sites.id, b.site.id));
      expect(rowB!.reportedVersion).toBeNull();
      await expectEnvelope(await a.op(`/api/v1/sites/${b.site.id}/reports`), 404);
    });

    it('should refuse check-ins from an archived site', async () => {
      const { site, device, op } = await siteWithToken();
      await op(`/api/v1/sites/${site.id}/archive`, { method: 'POST' });
      await expectEnvelope(
        await device('/api/v1/checkin', { method: 'POST', json: beat() }),
        401,
        'INVALID_DEVICE_TOKEN',
      );
    });

    it('should show the device token once and never again', async () => {
      const { site, token, op } = await siteWithToken();
      const view = await (await op(`/api/v1/sites/${site.id}`)).text();
      expect(view).not.toContain(token);
      expect(view).toContain(token.slice(0, 10));
      expect(JSON.stringify(t.logs)).not.toContain(token);
    });
  });
});
