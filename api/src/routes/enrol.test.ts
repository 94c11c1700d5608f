import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeSite } from '../test/factories.ts';
import { expectEnvelope, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { auditLog, siteEnrolments, sites } from '../db/schema/index.ts';
import { createEnrolmentToken } from '../services/sites/enrol.ts';

// POST /api/v1/enrol: a site's installer exchanges its bundle's one-time enrolment token for a
// device token (docs/decisions.md). No session, no API token: the enrolment token is the credential.
describe.each(TEST_DRIVERS)('enrolment on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h, { checkinsPerMinute: 50 });
  });
  afterAll(async () => {
    await h.close();
  });

  const enrol = (token: unknown) =>
    t.app.request('/api/v1/enrol', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enrolmentToken: token }),
    });
  const checkin = (deviceToken: string) =>
    withToken(t.app, deviceToken)('/api/v1/checkin', {
      method: 'POST',
      json: {
        version: '2.4.1',
        status: 'healthy',
        idempotencyKey: `hb-${crypto.randomUUID()}`,
        contentPackageVersion: '2.4.1',
        edgeScriptsVersion: '1',
        composeSha256: 'a'.repeat(64),
      },
    });

  async function siteWithEnrolment(expiresAt = new Date(Date.now() + 86_400_000)) {
    const org = await makeOrg(h.db);
    const site = await makeSite(h.db, org.id);
    const token = await createEnrolmentToken(h.db, {
      orgId: org.id,
      siteId: site.id,
      bundleId: null,
      expiresAt,
    });
    return { org, site, token };
  }

  describe('happy', () => {
    it("should give a device token once, which then checks in (with the installer's version fields), and audit it", async () => {
      const { org, site, token } = await siteWithEnrolment();
      const res = await enrol(token);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { deviceToken: string; site: { id: string; code: string } };
      expect(body.site).toEqual({ id: site.id, code: site.code });
      expect(body.deviceToken).toMatch(/^opd_/);
      expect((await checkin(body.deviceToken)).status).toBe(200);
      const audit = await h.db.select().from(auditLog).where(eq(auditLog.orgId, org.id));
      expect(audit.map((a) => a.action)).toContain('site.device_token.enrol');
      expect(JSON.stringify(audit)).not.toContain(body.deviceToken);
      expect(JSON.stringify(audit)).not.toContain(token);
      const [row] = await h.db.select().from(siteEnrolments).where(eq(siteEnrolments.siteId, site.id));
      expect(row!.tokenHash).not.toContain(token);
      expect(row).toMatchObject({ closedReason: 'exchanged' });
    });

    it("should replace the device token the site had when the next bundle's token is exchanged", async () => {
      const { org, site, token: older } = await siteWithEnrolment();
      const first = (await (await enrol(older)).json()) as { deviceToken: string };
      const token = await createEnrolmentToken(h.db, {
        orgId: org.id,
        siteId: site.id,
        bundleId: null,
        expiresAt: new Date(Date.now() + 86_400_000),
      });
      const res = await enrol(token);
      expect(res.status).toBe(200);
      const second = (await res.json()) as { deviceToken: string };
      expect((await checkin(first.deviceToken)).status).toBe(401);
      expect((await checkin(second.deviceToken)).status).toBe(200);
    });
  });

  describe('error', () => {
    it('should refuse a body that is not an enrolment token with the error envelope', async () => {
      await expectEnvelope(await enrol('opd_not-an-enrolment-token'), 400, 'VALIDATION_FAILED');
      await expectEnvelope(await enrol(42), 400, 'VALIDATION_FAILED');
      const extra = await t.app.request('/api/v1/enrol', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ enrolmentToken: 'ope_abcdefghijkl', siteId: 'x' }),
      });
      await expectEnvelope(extra, 400, 'VALIDATION_FAILED');
    });

    it('should refuse an expired token', async () => {
      const { token } = await siteWithEnrolment(new Date(Date.now() - 1000));
      await expectEnvelope(await enrol(token), 401, 'ENROLMENT_EXPIRED');
    });

    it('should refuse a check-in field that is not what the installer sends', async () => {
      const { token } = await siteWithEnrolment();
      const { deviceToken } = (await (await enrol(token)).json()) as { deviceToken: string };
      const res = await withToken(t.app, deviceToken)('/api/v1/checkin', {
        method: 'POST',
        json: { version: '1', status: 'healthy', idempotencyKey: 'hb-12345678', composeSha256: 'ABC' },
      });
      await expectEnvelope(res, 400, 'VALIDATION_FAILED');
    });
  });

  describe('security', () => {
    it('should let a token be used once only: a copy of the bundle cannot enrol again', async () => {
      const { token } = await siteWithEnrolment();
      expect((await enrol(token)).status).toBe(200);
      const again = await expectEnvelope(await enrol(token), 401, 'ENROLMENT_USED');
      expect(again.message).not.toContain(token);
    });

    it("should not take the identity back with an older bundle's token once a newer one was exchanged", async () => {
      const { org, site, token } = await siteWithEnrolment();
      const newer = await createEnrolmentToken(h.db, {
        orgId: org.id,
        siteId: site.id,
        bundleId: null,
        expiresAt: new Date(Date.now() + 86_400_000),
      });
      expect((await enrol(newer)).status).toBe(200);
      await expectEnvelope(await enrol(token), 401, 'ENROLMENT_USED');
    });

    it("should refuse an unknown token and an archived site's token alike", async () => {
      await expectEnvelope(await enrol(`ope_${'x'.repeat(43)}`), 401, 'INVALID_ENROLMENT_TOKEN');
      const { site, token } = await siteWithEnrolment();
      await h.db.update(sites).set({ archivedAt: new Date() }).where(eq(sites.id, site.id));
      await expectEnvelope(await enrol(token), 401, 'INVALID_ENROLMENT_TOKEN');
    });

    it('should accept exactly one of two exchanges of one token sent at once', async () => {
      const { token } = await siteWithEnrolment();
      const [a, b] = await Promise.all([enrol(token), enrol(token)]);
      expect([a.status, b.status].sort()).toEqual([200, 401]);
    });

    it('should not be reachable with an API token or session in place of the enrolment token', async () => {
      const org = await makeOrg(h.db);
      const { token } = await makeApiToken(h.db, org.id, 'owner');
      await expectEnvelope(
        await withToken(t.app, token)('/api/v1/enrol', { method: 'POST', json: { enrolmentToken: token } }),
        400,
        'VALIDATION_FAILED',
      );
    });
  });
});
