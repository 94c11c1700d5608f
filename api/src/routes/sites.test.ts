import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeRelease, makeSite, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { auditLog, sites } from '../db/schema/index.ts';

describe.each(TEST_DRIVERS)('sites on %s', (driver) => {
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
    const tok = await makeApiToken(h.db, org.id, 'operator');
    return { org, api: withToken(t.app, tok.token) };
  }

  const full = {
    code: 'KE-NBI-001',
    name: 'Kibera Health Centre',
    region: 'Nairobi',
    district: 'Kibra',
    facilityType: 'health_centre',
    tags: ['pilot', 'urban'],
    connectivity: 'intermittent',
    bandwidthKbps: 384,
    timezone: 'Africa/Nairobi',
    maintenanceWindow: 'daily 22:00-04:00',
    latitude: -1.3133,
    longitude: 36.7892,
    contactName: 'Grace W.',
    contactPhone: '+254 700 000 000',
    contactEmail: 'grace@example.org',
  };

  describe('happy', () => {
    it('should create, read, edit, archive and restore a site, auditing each change', async () => {
      const { api } = await operator();
      const res = await api('/api/v1/sites', { method: 'POST', json: full });
      expect(res.status).toBe(201);
      const site = await res.json();
      expect(site).toMatchObject({
        ...full,
        status: 'never_reported',
        reportedVersion: null,
        deviceToken: null,
      });
      const got = await (await api(`/api/v1/sites/${site.id}`)).json();
      expect(got.code).toBe('KE-NBI-001');
      const patched = await (
        await api(`/api/v1/sites/${site.id}`, {
          method: 'PATCH',
          json: { name: 'Kibera HC', tags: ['urban'] },
        })
      ).json();
      expect(patched).toMatchObject({ name: 'Kibera HC', tags: ['urban'], region: 'Nairobi' });
      const archived = await (await api(`/api/v1/sites/${site.id}/archive`, { method: 'POST' })).json();
      expect(archived.archivedAt).not.toBeNull();
      const listed = await (await api('/api/v1/sites')).json();
      expect(listed.items.map((s: { id: string }) => s.id)).not.toContain(site.id);
      const inArchive = await (await api('/api/v1/sites?archived=true')).json();
      expect(inArchive.items.map((s: { id: string }) => s.id)).toContain(site.id);
      await api(`/api/v1/sites/${site.id}/restore`, { method: 'POST' });
      const actions = (await h.db.select().from(auditLog).where(eq(auditLog.objectId, site.id)))
        .map((a) => a.action)
        .sort();
      expect(actions).toEqual(['site.archive', 'site.create', 'site.restore', 'site.update']);
    });

    it('should search code and name, filter, sort and page with a cursor', async () => {
      const { org, api } = await operator();
      const r1 = await makeRelease(h.db, org.id, '1.0.0');
      const r2 = await makeRelease(h.db, org.id, '2.0.0');
      const day = 86_400_000;
      await makeSite(h.db, org.id, {
        code: 'A-1',
        name: 'Alpha Dispensary',
        region: 'North',
        tags: ['pilot'],
        connectivity: 'offline',
      });
      await makeSite(h.db, org.id, {
        code: 'A-2',
        name: 'Beta Clinic',
        region: 'North',
        district: 'N1',
        reportedVersion: '2.0.0',
        reportedReleaseId: r2.id,
        targetReleaseId: r2.id,
        reportedStatus: 'healthy',
        reportedAt: new Date(),
      });
      await makeSite(h.db, org.id, {
        code: 'B-1',
        name: 'Gamma Hospital',
        region: 'South',
        reportedVersion: '1.0.0',
        reportedReleaseId: r1.id,
        targetReleaseId: r2.id,
        reportedStatus: 'healthy',
        reportedAt: new Date(),
      });
      await makeSite(h.db, org.id, {
        code: 'B-2',
        name: 'Delta alpha',
        region: 'South',
        reportedVersion: '1.0.0',
        reportedReleaseId: r1.id,
        targetReleaseId: r2.id,
        reportedStatus: 'failed',
        reportedAt: new Date(),
      });
      await makeSite(h.db, org.id, {
        code: 'C-1',
        name: 'Epsilon',
        region: 'East',
        reportedVersion: '0.9-custom',
        reportedStatus: 'healthy',
        reportedAt: new Date(Date.now() - 30 * day),
      });
      const codes = async (qs: string) =>
        (await (await api(`/api/v1/sites?${qs}`)).json()).items.map((s: { code: string }) => s.code);
      expect(await codes('q=alpha')).toEqual(['A-1', 'B-2']);
      expect(await codes('q=b-')).toEqual(['B-1', 'B-2']);
      expect(await codes('q=%25')).toEqual([]); // a literal %, not a wildcard
      expect(await codes('region=North')).toEqual(['A-1', 'A-2']);
      expect(await codes('district=N1')).toEqual(['A-2']);
      expect(await codes('tag=pilot')).toEqual(['A-1']);
      expect(await codes('connectivity=offline')).toEqual(['A-1']);
      expect(await codes('version=1.0.0')).toEqual(['B-1', 'B-2']);
      expect(await codes('status=on_target')).toEqual(['A-2']);
      expect(await codes('status=behind')).toEqual(['B-1']);
      expect(await codes('status=failed')).toEqual(['B-2']);
      expect(await codes('status=never_reported')).toEqual(['A-1']);
      expect(await codes('status=silent')).toEqual(['C-1']);
      expect(await codes('status=silent&silentDays=60')).toEqual([]);
      expect(await codes('sort=name&order=desc')).toEqual(['B-1', 'C-1', 'B-2', 'A-2', 'A-1']);
      expect(await codes('sort=reportedAt&order=asc')).toEqual(['A-1', 'C-1', 'A-2', 'B-1', 'B-2']);

      for (const sort of ['code', 'name', 'region', 'reportedAt', 'createdAt']) {
        for (const order of ['asc', 'desc']) {
          const all = await codes(`sort=${sort}&order=${order}&limit=100`);
          const paged: string[] = [];
          let cursor: string | null = null;
          do {
            const page: { items: { code: string }[]; nextCursor: string | null; total: number } = await (
              await api(
                `/api/v1/sites?sort=${sort}&order=${order}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
              )
            ).json();
            expect(page.total).toBe(5);
            paged.push(...page.items.map((s) => s.code));
            cursor = page.nextCursor;
          } while (cursor);
          expect(paged).toEqual(all);
        }
      }
      const summary = await (await api('/api/v1/sites/summary')).json();
      expect(summary).toMatchObject({
        total: 5,
        silentDays: 7,
        byStatus: { on_target: 1, behind: 1, failed: 1, never_reported: 1, silent: 1, no_target: 0 },
      });
      expect(summary.byVersion).toEqual(
        expect.arrayContaining([
          { version: '1.0.0', sites: 2 },
          { version: null, sites: 1 },
        ]),
      );
      expect(summary.byRegion).toEqual(
        expect.arrayContaining([
          { region: 'North', sites: 2 },
          { region: 'South', sites: 2 },
          { region: 'East', sites: 1 },
        ]),
      );
      const facets = await (await api('/api/v1/sites/facets')).json();
      expect(facets).toEqual({
        regions: ['East', 'North', 'South'],
        districts: ['N1'],
        tags: ['pilot'],
        versions: ['0.9-custom', '1.0.0', '2.0.0'],
      });
      expect((await (await api('/api/v1/sites/facets?region=South')).json()).districts).toEqual([]);
      expect((await (await api('/api/v1/sites/facets?region=North')).json()).districts).toEqual(['N1']);
    });

    it('should call a site on a newer release than its target ahead, in its status, the list filter, the summary and the CSV', async () => {
      const { org, api } = await operator();
      // Made out of order, and 1.10.0 sorts before 1.9.0 as text: only semver order says which is newer.
      const r110 = await makeRelease(h.db, org.id, '1.10.0');
      const r19 = await makeRelease(h.db, org.id, '1.9.0');
      const r12 = await makeRelease(h.db, org.id, '1.2.0');
      const nightly = await makeRelease(h.db, org.id, 'nightly-7');
      const now = new Date();
      const on = (v: { id: string; version: string }) => ({
        reportedVersion: v.version,
        reportedReleaseId: v.id,
        reportedStatus: 'healthy',
        reportedAt: now,
      });
      const ahead1 = await makeSite(h.db, org.id, { code: 'AH-1', targetReleaseId: r19.id, ...on(r110) });
      await makeSite(h.db, org.id, { code: 'AH-2', targetReleaseId: r12.id, ...on(r19) });
      await makeSite(h.db, org.id, { code: 'BE-1', targetReleaseId: r110.id, ...on(r19) });
      // A local build is not a release: it is off target, behind.
      await makeSite(h.db, org.id, {
        code: 'BE-2',
        targetReleaseId: r12.id,
        reportedVersion: '2.0.0-local',
        reportedStatus: 'healthy',
        reportedAt: now,
      });
      // A target that is not semver has no place in the order: off target is behind.
      await makeSite(h.db, org.id, { code: 'BE-3', targetReleaseId: nightly.id, ...on(r110) });
      await makeSite(h.db, org.id, { code: 'ON-1', targetReleaseId: r19.id, ...on(r19) });
      // Silent first: a newer release reported long ago is silent, not ahead.
      await makeSite(h.db, org.id, {
        code: 'SI-1',
        targetReleaseId: r12.id,
        ...on(r110),
        reportedAt: new Date(now.getTime() - 30 * 86_400_000),
      });

      const one = await (await api(`/api/v1/sites/${ahead1.id}`)).json();
      expect(one).toMatchObject({ status: 'ahead', reportedVersion: '1.10.0', targetVersion: '1.9.0' });
      const list = async (qs: string) =>
        (await (await api(`/api/v1/sites?${qs}`)).json()).items.map(
          (s: { code: string; status: string }) => `${s.code}:${s.status}`,
        );
      expect(await list('status=ahead')).toEqual(['AH-1:ahead', 'AH-2:ahead']);
      expect(await list('status=behind')).toEqual(['BE-1:behind', 'BE-2:behind', 'BE-3:behind']);
      expect(await list('limit=100')).toEqual([
        'AH-1:ahead',
        'AH-2:ahead',
        'BE-1:behind',
        'BE-2:behind',
        'BE-3:behind',
        'ON-1:on_target',
        'SI-1:silent',
      ]);
      expect(await list('status=ahead&q=AH-2')).toEqual(['AH-2:ahead']);
      const summary = await (await api('/api/v1/sites/summary')).json();
      expect(summary).toMatchObject({
        total: 7,
        byStatus: {
          ahead: 2,
          behind: 3,
          on_target: 1,
          silent: 1,
          failed: 0,
          never_reported: 0,
          no_target: 0,
          revoked: 0,
        },
      });
      const csv = await (await api('/api/v1/sites/export.csv?status=ahead')).text();
      const rows = csv
        .replace(/^\ufeff/, '')
        .trim()
        .split('\r\n')
        .slice(1);
      expect(rows.map((r) => `${r.split(',')[0]}:${r.split(',').at(-1)}`)).toEqual([
        'AH-1:ahead',
        'AH-2:ahead',
      ]);
    });

    it('should show coordinators only the sites assigned to them', async () => {
      const org = await makeOrg(h.db);
      const admin = await makeUser(h.db, org.id, 'admin');
      const coord = await makeUser(h.db, org.id, 'coordinator');
      const mine = await makeSite(h.db, org.id, { code: 'MINE' });
      const other = await makeSite(h.db, org.id, { code: 'OTHER' });
      const a = await signIn(t.app, admin.email, admin.password);
      expect(
        (await a.request(`/api/v1/sites/${mine.id}/coordinators/${coord.id}`, { method: 'PUT' })).status,
      ).toBe(200);
      const cs = await signIn(t.app, coord.email, coord.password);
      const list = await (await cs.request('/api/v1/sites')).json();
      expect(list.items.map((s: { code: string }) => s.code)).toEqual(['MINE']);
      expect(list.total).toBe(1);
      expect((await cs.request(`/api/v1/sites/${mine.id}`)).status).toBe(200);
      await expectEnvelope(await cs.request(`/api/v1/sites/${other.id}`), 404, 'NOT_FOUND');
      await expectEnvelope(
        await cs.request(`/api/v1/sites/${mine.id}`, { method: 'PATCH', json: { name: 'x' } }),
        403,
      );
      // Only coordinators can be assigned.
      await expectEnvelope(
        await a.request(`/api/v1/sites/${mine.id}/coordinators/${admin.id}`, { method: 'PUT' }),
        400,
      );
    });

    it('should record a manual report and show it in the history', async () => {
      const { org, api } = await operator();
      const site = await makeSite(h.db, org.id);
      const res = await api(`/api/v1/sites/${site.id}/reports`, {
        method: 'POST',
        json: { version: '2.1.0', status: 'installed', note: 'confirmed by phone' },
      });
      expect(res.status).toBe(201);
      const hist = await (await api(`/api/v1/sites/${site.id}/reports`)).json();
      expect(hist.items).toHaveLength(1);
      expect(hist.items[0]).toMatchObject({
        source: 'manual',
        version: '2.1.0',
        status: 'installed',
        details: { note: 'confirmed by phone' },
      });
      const s = await (await api(`/api/v1/sites/${site.id}`)).json();
      expect(s).toMatchObject({ reportedVersion: '2.1.0', reportedStatus: 'installed' });
    });

    it("should keep the site's language (en by default) for its bundles and installer, and refuse one it does not know", async () => {
      const { api } = await operator();
      const made = await (
        await api('/api/v1/sites', {
          method: 'POST',
          json: { code: `LANG-${crypto.randomUUID().slice(0, 6)}`, name: 'Goma Ouest' },
        })
      ).json();
      expect(made.language).toBe('en');
      const fr = await api(`/api/v1/sites/${made.id}`, { method: 'PATCH', json: { language: 'fr' } });
      expect(fr.status).toBe(200);
      expect((await fr.json()).language).toBe('fr');
      await expectEnvelope(
        await api(`/api/v1/sites/${made.id}`, { method: 'PATCH', json: { language: 'de' } }),
        400,
        'VALIDATION_FAILED',
      );
    });
  });

  describe('error', () => {
    it('should refuse a duplicate code with 409 and keep one row', async () => {
      const { org, api } = await operator();
      await makeSite(h.db, org.id, { code: 'DUP-1' });
      await expectEnvelope(
        await api('/api/v1/sites', { method: 'POST', json: { code: 'DUP-1', name: 'x' } }),
        409,
        'CONFLICT',
      );
      const [{ n }] = (await h.db.select({ n: count() }).from(sites).where(eq(sites.code, 'DUP-1'))) as [
        { n: number },
      ];
      expect(n).toBe(1);
    });

    it('should reject invalid fields and say which', async () => {
      const { org, api } = await operator();
      const bad: [Record<string, unknown>, string][] = [
        [{ code: 'has space', name: 'x' }, 'code'],
        [{ code: 'X', name: '' }, 'name'],
        [{ code: 'X', name: 'x', connectivity: 'sometimes' }, 'connectivity'],
        [{ code: 'X', name: 'x', latitude: 200 }, 'latitude'],
        [{ code: 'X', name: 'x', timezone: 'Mars/Olympus' }, 'timezone'],
        [{ code: 'X', name: 'x', contactEmail: 'nope' }, 'contactEmail'],
        [{ code: 'X', name: 'x', maintenanceWindow: 'whenever' }, 'maintenanceWindow'],
        [{ code: 'X', name: 'x', deviceTokenHash: 'abc' }, 'Unknown field\\(s\\): deviceTokenHash'],
        [{ code: 'X', name: 'x', reportedVersion: '9.9' }, 'Unknown field\\(s\\): reportedVersion'],
      ];
      for (const [json, field] of bad) {
        const e = await expectEnvelope(
          await api('/api/v1/sites', { method: 'POST', json }),
          400,
          'VALIDATION_FAILED',
        );
        expect(JSON.stringify(e.details ?? e)).toMatch(new RegExp(field));
      }
      const [{ n }] = (await h.db.select({ n: count() }).from(sites).where(eq(sites.orgId, org.id))) as [
        { n: number },
      ];
      expect(n).toBe(0);
    });

    it('should refuse a cursor from a different sort and a forged cursor', async () => {
      const { org, api } = await operator();
      for (let i = 0; i < 3; i++) await makeSite(h.db, org.id);
      const page = await (await api('/api/v1/sites?limit=1')).json();
      await expectEnvelope(await api(`/api/v1/sites?sort=name&cursor=${page.nextCursor}`), 400);
      await expectEnvelope(await api('/api/v1/sites?cursor=garbage'), 400);
      await expectEnvelope(await api('/api/v1/sites?status=sleepy'), 400);
    });
  });

  describe('security', () => {
    it("should make another organisation's sites invisible (404) for read, edit, archive, tokens and reports", async () => {
      const theirs = await makeSite(h.db, (await makeOrg(h.db)).id, { code: 'THEIRS', name: 'Their clinic' });
      const { api } = await operator();
      for (const [method, path, json] of [
        ['GET', `/api/v1/sites/${theirs.id}`],
        ['PATCH', `/api/v1/sites/${theirs.id}`, { name: 'pwned' }],
        ['POST', `/api/v1/sites/${theirs.id}/archive`],
        ['POST', `/api/v1/sites/${theirs.id}/device-token`],
        ['DELETE', `/api/v1/sites/${theirs.id}/device-token`],
        ['GET', `/api/v1/sites/${theirs.id}/reports`],
        ['POST', `/api/v1/sites/${theirs.id}/reports`, { version: '1', status: 'installed' }],
      ] as const) {
        await expectEnvelope(await api(path, { method, json }), 404, 'NOT_FOUND');
      }
      const list = await (await api('/api/v1/sites?q=THEIRS')).json();
      expect(list.total).toBe(0);
      const [row] = await h.db.select().from(sites).where(eq(sites.id, theirs.id));
      expect(row).toMatchObject({ name: 'Their clinic', archivedAt: null, deviceTokenHash: null });
    });

    it('should let viewers read but not write', async () => {
      const org = await makeOrg(h.db);
      const v = await makeApiToken(h.db, org.id, 'viewer');
      const api = withToken(t.app, v.token);
      expect((await api('/api/v1/sites')).status).toBe(200);
      await expectEnvelope(
        await api('/api/v1/sites', { method: 'POST', json: { code: 'V-1', name: 'x' } }),
        403,
      );
      const site = await makeSite(h.db, org.id);
      await expectEnvelope(await api(`/api/v1/sites/${site.id}/device-token`, { method: 'POST' }), 403);
    });
  });
});
