import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, inArray, sql } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../../test/db.ts';
import { makeOrg, makeSite } from '../../test/factories.ts';
import type { DbHandle } from '../../db/types.ts';
import { organizations, sites } from '../../db/schema/index.ts';
import { appendReport } from '../sites/report.ts';
import { fleetAdoption } from './adoption.ts';
import type { FleetFilter } from './figures.ts';

// Adoption over time filtered by region, district, tag and connectivity is read from a rollup kept
// by triggers (migration 0019). These tests give a generated fleet a random report history — late
// reports included — move sites between regions, districts, tag sets and connectivities, archive,
// restore and delete some, and after each step compare every filtered curve with one worked out
// here from the reports alone: on each day, each site now matching the filter and not archived
// counts under the version of its latest report by the end of that day.

const DAY = 86_400_000;
const VERSIONS = ['1.0.0', '1.1.0', '2.0.0', '2.1.0', '2.2.0-local'];
const REGIONS = ['North', 'South', 'East', null] as const;
const DISTRICTS = ['Hill', 'Lake', null] as const;
const TAGS = ['pilot', 'art', 'usb'];
const CONNECTIVITY = ['online', 'intermittent', 'offline'] as const;

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Model {
  id: string;
  region: string | null;
  district: string | null;
  tags: string[];
  connectivity: (typeof CONNECTIVITY)[number];
  archived: boolean;
  deleted: boolean;
  reports: { version: string | null; at: number }[];
}

function matches(s: Model, f: FleetFilter) {
  return (
    (!f.region || s.region === f.region) &&
    (!f.district || s.district === f.district) &&
    (!f.tag || s.tags.includes(f.tag)) &&
    (!f.connectivity || s.connectivity === f.connectivity)
  );
}

/** Per version, the sites on it at the end of each day of the window, from the reports alone. */
function expected(fleet: Model[], f: FleetFilter, days: number, now: number) {
  const today = Math.floor(now / DAY);
  const out: Record<string, number[]> = {};
  for (const s of fleet) {
    if (s.archived || s.deleted || !matches(s, f)) continue;
    const byTime = [...s.reports].sort((a, b) => a.at - b.at);
    for (let i = 0; i < days; i++) {
      const end = (today - days + 2 + i) * DAY;
      const last = byTime.filter((r) => r.at < end).at(-1);
      if (!last?.version) continue;
      (out[last.version] ??= new Array<number>(days).fill(0))[i]!++;
    }
  }
  return Object.fromEntries(Object.entries(out).filter(([, c]) => c.some((n) => n > 0)));
}

const FILTERS: FleetFilter[] = [
  {},
  { region: 'North' },
  { region: 'South' },
  { district: 'Hill' },
  { region: 'East', district: 'Lake' },
  { tag: 'pilot' },
  { tag: 'art' },
  { connectivity: 'offline' },
  { region: 'North', tag: 'usb' },
  { region: 'South', district: 'Lake', connectivity: 'online' },
  { connectivity: 'intermittent', tag: 'pilot' },
];

describe.each(TEST_DRIVERS)('filtered adoption over time on %s', (driver) => {
  let h: DbHandle;
  let orgId: string;
  let otherOrgId: string;
  const fleet: Model[] = [];
  const now = Date.now();
  const rnd = prng(20261203);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const usedTimes = new Set<number>();
  /** A report time within the last `back` days, never one already used (a tie would be broken by a random id). */
  function when(back: number) {
    let at: number;
    do at = now - Math.floor(rnd() * back * DAY);
    while (usedTimes.has(at));
    usedTimes.add(at);
    return at;
  }

  async function report(s: Model, version: string | null, at: number) {
    await appendReport(h.db, {
      orgId,
      siteId: s.id,
      source: 'manual',
      version,
      status: 'installed',
      idempotencyKey: `k-${s.id}-${at}`,
      reportedAt: new Date(at),
    });
    s.reports.push({ version, at });
  }

  async function expectCurves() {
    const ctx = { db: h.db, orgId, actor: { role: 'viewer' as const, userId: null } } as never;
    for (const days of [30, 120]) {
      for (const f of FILTERS) {
        const got = await fleetAdoption({ ctx, input: { ...f, days }, now: new Date(now) });
        const want = expected(fleet, f, days, now);
        expect({ f, days, series: Object.fromEntries(got.series.map((x) => [x.version, x.counts])) }).toEqual(
          {
            f,
            days,
            series: want,
          },
        );
        expect(got.reporting).toEqual(
          got.days.map((_, i) => Object.values(want).reduce((n, c) => n + c[i]!, 0)),
        );
      }
    }
    // The rollups hold no empty rows.
    const [{ zero }] = (
      (await h.db.execute(
        sql`select (select count(*) from fleet_adoption_group_deltas where delta = 0)::int
          + (select count(*) from fleet_adoption_facet_deltas where delta = 0)::int as zero`,
      )) as unknown as { rows: [{ zero: number }] }
    ).rows;
    expect(zero).toBe(0);
  }

  beforeAll(async () => {
    h = await createTestDb(driver);
    orgId = (await makeOrg(h.db)).id;
    otherOrgId = (await makeOrg(h.db)).id;
    // Sites in one statement (as an import makes them) and one by one.
    const rows = await h.db
      .insert(sites)
      .values(
        Array.from({ length: 30 }, (_, i) => ({
          orgId,
          code: `G-${i}`,
          name: `Generated ${i}`,
          region: pick(REGIONS),
          district: pick(DISTRICTS),
          tags: TAGS.filter(() => rnd() < 0.4),
          connectivity: pick(CONNECTIVITY),
        })),
      )
      .returning();
    for (let i = 0; i < 15; i++)
      rows.push(
        await makeSite(h.db, orgId, {
          region: pick(REGIONS),
          district: pick(DISTRICTS),
          tags: TAGS.filter(() => rnd() < 0.4),
          connectivity: pick(CONNECTIVITY),
        }),
      );
    for (const r of rows)
      fleet.push({
        id: r.id,
        region: r.region,
        district: r.district,
        tags: r.tags,
        connectivity: r.connectivity,
        archived: false,
        deleted: false,
        reports: [],
      });
    // Another organisation's sites, in the same regions, on a version this one never runs.
    const other = await makeSite(h.db, otherOrgId, { region: 'North', tags: ['pilot'] });
    await appendReport(h.db, {
      orgId: otherOrgId,
      siteId: other.id,
      source: 'manual',
      version: '9.9.9',
      status: 'installed',
      idempotencyKey: 'other',
      reportedAt: new Date(now - 10 * DAY),
    });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('should match the reports after a random history, arriving in random order (late reports)', async () => {
    // Up to 8 reports a site over 150 days (some without a version), sent in a shuffled order: most
    // sites get reports older than one they already have.
    const pending: { s: Model; version: string | null; at: number }[] = [];
    for (const s of fleet.slice(0, 42)) {
      const n = 1 + Math.floor(rnd() * 8);
      for (let k = 0; k < n; k++)
        pending.push({ s, version: rnd() < 0.05 ? null : pick(VERSIONS), at: when(150) });
    }
    for (let i = pending.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [pending[i], pending[j]] = [pending[j]!, pending[i]!];
    }
    for (const p of pending) await report(p.s, p.version, p.at);
    expect(fleet.filter((s) => s.reports.length === 0).length).toBe(3);
    await expectCurves();
  });

  it("should move a site's whole history with it when its region, district, tags or connectivity change", async () => {
    // One by one, and a bulk edit of several sites in one statement.
    const moved = fleet.filter((s) => s.reports.length > 0).slice(0, 12);
    for (const [i, s] of moved.slice(0, 8).entries()) {
      const patch =
        i % 4 === 0
          ? { region: s.region === 'North' ? 'South' : 'North' }
          : i % 4 === 1
            ? { district: s.district === 'Hill' ? 'Lake' : 'Hill' }
            : i % 4 === 2
              ? {
                  tags: s.tags.includes('pilot') ? s.tags.filter((x) => x !== 'pilot') : [...s.tags, 'pilot'],
                }
              : { connectivity: s.connectivity === 'offline' ? ('online' as const) : ('offline' as const) };
      await h.db.update(sites).set(patch).where(eq(sites.id, s.id));
      Object.assign(s, patch);
    }
    const bulk = moved.slice(8);
    await h.db
      .update(sites)
      .set({ region: 'East', district: 'Lake', tags: ['usb', 'art'] })
      .where(
        inArray(
          sites.id,
          bulk.map((s) => s.id),
        ),
      );
    for (const s of bulk) Object.assign(s, { region: 'East', district: 'Lake', tags: ['usb', 'art'] });
    // A site edited without a change of group (its name) keeps its runs as they are.
    await h.db.update(sites).set({ name: 'Renamed' }).where(eq(sites.id, moved[0]!.id));
    await expectCurves();
    // Reports after the move, new and late, land in the new group.
    for (const s of moved.slice(0, 6)) {
      await report(s, pick(VERSIONS), when(2));
      await report(s, pick(VERSIONS), when(100));
    }
    await expectCurves();
  });

  it('should leave archived and deleted sites out, and bring restored ones back', async () => {
    const live = fleet.filter((s) => s.reports.length > 0);
    const [a, b, c, d, e] = live.slice(-5);
    for (const s of [a!, b!, c!]) {
      await h.db.update(sites).set({ archivedAt: new Date() }).where(eq(sites.id, s.id));
      s.archived = true;
    }
    await expectCurves();
    // Restored in a new region: the history comes back, in that region.
    await h.db.update(sites).set({ archivedAt: null, region: 'South' }).where(eq(sites.id, a!.id));
    Object.assign(a!, { archived: false, region: 'South' });
    // Deleted: one archived, two live, in one statement.
    await h.db.delete(sites).where(inArray(sites.id, [b!.id, d!.id, e!.id]));
    for (const s of [b!, d!, e!]) s.deleted = true;
    await expectCurves();
    // A late report for an archived site changes nothing until it is restored.
    await report(c!, '1.0.0', when(140));
    await expectCurves();
    await h.db.update(sites).set({ archivedAt: null }).where(eq(sites.id, c!.id));
    c!.archived = false;
    await expectCurves();
  });

  it("should keep the rollup equal to one worked out again from the runs, and drop a deleted organisation's rows", async () => {
    const key = sql.raw('org_id, region, district, connectivity, tags, version, day');
    const kept = async () =>
      (
        (await h.db.execute(
          sql`select ${key}, delta from fleet_adoption_group_deltas order by ${key}`,
        )) as unknown as { rows: unknown[] }
      ).rows;
    const recount = (
      (await h.db.execute(sql`select ${key}, sum(d)::int as delta from (
        select sp.org_id, s.region, s.district, s.connectivity, s.tags, sp.version, floor(extract(epoch from sp.valid_from) / 86400)::int as day, 1 as d
          from site_version_spans sp join sites s on s.id = sp.site_id where s.archived_at is null and sp.version is not null
        union all
        select sp.org_id, s.region, s.district, s.connectivity, s.tags, sp.version, floor(extract(epoch from sp.valid_to) / 86400)::int, -1
          from site_version_spans sp join sites s on s.id = sp.site_id where s.archived_at is null and sp.version is not null and sp.valid_to is not null
      ) c group by ${key} having sum(d) <> 0 order by ${key}`)) as unknown as { rows: unknown[] }
    ).rows;
    expect(recount.length).toBeGreaterThan(0);
    expect(await kept()).toEqual(recount);
    // The per-value rollup: each change once under its region, district, connectivity and each tag.
    const fkey = sql.raw('org_id, facet, value, version, day');
    const keptFacets = (
      (await h.db.execute(
        sql`select ${fkey}, delta from fleet_adoption_facet_deltas order by ${fkey}`,
      )) as unknown as { rows: unknown[] }
    ).rows;
    const recountFacets = (
      (await h.db.execute(sql`with ev as (
        select sp.org_id, s.region, s.district, s.connectivity::text as connectivity, s.tags, sp.version, floor(extract(epoch from sp.valid_from) / 86400)::int as day, 1 as d
          from site_version_spans sp join sites s on s.id = sp.site_id where s.archived_at is null and sp.version is not null
        union all
        select sp.org_id, s.region, s.district, s.connectivity::text, s.tags, sp.version, floor(extract(epoch from sp.valid_to) / 86400)::int, -1
          from site_version_spans sp join sites s on s.id = sp.site_id where s.archived_at is null and sp.version is not null and sp.valid_to is not null
      )
      select ${fkey}, sum(d)::int as delta from (
        select org_id, 'region' as facet, region as value, version, day, d from ev where region is not null
        union all select org_id, 'district', district, version, day, d from ev where district is not null
        union all select org_id, 'connectivity', connectivity, version, day, d from ev
        union all select org_id, 'tag', t, version, day, d from ev cross join unnest(ev.tags) as t
      ) f group by ${fkey} having sum(d) <> 0 order by ${fkey}`)) as unknown as { rows: unknown[] }
    ).rows;
    expect(recountFacets.length).toBeGreaterThan(0);
    expect(keptFacets).toEqual(recountFacets);
    await h.db.delete(organizations).where(eq(organizations.id, otherOrgId));
    const [{ n }] = (
      (await h.db.execute(
        sql`select (select count(*) from fleet_adoption_group_deltas where org_id = ${otherOrgId})::int
          + (select count(*) from fleet_adoption_facet_deltas where org_id = ${otherOrgId})::int as n`,
      )) as unknown as { rows: [{ n: number }] }
    ).rows;
    expect(n).toBe(0);
    await expectCurves();
  });
});
