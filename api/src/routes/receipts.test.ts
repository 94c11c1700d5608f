import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeRelease, makeSite, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { siteReports, sites } from '../db/schema/index.ts';
import { encodeReceiptCode, RECEIPT_CODE_ALPHABET } from '../services/receipts/code.ts';
import { signReceiptFile } from '../services/receipts/file.ts';

describe.each(TEST_DRIVERS)('receipts on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  /** A site whose device token was issued through the API, which also creates its receipt key. */
  async function keyedSite() {
    const org = await makeOrg(h.db);
    const op = withToken(t.app, (await makeApiToken(h.db, org.id, 'operator')).token);
    await makeRelease(h.db, org.id, '1.9.0');
    await makeRelease(h.db, org.id, '2.0.0');
    const site = await makeSite(h.db, org.id);
    expect((await op(`/api/v1/sites/${site.id}/device-token`, { method: 'POST' })).status).toBe(201);
    const [row] = await h.db.select().from(sites).where(eq(sites.id, site.id));
    const key = await t.secretBox.open(row!.receiptKeySealed!, `receipt:${site.id}`);
    return { org, op, site, key };
  }
  const reports = async (siteId: string) =>
    (await h.db.select({ n: count() }).from(siteReports).where(eq(siteReports.siteId, siteId)))[0]!.n;
  const at = new Date('2026-11-20T09:41:00Z');

  describe('happy', () => {
    it('should record a typed-in code once and move the site to the reported version', async () => {
      const { op, site, key } = await keyedSite();
      const code = await encodeReceiptCode({
        key,
        siteId: site.id,
        version: '2.0.0',
        outcome: 'installed',
        at,
      });
      const typed = code.toLowerCase().replace(/-/g, ' '); // as typed on a phone
      const res = await op('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code: typed } });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({
        duplicate: false,
        version: '2.0.0',
        outcome: 'installed',
        at: at.toISOString(),
      });
      const s = await (await op(`/api/v1/sites/${site.id}`)).json();
      expect(s).toMatchObject({
        reportedVersion: '2.0.0',
        reportedStatus: 'installed',
        reportedAt: at.toISOString(),
      });
      const again = await op('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code } });
      expect(again.status).toBe(200);
      expect((await again.json()).duplicate).toBe(true);
      expect(await reports(site.id)).toBe(1);
      const hist = await (await op(`/api/v1/sites/${site.id}/reports`)).json();
      expect(hist.items[0]).toMatchObject({ source: 'receipt_code', version: '2.0.0', status: 'installed' });
    });

    it('should accept an uploaded receipt file and treat the same install typed as a code as a repeat', async () => {
      const { op, site, key } = await keyedSite();
      const file = await signReceiptFile({
        key,
        siteId: site.id,
        version: '1.9.0',
        outcome: 'rolled_back',
        at,
        detailsText: '{"reason":"self-check failed"}',
      });
      const res = await op('/api/v1/receipts/file', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: file.json,
      });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ version: '1.9.0', outcome: 'rolled_back' });
      const viaCode = await op('/api/v1/receipts', {
        method: 'POST',
        json: { siteId: site.id, code: file.code },
      });
      expect(viaCode.status).toBe(200);
      expect(await reports(site.id)).toBe(1);
      const s = await (await op(`/api/v1/sites/${site.id}`)).json();
      expect(s.status).toBe('failed');
    });

    it('should let an assigned coordinator confirm an install from their phone', async () => {
      const { org, site, key } = await keyedSite();
      const coord = await makeUser(h.db, org.id, 'coordinator');
      const admin = withToken(t.app, (await makeApiToken(h.db, org.id, 'admin')).token);
      await admin(`/api/v1/sites/${site.id}/coordinators/${coord.id}`, { method: 'PUT' });
      const s = await signIn(t.app, coord.email, coord.password);
      const code = await encodeReceiptCode({
        key,
        siteId: site.id,
        version: '2.0.0',
        outcome: 'installed',
        at,
      });
      expect(
        (await s.request('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code } })).status,
      ).toBe(201);
    });
  });

  describe('error', () => {
    it('should catch a mistyped character before checking the key, and explain look-alike letters', async () => {
      const { op, site, key } = await keyedSite();
      const code = (
        await encodeReceiptCode({ key, siteId: site.id, version: '2.0.0', outcome: 'installed', at })
      ).replace(/-/g, '');
      const wrong =
        code.slice(0, 5) +
        RECEIPT_CODE_ALPHABET[(RECEIPT_CODE_ALPHABET.indexOf(code[5]!) + 1) % 31] +
        code.slice(6);
      const e = await expectEnvelope(
        await op('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code: wrong } }),
        400,
        'VALIDATION_FAILED',
      );
      expect(e.message).toMatch(/check/i);
      const o = await expectEnvelope(
        await op('/api/v1/receipts', {
          method: 'POST',
          json: { siteId: site.id, code: `O${code.slice(1)}` },
        }),
        400,
      );
      expect(o.message).toMatch(/letter O/);
      expect(await reports(site.id)).toBe(0);
    });

    it('should refuse a forged code (right shape, wrong key) and a code for another site', async () => {
      const { op, site } = await keyedSite();
      const forged = await encodeReceiptCode({
        key: crypto.getRandomValues(new Uint8Array(32)),
        siteId: site.id,
        version: '2.0.0',
        outcome: 'installed',
        at,
      });
      const e = await expectEnvelope(
        await op('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code: forged } }),
        422,
        'RECEIPT_NOT_VALID',
      );
      expect(e.message).toMatch(new RegExp(`does not match ${site.code}`));
      expect(await reports(site.id)).toBe(0);
    });

    it('should refuse a code for a version the organisation never had', async () => {
      const { op, site, key } = await keyedSite();
      const code = await encodeReceiptCode({
        key,
        siteId: site.id,
        version: '9.9.9',
        outcome: 'installed',
        at,
      });
      await expectEnvelope(
        await op('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code } }),
        422,
        'RECEIPT_NOT_VALID',
      );
    });

    it('should refuse a tampered receipt file and a file that is not JSON', async () => {
      const { op, site, key } = await keyedSite();
      const file = await signReceiptFile({ key, siteId: site.id, version: '2.0.0', outcome: 'failed', at });
      const tampered = file.json.replace('"failed"', '"installed"');
      await expectEnvelope(
        await op('/api/v1/receipts/file', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: tampered,
        }),
        422,
        'RECEIPT_NOT_VALID',
      );
      await expectEnvelope(
        await op('/api/v1/receipts/file', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: 'not json',
        }),
        400,
      );
      await expectEnvelope(
        await op('/api/v1/receipts/file', {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: file.json,
        }),
        415,
      );
      expect(await reports(site.id)).toBe(0);
    });

    it('should say plainly when a site has no receipt key yet', async () => {
      const org = await makeOrg(h.db);
      const op = withToken(t.app, (await makeApiToken(h.db, org.id, 'operator')).token);
      const site = await makeSite(h.db, org.id);
      await expectEnvelope(
        await op('/api/v1/receipts', {
          method: 'POST',
          json: { siteId: site.id, code: '8AAZ-8XJM-ZZAE-WWJS' },
        }),
        409,
        'NO_RECEIPT_KEY',
      );
    });

    it('should stop guessing after 10 wrong codes per site per hour', async () => {
      const { op, site, key } = await keyedSite();
      for (let i = 0; i < 10; i++) {
        const forged = await encodeReceiptCode({
          key: crypto.getRandomValues(new Uint8Array(32)),
          siteId: site.id,
          version: '2.0.0',
          outcome: 'installed',
          at,
        });
        await expectEnvelope(
          await op('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code: forged } }),
          422,
        );
      }
      const good = await encodeReceiptCode({
        key,
        siteId: site.id,
        version: '2.0.0',
        outcome: 'installed',
        at,
      });
      const res = await op('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code: good } });
      await expectEnvelope(res, 429, 'TOO_MANY_REQUESTS');
      expect(await reports(site.id)).toBe(0);
    });
  });

  describe('security', () => {
    it("should answer 404 for another organisation's site, even with that site's valid code", async () => {
      const theirs = await keyedSite();
      const code = await encodeReceiptCode({
        key: theirs.key,
        siteId: theirs.site.id,
        version: '2.0.0',
        outcome: 'installed',
        at,
      });
      const mine = await keyedSite();
      await expectEnvelope(
        await mine.op('/api/v1/receipts', { method: 'POST', json: { siteId: theirs.site.id, code } }),
        404,
        'NOT_FOUND',
      );
      const file = await signReceiptFile({
        key: theirs.key,
        siteId: theirs.site.id,
        version: '2.0.0',
        outcome: 'installed',
        at,
      });
      await expectEnvelope(
        await mine.op('/api/v1/receipts/file', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: file.json,
        }),
        404,
        'NOT_FOUND',
      );
      expect(await reports(theirs.site.id)).toBe(0);
    });

    it('should refuse a site code submitted against a different site of the same organisation', async () => {
      const { org, op, site, key } = await keyedSite();
      const other = await makeSite(h.db, org.id);
      await op(`/api/v1/sites/${other.id}/device-token`, { method: 'POST' });
      const code = await encodeReceiptCode({
        key,
        siteId: site.id,
        version: '2.0.0',
        outcome: 'installed',
        at,
      });
      await expectEnvelope(
        await op('/api/v1/receipts', { method: 'POST', json: { siteId: other.id, code } }),
        422,
      );
      expect(await reports(other.id)).toBe(0);
    });

    it('should forbid viewers and hide unassigned sites from coordinators', async () => {
      const { org, site, key } = await keyedSite();
      const code = await encodeReceiptCode({
        key,
        siteId: site.id,
        version: '2.0.0',
        outcome: 'installed',
        at,
      });
      const viewer = withToken(t.app, (await makeApiToken(h.db, org.id, 'viewer')).token);
      await expectEnvelope(
        await viewer('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code } }),
        403,
      );
      const coord = await makeUser(h.db, org.id, 'coordinator');
      const s = await signIn(t.app, coord.email, coord.password);
      await expectEnvelope(
        await s.request('/api/v1/receipts', { method: 'POST', json: { siteId: site.id, code } }),
        404,
      );
      expect(await reports(site.id)).toBe(0);
    });
  });
});
