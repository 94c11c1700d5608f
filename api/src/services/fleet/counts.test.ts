import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, inArray, sql } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../../test/db.ts';
import { makeTestApp } from '../../test/app.ts';
import { makeApiToken, makeOrg, makeSite } from '../../test/factories.ts';
import { withToken } from '../../test/http.ts';
import type { DbHandle } from '../../db/types.ts';
import { bundles, organizations, releases, sites } from '../../db/schema/index.ts';
import { siteStatus, type SiteStatus } from '../sites/scope.ts';
import { fleetSummaryFigures } from './figures.ts';

// fleet_site_counts (migrations 0015–0016) is kept by triggers; these tests change the fleet in
// every way the product does and check, after each step, that the rollup equals a recount of the
// sites, and that the summary read from it gives each site the status the site rule gives it.

const DAY = 86_400_000;
const KEY = sql.raw(`org_id, region, district, connectivity, tags, reported_version, reported_release_id,
  reported_failed, reported_day, content_version, scripts_version, compose_drift, target_release_id`);

function rowsOf<T>(r: unknown): T[] {
  return (r as { rows: T[] }).rows;
}

describe.each(TEST_DRIVERS)('fleet_site_counts on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  let orgId: string;
  let otherOrgId: string;
  let operator: ReturnType<typeof withToken>;
  const rel = new Map<string, string>();
  const now = Date.now();

  /** The rollup, and the same figures counted again from the sites, keyed alike. */
  async function expectRollupEqualsRecount() {
    const kept = rowsOf<Record<string, unknown>>(
      await h.db.execute(sql`select ${KEY}, n from fleet_site_counts order by ${KEY}`),
    );
    const recount = rowsOf<Record<string, unknown>>(
      await h.db.execute(sql`select org_id, region, district, connectivity, tags, reported_version,
        reported_release_id, coalesce(reported_status, '') in ('failed', 'rolled_back') as reported_failed,
        reported_day, reported_content_version as content_version, reported_scripts_version as scripts_version,
        compose_drift, target_release_id, count(*)::int as n
      from sites where archived_at is null group by ${KEY} order by ${KEY}`),
    );
    expect(kept).toEqual(recount);
    // No empty rows are left behind.
    expect(kept.every((r) => (r.n as number) > 0)).toBe(true);
    // The compose drift the triggers keep is the rule's, read again from the bundles.
    const wrong = rowsOf<{ code: string }>(
      await h.db.execute(sql`select code from sites
        where compose_drift <> ((reported_compose_sha256 is not null and reported_compose_sha256 <> (
          select f->>'sha256' from bundles b cross join lateral jsonb_array_elements(b.manifest->'files') f
          where b.site_id = sites.id and b.release_id = sites.reported_release_id and b.state = 'ready'
            and f->>'path' = 'compose/docker-compose.yml' order by b.ready_at desc nulls last limit 1)) is true)`),
    );
    expect(wrong).toEqual([]);
  }

  /** The summary's status counts against the site rule (scope.ts siteStatus) applied to every site. */
  async function expectStatusesMatchSites(silentDays: number) {
    const rows = await h.db
      .select()
      .from(sites)
      .where(sql`${sites.orgId} = ${orgId} and ${sites.archivedAt} is null`);
    const all = await h.db.select().from(releases).where(eq(releases.orgId, orgId));
    const byId = new Map(all.map((r) => [r.id, r]));
    const want: Record<string, number> = {};
    for (const s of rows) {
      const st: SiteStatus = siteStatus(
        {
          ...s,
          reportedRevoked: byId.get(s.reportedReleaseId ?? '')?.state === 'revoked',
          targetVersion: byId.get(s.targetReleaseId ?? '')?.version ?? null,
        },
        new Date(now),
        silentDays,
      );
      want[st] = (want[st] ?? 0) + 1;
    }
    const ctx = { db: h.db, orgId, actor: { role: 'viewer' as const, userId: null } } as never;
    const got = await fleetSummaryFigures({ ctx, input: { silentDays }, now: new Date(now) });
    const counts = Object.fromEntries(
      Object.entries(got.status)
        .filter(([, f]) => f.count > 0)
        .map(([k, f]) => [k, f.count]),
    );
    expect({ silentDays, counts }).toEqual({ silentDays, counts: want });
    expect(got.sites.count).toBe(rows.length);
  }

  async function expectAll() {
    await expectRollupEqualsRecount();
    // 7 is the default; 3 puts the boundary day among recent reports, 1 on yesterday.
    for (const d of [1, 3, 7, 30]) await expectStatusesMatchSites(d);
  }

  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h, { checkinsPerMinute: 1000 });
    orgId = (await makeOrg(h.db)).id;
    otherOrgId = (await makeOrg(h.db)).id;
    operator = withToken(t.app, (await makeApiToken(h.db, orgId, 'operator')).token);
    for (const v of ['1.0.0', '1.1.0', '2.0.0', '2.1.0']) {
      const [r] = await h.db.insert(releases).values({ orgId, version: v, state: 'published' }).returning();
      rel.set(v, r!.id);
    }
    // Sites made in one statement (as an import does) and one by one, in two organisations.
    await h.db.insert(sites).values(
      Array.from({ length: 40 }, (_, i) => ({
        orgId,
        code: `B-${i}`,
        name: `Bulk ${i}`,
        region: ['North', 'South', null][i % 3],
        district: ['Hill', 'Lake'][i % 2],
        tags: [[], ['pilot'], ['pilot', 'art']][i % 3]!,
        connectivity: (['online', 'offline', 'intermittent'] as const)[i % 3],
        targetReleaseId: i % 5 ? rel.get('2.1.0')! : null,
        reportedVersion: i % 7 ? ['1.0.0', '2.0.0', '2.1.0'][i % 3] : null,
        reportedReleaseId: i % 7 ? rel.get(['1.0.0', '2.0.0', '2.1.0'][i % 3]!)! : null,
        reportedStatus: i % 7 ? (i % 11 ? 'healthy' : 'failed') : null,
        // Reports spread over the last 40 days, some on each day around the silent thresholds.
        reportedAt: i % 7 ? new Date(now - (i % 13) * DAY * 0.77 - (i % 4) * 3_600_000) : null,
        reportedContentVersion: i % 4 ? null : '2024.10',
        reportedComposeSha256: i % 3 ? 'c'.repeat(64) : null,
      })),
    );
    for (let i = 0; i < 6; i++)
      await makeSite(h.db, otherOrgId, {
        region: 'North',
        reportedVersion: '9.9.9',
        reportedAt: new Date(now - i * DAY),
      });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('should start equal to a recount of the sites made in bulk and one by one', async () => {
    await expectAll();
  });

  it('should stay equal as check-ins arrive: new versions, the first of a day, heartbeats, concurrent ones', async () => {
    const targets = await h.db
      .select()
      .from(sites)
      .where(sql`${sites.orgId} = ${orgId}`)
      .orderBy(sites.code)
      .limit(8);
    const devices: ReturnType<typeof withToken>[] = [];
    for (const s of targets) {
      const res = await operator(`/api/v1/sites/${s.id}/device-token`, { method: 'POST' });
      expect(res.status).toBe(201);
      devices.push(withToken(t.app, (await res.json()).token));
    }
    const checkin = (i: number, version: string, key: string, extra: Record<string, unknown> = {}) =>
      devices[i]!('/api/v1/checkin', {
        method: 'POST',
        json: { version, status: 'healthy', idempotencyKey: `${key}-${targets[i]!.id}`, ...extra },
      });
    // Concurrent first check-ins of the day (several sites moving into the same counted group).
    const first = await Promise.all(
      devices.map((_, i) =>
        checkin(i, i % 2 ? '2.1.0' : '2.0.0', `a-${i}`, { composeSha256: 'c'.repeat(64) }),
      ),
    );
    expect(first.map((r) => r.status)).toEqual(devices.map(() => 200));
    await expectAll();
    // Heartbeats the same day with the same version change nothing counted.
    const before = rowsOf(await h.db.execute(sql`select ${KEY}, n from fleet_site_counts order by ${KEY}`));
    const beats = await Promise.all(
      devices.map((_, i) =>
        checkin(i, i % 2 ? '2.1.0' : '2.0.0', `b-${i}`, { composeSha256: 'c'.repeat(64) }),
      ),
    );
    expect(beats.map((r) => r.status)).toEqual(devices.map(() => 200));
    expect(rowsOf(await h.db.execute(sql`select ${KEY}, n from fleet_site_counts order by ${KEY}`))).toEqual(
      before,
    );
    // A failure, other layers, a local build.
    expect((await checkin(0, '2.1.0', 'c-0', { status: 'failed' })).status).toBe(200);
    expect(
      (
        await checkin(1, '2.1.0-local', 'c-1', {
          contentPackageVersion: '2024.11',
          edgeScriptsVersion: '1.4.0',
        })
      ).status,
    ).toBe(200);
    await expectAll();
  });

  it('should stay equal after late reports, which do not move the latest', async () => {
    const [s] = await h.db
      .select()
      .from(sites)
      .where(sql`${sites.orgId} = ${orgId} and ${sites.reportedAt} is not null`)
      .orderBy(sites.code)
      .limit(1);
    const res = await operator(`/api/v1/sites/${s!.id}/reports`, {
      method: 'POST',
      json: { version: '1.0.0', status: 'installed', at: new Date(now - 60 * DAY).toISOString() },
    });
    expect(res.status).toBe(201);
    // A receipt for a site that never reported: its first report, weeks old (silent at once).
    const [never] = await h.db
      .select()
      .from(sites)
      .where(sql`${sites.orgId} = ${orgId} and ${sites.reportedAt} is null`)
      .limit(1);
    const res2 = await operator(`/api/v1/sites/${never!.id}/reports`, {
      method: 'POST',
      json: { version: '1.1.0', status: 'installed', at: new Date(now - 20 * DAY).toISOString() },
    });
    expect(res2.status).toBe(201);
    await expectAll();
  });

  it('should stay equal after edits of region, district, tags and target, one by one and in bulk', async () => {
    const some = await h.db
      .select()
      .from(sites)
      .where(sql`${sites.orgId} = ${orgId}`)
      .orderBy(sites.code)
      .limit(4);
    const edits = [
      { region: 'East' },
      { district: 'Vale' },
      { tags: ['maternity'] },
      { region: '', tags: [] },
    ];
    for (const [i, patch] of edits.entries()) {
      const res = await operator(`/api/v1/sites/${some[i]!.id}`, { method: 'PATCH', json: patch });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    // A rollout's target change: one statement for a whole region.
    await h.db
      .update(sites)
      .set({ targetReleaseId: rel.get('2.0.0')! })
      .where(eq(sites.region, 'North'));
    // A newer release revoked: no count changes, the statuses are read with it.
    await h.db
      .update(releases)
      .set({ state: 'revoked' })
      .where(eq(releases.id, rel.get('2.1.0')!));
    await expectAll();
    await h.db
      .update(releases)
      .set({ state: 'published' })
      .where(eq(releases.id, rel.get('2.1.0')!));
  });

  it('should stay equal as bundles change what a compose file should be', async () => {
    const [s] = await h.db
      .select()
      .from(sites)
      .where(
        sql`${sites.orgId} = ${orgId} and ${sites.reportedComposeSha256} is not null and ${sites.reportedReleaseId} is not null`,
      )
      .limit(1);
    const file = (sha: string) => ({
      files: [{ path: 'compose/docker-compose.yml', size: 1, sha256: sha }],
    });
    const [b] = await h.db
      .insert(bundles)
      .values({ orgId, siteId: s!.id, releaseId: s!.reportedReleaseId!, state: 'building' })
      .returning();
    await expectRollupEqualsRecount();
    // Ready with another compose file: the site drifts.
    await h.db
      .update(bundles)
      .set({ state: 'ready', readyAt: new Date(), manifest: file('e'.repeat(64)) })
      .where(eq(bundles.id, b!.id));
    expect((await h.db.select().from(sites).where(eq(sites.id, s!.id)))[0]!.composeDrift).toBe(true);
    await expectRollupEqualsRecount();
    // A newer ready bundle with the reported file: no drift any more; then it goes, drift again.
    const [b2] = await h.db
      .insert(bundles)
      .values({
        orgId,
        siteId: s!.id,
        releaseId: s!.reportedReleaseId!,
        state: 'ready',
        readyAt: new Date(Date.now() + 1000),
        manifest: file(s!.reportedComposeSha256!),
      })
      .returning();
    expect((await h.db.select().from(sites).where(eq(sites.id, s!.id)))[0]!.composeDrift).toBe(false);
    await expectRollupEqualsRecount();
    await h.db.delete(bundles).where(eq(bundles.id, b2!.id));
    expect((await h.db.select().from(sites).where(eq(sites.id, s!.id)))[0]!.composeDrift).toBe(true);
    await expectAll();
  });

  it('should stay equal as sites are archived, restored and deleted, and an organisation goes', async () => {
    const some = await h.db
      .select()
      .from(sites)
      .where(sql`${sites.orgId} = ${orgId}`)
      .orderBy(sites.code)
      .limit(6);
    for (const s of some.slice(0, 3)) {
      expect((await operator(`/api/v1/sites/${s.id}/archive`, { method: 'POST' })).status).toBe(200);
    }
    await expectAll();
    expect((await operator(`/api/v1/sites/${some[0]!.id}/restore`, { method: 'POST' })).status).toBe(200);
    await expectAll();
    // Deleted: one archived, two live, in one statement.
    await h.db.delete(sites).where(inArray(sites.id, [some[1]!.id, some[3]!.id, some[4]!.id]));
    await expectAll();
    await h.db.delete(organizations).where(eq(organizations.id, otherOrgId));
    const left = rowsOf<{ n: number }>(
      await h.db.execute(sql`select count(*)::int as n from fleet_site_counts where org_id = ${otherOrgId}`),
    );
    expect(left[0]!.n).toBe(0);
    await expectAll();
  });
});
