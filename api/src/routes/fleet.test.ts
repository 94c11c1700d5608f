import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import semver from 'semver';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeSite, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import {
  artifacts,
  bundles,
  contentPackages,
  coordinatorSites,
  releases,
  siteReports,
  sites,
} from '../db/schema/index.ts';
import { rebuildVersionSpans } from '../services/fleet/spans.ts';
import { seededRandom } from '../lib/seeded-random.ts';

// The fleet figures are checked against expectations this file computes on its own, from a
// generated fleet it knows every detail of — not against earlier answers of the code.

const DAY = 86_400_000;
const REGIONS = {
  North: ['Hill', 'Lake'],
  South: ['Coast', 'Delta'],
  East: ['Plain'],
  West: ['Ridge', 'Vale'],
} as const;
const TAGS = ['pilot', 'art', 'maternity'];
const VERSIONS = ['1.0.0', '1.1.0', '1.2.0', '2.0.0', '2.1.0'] as const; // 1.2.0 is revoked
const ODD_VERSIONS = ['2.0.0-local', 'nightly-7'];

interface Rep {
  version: string;
  at: number;
  status: string;
}
interface GenSite {
  id: string;
  code: string;
  region: string | null;
  district: string | null;
  tags: string[];
  connectivity: 'online' | 'intermittent' | 'offline';
  target: string | null;
  reports: Rep[];
  content: string | null;
  scripts: string | null;
  compose: string | null;
  bundleCompose: string | null;
  archived: boolean;
}

type Status =
  'on_target' | 'behind' | 'ahead' | 'failed' | 'revoked' | 'silent' | 'never_reported' | 'no_target';

/** The rules as the issue states them, written out again here. */
function expectedOf(s: GenSite, now: number, silentDays = 7) {
  const last = s.reports.at(-1);
  let status: Status;
  if (!last) status = 'never_reported';
  else if (last.status === 'failed' || last.status === 'rolled_back') status = 'failed';
  else if (last.version === '1.2.0') status = 'revoked';
  else if (last.at < now - silentDays * DAY) status = 'silent';
  else if (!s.target) status = 'no_target';
  else if (last.version === s.target) status = 'on_target';
  // A published release newer than the target is ahead of it, not behind (an unreleased build never is).
  else
    status =
      VERSIONS.includes(last.version as (typeof VERSIONS)[number]) && semver.gt(last.version, s.target)
        ? 'ahead'
        : 'behind';
  let behind: 1 | 2 | 3 | null = null;
  if (status === 'behind') {
    const v = last!.version;
    const n = semver.valid(v)
      ? ['1.0.0', '1.1.0', '2.0.0', '2.1.0'].filter((x) => semver.gt(x, v) && semver.lte(x, s.target!)).length
      : 3;
    behind = Math.min(3, Math.max(1, n)) as 1 | 2 | 3;
  }
  const rel = last ? RELEASE_LAYERS[last.version] : undefined;
  return {
    status,
    behind,
    version: last?.version ?? null,
    content: Boolean(s.content && rel?.content && s.content !== rel.content),
    scripts: Boolean(s.scripts && rel?.scripts && s.scripts !== rel.scripts),
    compose: Boolean(s.compose && s.bundleCompose && s.compose !== s.bundleCompose),
  };
}
const RELEASE_LAYERS: Record<string, { content?: string; scripts?: string }> = {
  '2.0.0': { content: '2024.10', scripts: '1.3.0' },
  '2.1.0': { content: '2024.11', scripts: '1.4.0' },
  '1.1.0': { scripts: '1.2.0' },
};

/** The version each site ran at the end of each UTC day: its latest report by then. */
function expectedAdoption(fleet: GenSite[], days: number, now: number) {
  const today = Math.floor(now / DAY);
  const out = new Map<string, number[]>();
  for (let i = 0; i < days; i++) {
    const end = (today - days + 1 + i + 1) * DAY;
    for (const s of fleet) {
      if (s.archived) continue;
      const last = s.reports.filter((r) => r.at < end).at(-1);
      if (!last) continue;
      if (!out.has(last.version)) out.set(last.version, new Array(days).fill(0));
      out.get(last.version)![i]!++;
    }
  }
  return out;
}

describe.each(TEST_DRIVERS)('fleet figures on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  let orgId: string;
  let viewer: ReturnType<typeof withToken>;
  let operator: ReturnType<typeof withToken>;
  const fleet: GenSite[] = [];
  const releaseIds = new Map<string, string>();
  const now = Date.now();

  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h, { checkinsPerMinute: 1000 });
    const org = await makeOrg(h.db);
    orgId = org.id;
    viewer = withToken(t.app, (await makeApiToken(h.db, orgId, 'viewer')).token);
    operator = withToken(t.app, (await makeApiToken(h.db, orgId, 'operator')).token);
    const cps = new Map<string, string>();
    for (const v of ['2024.10', '2024.11']) {
      const sha = v === '2024.10' ? 'a'.repeat(64) : 'b'.repeat(64);
      await h.db
        .insert(artifacts)
        .values({ sha256: sha, size: 10, mediaType: 'application/zip', key: `blobs/sha256/${sha}` })
        .onConflictDoNothing();
      const [cp] = await h.db
        .insert(contentPackages)
        .values({ orgId, name: 'forms', version: v, sha256: sha, size: 10, entries: 1, uncompressedSize: 10 })
        .returning();
      cps.set(v, cp!.id);
    }
    for (const v of VERSIONS) {
      const layers = RELEASE_LAYERS[v];
      const [r] = await h.db
        .insert(releases)
        .values({
          orgId,
          version: v,
          state: v === '1.2.0' ? 'revoked' : 'published',
          contentPackageId: layers?.content ? cps.get(layers.content)! : null,
          edgeScriptsVersion: layers?.scripts ?? null,
        })
        .returning();
      releaseIds.set(v, r!.id);
    }
    const r = seededRandom(driver === 'pg' ? 11 : 12);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
    for (let i = 0; i < 240; i++) {
      const region = i < 3 ? null : (pick(Object.keys(REGIONS)) as keyof typeof REGIONS);
      const district = region ? pick(REGIONS[region]) : null;
      const tags = TAGS.filter(() => r() < 0.35);
      const connectivity = pick(['online', 'intermittent', 'offline'] as const);
      const targetRoll = r();
      const target = targetRoll < 0.7 ? '2.1.0' : targetRoll < 0.9 ? '2.0.0' : null;
      const reports: Rep[] = [];
      if (r() > 0.06) {
        const count = 1 + Math.floor(r() * 4);
        let vi = Math.floor(r() * 3);
        // Time runs forward across the last 50 days; the last report is recent or (15 %) long ago.
        const lastAt = r() < 0.15 ? now - (10 + r() * 20) * DAY : now - r() * 5 * DAY;
        for (let k = count - 1; k >= 0; k--) {
          vi = Math.min(VERSIONS.length - 1, vi + (r() < 0.5 ? 1 : 0));
          const odd = k === 0 && r() < 0.05;
          reports.push({
            version: odd ? pick(ODD_VERSIONS) : VERSIONS[vi]!,
            at: Math.round(lastAt - k * (3 + r() * 9) * DAY),
            status:
              k === 0
                ? pick(['healthy', 'healthy', 'healthy', 'degraded', 'failed', 'rolled_back'])
                : 'healthy',
          });
        }
      }
      reports.sort((x, y) => x.at - y.at);
      const last = reports.at(-1);
      const layerRoll = r();
      const rel = last ? RELEASE_LAYERS[last.version] : undefined;
      const content =
        !last || layerRoll < 0.3 ? null : layerRoll < 0.6 ? (rel?.content ?? '2024.01') : '2023.12';
      const scripts = !last || r() < 0.3 ? null : r() < 0.5 ? (rel?.scripts ?? '0.9.0') : '1.0.0';
      const compose = last && r() < 0.6 ? (r() < 0.5 ? 'c'.repeat(64) : 'd'.repeat(64)) : null;
      const bundleCompose = last && releaseIds.has(last.version) && r() < 0.7 ? 'c'.repeat(64) : null;
      const site = await makeSite(h.db, orgId, {
        code: `GEN-${String(i).padStart(4, '0')}`,
        region,
        district,
        tags,
        connectivity,
        targetReleaseId: target ? releaseIds.get(target)! : null,
        reportedVersion: last?.version ?? null,
        reportedReleaseId: last ? (releaseIds.get(last.version) ?? null) : null,
        reportedStatus: last?.status ?? null,
        reportedAt: last ? new Date(last.at) : null,
        reportedContentVersion: content,
        reportedScriptsVersion: scripts,
        reportedComposeSha256: compose,
      });
      if (reports.length) {
        await h.db.insert(siteReports).values(
          reports.map((rep, k) => ({
            orgId,
            siteId: site.id,
            source: 'heartbeat' as const,
            version: rep.version,
            releaseId: releaseIds.get(rep.version) ?? null,
            status: rep.status,
            idempotencyKey: `gen-${i}-${k}`,
            reportedAt: new Date(rep.at),
            receivedAt: new Date(rep.at),
          })),
        );
      }
      if (bundleCompose) {
        // An older bundle with another compose file first: only the latest ready one counts.
        await h.db.insert(bundles).values({
          orgId,
          siteId: site.id,
          releaseId: releaseIds.get(last!.version)!,
          state: 'ready',
          readyAt: new Date(now - 40 * DAY),
          manifest: { files: [{ path: 'compose/docker-compose.yml', size: 1, sha256: 'e'.repeat(64) }] },
        });
        await h.db.insert(bundles).values({
          orgId,
          siteId: site.id,
          releaseId: releaseIds.get(last!.version)!,
          state: 'ready',
          readyAt: new Date(now - 30 * DAY),
          manifest: {
            files: [
              { path: 'compose/.env', size: 1, sha256: 'f'.repeat(64) },
              { path: 'compose/docker-compose.yml', size: 1, sha256: bundleCompose },
            ],
          },
        });
      }
      fleet.push({
        id: site.id,
        code: site.code,
        region,
        district,
        tags,
        connectivity,
        target,
        reports,
        content,
        scripts,
        compose,
        bundleCompose,
        archived: false,
      });
    }
    // An archived site is out of every figure.
    const gone = fleet[5]!;
    await h.db.update(sites).set({ archivedAt: new Date() }).where(eq(sites.id, gone.id));
    gone.archived = true;
    await rebuildVersionSpans(h.db, { orgId });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  const live = () => fleet.filter((s) => !s.archived);
  const count = (xs: GenSite[], f: (e: ReturnType<typeof expectedOf>, s: GenSite) => boolean) =>
    xs.filter((s) => f(expectedOf(s, now), s)).length;

  async function get(path: string, as = viewer) {
    const res = await as(path);
    expect(res.status, await res.clone().text()).toBe(200);
    return res.json();
  }

  /** Every figure's filter, asked of the site list, must list exactly that many sites. */
  async function expectFiltersList(figs: { count: number; filter: Record<string, unknown> | null }[]) {
    for (const f of figs) {
      expect(f.filter, JSON.stringify(f)).not.toBeNull();
      const q = new URLSearchParams(Object.entries(f.filter!).map(([k, v]) => [k, String(v)]));
      const list = await get(`/api/v1/sites?${q}&limit=1`);
      expect({ filter: f.filter, total: list.total }).toEqual({ filter: f.filter, total: f.count });
    }
  }

  type Figure = { count: number; filter: Record<string, unknown> | null };
  function allFigures(s: {
    sites: Figure;
    status: Record<string, Figure>;
    behind: Figure[];
    drift: Record<string, Figure>;
    versions: Figure[];
  }): Figure[] {
    return [s.sites, ...Object.values(s.status), ...s.behind, ...Object.values(s.drift), ...s.versions];
  }

  describe('happy', () => {
    it('should count the whole fleet by status, versions behind, layer drift and release as computed independently', async () => {
      const s = await get('/api/v1/fleet/summary');
      const xs = live();
      expect(s.sites.count).toBe(xs.length);
      for (const st of [
        'on_target',
        'behind',
        'ahead',
        'failed',
        'revoked',
        'silent',
        'never_reported',
        'no_target',
      ] as const) {
        expect([st, s.status[st].count]).toEqual([st, count(xs, (e) => e.status === st)]);
      }
      expect(s.behind.map((b: { by: number; count: number }) => [b.by, b.count])).toEqual(
        [1, 2, 3].map((b) => [b, count(xs, (e) => e.behind === b)]),
      );
      for (const l of ['content', 'compose', 'scripts'] as const)
        expect([l, s.drift[l].count]).toEqual([l, count(xs, (e) => e[l])]);
      const versions = new Map<string | null, number>();
      for (const x of xs) {
        const v = expectedOf(x, now).version;
        versions.set(v, (versions.get(v) ?? 0) + 1);
      }
      expect(
        Object.fromEntries(
          s.versions.map((v: { version: string | null; count: number }) => [String(v.version), v.count]),
        ),
      ).toEqual(Object.fromEntries([...versions].map(([v, n]) => [String(v), n])));
      expect(s.versions.find((v: { version: string }) => v.version === '1.2.0')?.revoked ?? true).toBe(true);
      expect(s.latestVersion).toBe('2.1.0');
      // Sanity of the generated fleet: every kind of figure is exercised.
      for (const st of [
        'on_target',
        'behind',
        'ahead',
        'failed',
        'silent',
        'never_reported',
        'no_target',
      ] as const)
        expect(s.status[st].count).toBeGreaterThan(0);
      // Ahead is not behind: the share behind leaves those sites out.
      expect(s.behindShare).toBeCloseTo(count(xs, (e) => e.status === 'behind') / xs.length, 10);
      for (const b of s.behind) expect(b.count).toBeGreaterThan(0);
      for (const l of ['content', 'compose', 'scripts'] as const) expect(s.drift[l].count).toBeGreaterThan(0);
      await expectFiltersList(allFigures(s));
    });

    it('should break the fleet down by region, district and tag, each row adding up and listing its sites', async () => {
      const xs = live();
      for (const by of ['region', 'district', 'tag'] as const) {
        const b = await get(`/api/v1/fleet/breakdown?by=${by}`);
        const groups = new Map<string, GenSite[]>();
        for (const x of xs) {
          const keys =
            by === 'tag' ? x.tags : [by === 'region' ? String(x.region) : `${x.region}/${x.district}`];
          for (const k of keys) groups.set(k, [...(groups.get(k) ?? []), x]);
        }
        expect(b.rows).toHaveLength(groups.size);
        for (const row of b.rows) {
          const k =
            by === 'tag'
              ? row.key.tag
              : by === 'region'
                ? String(row.key.region)
                : `${row.key.region}/${row.key.district}`;
          const g = groups.get(k)!;
          expect([k, row.sites.count]).toEqual([k, g.length]);
          for (const st of ['on_target', 'behind', 'ahead', 'failed', 'silent', 'never_reported'] as const) {
            expect([k, st, row.status[st].count]).toEqual([k, st, count(g, (e) => e.status === st)]);
          }
          expect([k, row.behind.map((x: { count: number }) => x.count)]).toEqual([
            k,
            [1, 2, 3].map((n) => count(g, (e) => e.behind === n)),
          ]);
          if (row.sites.filter) await expectFiltersList(allFigures(row));
          else expect(row.key.region ?? row.key.district ?? null).toBeNull();
        }
        // Ranked by share behind, largest first.
        const shares = b.rows.map((r: { behindShare: number }) => r.behindShare);
        expect(shares).toEqual([...shares].sort((a, c) => c - a));
      }
    });

    it('should narrow every figure by region, district, tag and connectivity', async () => {
      const cases: [string, (s: GenSite) => boolean][] = [
        ['region=North', (s) => s.region === 'North'],
        ['region=South&district=Delta', (s) => s.region === 'South' && s.district === 'Delta'],
        ['tag=pilot&connectivity=offline', (s) => s.tags.includes('pilot') && s.connectivity === 'offline'],
        ['connectivity=online', (s) => s.connectivity === 'online'],
      ];
      for (const [q, keep] of cases) {
        const s = await get(`/api/v1/fleet/summary?${q}`);
        const xs = live().filter(keep);
        expect([q, s.sites.count]).toEqual([q, xs.length]);
        expect([q, s.status.behind.count, s.status.ahead.count, s.status.silent.count]).toEqual([
          q,
          count(xs, (e) => e.status === 'behind'),
          count(xs, (e) => e.status === 'ahead'),
          count(xs, (e) => e.status === 'silent'),
        ]);
        await expectFiltersList(allFigures(s));
      }
      // A longer silence threshold moves sites out of "silent", and the filter carries it.
      const s30 = await get('/api/v1/fleet/summary?silentDays=30');
      expect(s30.status.silent.count).toBe(
        live().filter((x) => expectedOf(x, now, 30).status === 'silent').length,
      );
      expect(s30.status.silent.filter).toEqual({ status: 'silent', silentDays: 30 });
      await expectFiltersList(allFigures(s30));
    });

    it('should list the sites behind the most, furthest first', async () => {
      const b = await get('/api/v1/fleet/behind?limit=15');
      const want = live()
        .map((x) => ({ x, e: expectedOf(x, now) }))
        .filter(({ e }) => e.status === 'behind');
      const furthest = want
        .map(({ x, e }) => {
          const v = e.version!;
          return semver.valid(v)
            ? ['1.0.0', '1.1.0', '2.0.0', '2.1.0'].filter((y) => semver.gt(y, v) && semver.lte(y, x.target!))
                .length || 1
            : 3;
        })
        .sort((a, c) => c - a)
        .slice(0, 15);
      expect(b.items.map((i: { versionsBehind: number }) => i.versionsBehind)).toEqual(furthest);
      for (const i of b.items) expect(want.some(({ x }) => x.id === i.id)).toBe(true);
    });

    it('should give the dashboard in one request, agreeing with the separate endpoints', async () => {
      const o = await get('/api/v1/fleet/overview?region=West');
      const s = await get('/api/v1/fleet/summary?region=West');
      expect({ ...o.summary, generatedAt: null }).toEqual({ ...s, generatedAt: null });
      expect(o.regions).toHaveLength(1);
      expect(o.silent.length).toBe(Math.min(10, s.status.silent.count));
      for (const x of o.silent) expect(x.region).toBe('West');
      const reported = o.silent.map((x: { reportedAt: string }) => x.reportedAt);
      expect(reported).toEqual([...reported].sort());
    });

    it("should give the dashboard's first load in one request: the overview, adoption and facets the separate endpoints give", async () => {
      const d = await get('/api/v1/fleet/dashboard?region=West&days=30&limit=5');
      const o = await get('/api/v1/fleet/overview?region=West&limit=5');
      const strip = (x: { summary: object }) => ({ ...x, summary: { ...x.summary, generatedAt: null } });
      expect(strip(d.overview)).toEqual(strip(o));
      expect(d.adoption).toEqual(await get('/api/v1/fleet/adoption?region=West&days=30'));
      // The districts narrowed by the region, as the pickers ask for them.
      expect(d.facets).toEqual(await get('/api/v1/sites/facets?region=West'));
      expect(d.adoption.days).toHaveLength(30);
      const all = await get('/api/v1/fleet/dashboard');
      expect(all.adoption.days).toHaveLength(90);
      expect(all.facets).toEqual(await get('/api/v1/sites/facets'));
      expect(all.overview.summary.sites.count).toBe(live().length);
    });

    it('should count each release per day from the report history, as computed from the reports themselves', async () => {
      const a = await get('/api/v1/fleet/adoption?days=60');
      expect(a.days).toHaveLength(60);
      expect(a.days.at(-1)).toBe(new Date(now).toISOString().slice(0, 10));
      const want = expectedAdoption(fleet, 60, now);
      expect(a.reporting).toEqual(
        a.days.map((_: string, i: number) => [...want.values()].reduce((n, c) => n + c[i]!, 0)),
      );
      expect(
        Object.fromEntries(a.series.map((x: { version: string; counts: number[] }) => [x.version, x.counts])),
      ).toEqual(Object.fromEntries([...want].filter(([, c]) => c.some((n) => n > 0))));
      const north = await get('/api/v1/fleet/adoption?days=20&region=North');
      const wantNorth = expectedAdoption(
        fleet.filter((x) => x.region === 'North'),
        20,
        now,
      );
      expect(
        Object.fromEntries(
          north.series.map((x: { version: string; counts: number[] }) => [x.version, x.counts]),
        ),
      ).toEqual(Object.fromEntries([...wantNorth].filter(([, c]) => c.some((n) => n > 0))));
      expect(north.series[0].filter).toMatchObject({ region: 'North' });
    });

    it('should keep adoption right as check-ins, late receipts, archived and deleted sites arrive', async () => {
      // New versions through the real check-in, several in one group for one site.
      const movers = live()
        .filter((x) => x.reports.length > 0)
        .slice(0, 6);
      const devices: ReturnType<typeof withToken>[] = [];
      for (const m of movers) {
        const res = await operator(`/api/v1/sites/${m.id}/device-token`, { method: 'POST' });
        devices.push(withToken(t.app, (await res.json()).token));
      }
      const answers = await Promise.all(
        movers.map((m, i) =>
          devices[i]!('/api/v1/checkin', {
            method: 'POST',
            json: {
              version: i % 2 ? '2.1.0' : '2.0.0',
              status: 'healthy',
              idempotencyKey: `move-${m.id}`,
              contentPackageVersion: '2024.11',
              edgeScriptsVersion: '1.4.0',
              composeSha256: 'c'.repeat(64),
            },
          }),
        ),
      );
      for (const [i, res] of answers.entries()) {
        expect(res.status).toBe(200);
        movers[i]!.reports.push({
          version: i % 2 ? '2.1.0' : '2.0.0',
          at: new Date((await res.json()).receivedAt).getTime(),
          status: 'healthy',
        });
      }
      const twice = movers[0]!;
      const both = await Promise.all(
        ['1.1.0', '2.1.0'].map((v, k) =>
          devices[0]!('/api/v1/checkin', {
            method: 'POST',
            json: { version: v, status: 'healthy', idempotencyKey: `twice-${k}-${twice.id}` },
          }),
        ),
      );
      const bodies = await Promise.all(both.map((x) => x.json()));
      // Same receive instant possible: the later-received wins, as on the site row; read the order back.
      const order = await h.db
        .select({ version: siteReports.version, at: siteReports.reportedAt })
        .from(siteReports)
        .where(
          sql`${siteReports.id} in (${sql.join(
            bodies.map((b) => sql`${b.reportId}::uuid`),
            sql`, `,
          )})`,
        )
        .orderBy(siteReports.reportedAt, siteReports.receivedAt, siteReports.id);
      for (const o of order)
        twice.reports.push({ version: o.version!, at: o.at.getTime(), status: 'healthy' });
      twice.reports.sort((a, b) => a.at - b.at);

      // A receipt typed in late: it lands inside the history of a site, 20 days ago.
      const late = live().find(
        (x) => x.reports.length >= 2 && x.reports[0]!.at < now - 25 * DAY && !movers.includes(x),
      )!;
      const lateAt = now - 20 * DAY;
      expect(
        (
          await operator(`/api/v1/sites/${late.id}/reports`, {
            method: 'POST',
            json: { version: '1.1.0', status: 'installed', at: new Date(lateAt).toISOString() },
          })
        ).status,
      ).toBe(201);
      late.reports.push({ version: '1.1.0', at: lateAt, status: 'installed' });
      late.reports.sort((a, b) => a.at - b.at);

      // An archived site leaves the figures; a deleted one leaves the rollup too.
      const archived = live().find((x) => x.reports.length > 0 && !movers.includes(x) && x !== late)!;
      expect((await operator(`/api/v1/sites/${archived.id}/archive`, { method: 'POST' })).status).toBe(200);
      archived.archived = true;
      const deleted = live().find((x) => x.reports.length > 0 && !movers.includes(x) && x !== late)!;
      await h.db.delete(sites).where(eq(sites.id, deleted.id));
      fleet.splice(fleet.indexOf(deleted), 1);

      const a = await get('/api/v1/fleet/adoption?days=60');
      const want = expectedAdoption(fleet, 60, now);
      expect(
        Object.fromEntries(a.series.map((x: { version: string; counts: number[] }) => [x.version, x.counts])),
      ).toEqual(Object.fromEntries([...want].filter(([, c]) => c.some((n) => n > 0))));
      expect(a.reporting.at(-1)).toBe(live().filter((x) => x.reports.length > 0).length);

      // The rollup kept up by the writes equals one rebuilt from all the reports.
      const snapshot = async () =>
        (
          (await h.db.execute(sql`select site_id, version, valid_from, valid_to from site_version_spans
        where org_id = ${orgId} order by site_id, valid_from, version`)) as unknown as { rows: unknown[] }
        ).rows;
      // And so do the whole fleet's daily changes the triggers keep (zero rows aside).
      const deltas = async () =>
        (
          (await h.db.execute(sql`select version, day, delta from fleet_adoption_deltas
        where org_id = ${orgId} and delta <> 0 order by version, day`)) as unknown as { rows: unknown[] }
        ).rows;
      const kept = await snapshot();
      const keptDeltas = await deltas();
      expect(keptDeltas.length).toBeGreaterThan(0);
      await rebuildVersionSpans(h.db, { orgId });
      expect(await snapshot()).toEqual(kept);
      expect(await deltas()).toEqual(keptDeltas);
      await h.db.execute(sql`delete from fleet_adoption_deltas where org_id = ${orgId}`);
      await h.db.execute(sql`insert into fleet_adoption_deltas (org_id, version, day, delta)
        select org_id, version, day, sum(delta)::int from (
          select org_id, version, floor(extract(epoch from valid_from) / 86400)::int as day, 1 as delta from site_version_spans sp
            where org_id = ${orgId} and version is not null and exists (select 1 from sites s where s.id = sp.site_id and s.archived_at is null)
          union all
          select org_id, version, floor(extract(epoch from valid_to) / 86400)::int, -1 from site_version_spans sp
            where org_id = ${orgId} and version is not null and valid_to is not null and exists (select 1 from sites s where s.id = sp.site_id and s.archived_at is null)
        ) c group by 1, 2, 3`);
      expect(await deltas()).toEqual(keptDeltas);
      // Restoring the archived site brings its runs back into the whole fleet's figures.
      expect((await operator(`/api/v1/sites/${archived.id}/restore`, { method: 'POST' })).status).toBe(200);
      archived.archived = false;
      const back = await get('/api/v1/fleet/adoption?days=60');
      expect(
        Object.fromEntries(
          back.series.map((x: { version: string; counts: number[] }) => [x.version, x.counts]),
        ),
      ).toEqual(
        Object.fromEntries([...expectedAdoption(fleet, 60, now)].filter(([, c]) => c.some((n) => n > 0))),
      );
      const [{ n }] = (
        (await h.db.execute(
          sql`select count(*)::int as n from site_version_spans where site_id = ${deleted.id}`,
        )) as unknown as { rows: [{ n: number }] }
      ).rows;
      expect(n).toBe(0);
    });
  });

  describe('error', () => {
    it('should refuse bad filters and parameters with the error envelope', async () => {
      for (const q of [
        '/api/v1/fleet/summary?silentDays=0',
        '/api/v1/fleet/summary?connectivity=satellite',
        '/api/v1/fleet/breakdown?by=country',
        '/api/v1/fleet/adoption?days=0',
        '/api/v1/fleet/adoption?days=abc',
        '/api/v1/fleet/behind?limit=1000',
        `/api/v1/fleet/summary?region=${'x'.repeat(101)}`,
        '/api/v1/sites?behind=4',
        '/api/v1/sites?drift=images',
        '/api/v1/fleet/dashboard?days=0',
        '/api/v1/fleet/dashboard?days=731',
        '/api/v1/fleet/dashboard?limit=1000',
        '/api/v1/fleet/dashboard?silentDays=x',
        '/api/v1/fleet/dashboard?connectivity=satellite',
        '/api/v1/fleet/dashboard?region=West%00',
        `/api/v1/fleet/dashboard?tag=${'x'.repeat(10_000)}`,
        '/api/v1/fleet/dashboard?days=1e400',
      ]) {
        await expectEnvelope(await viewer(q), 400, 'VALIDATION_FAILED');
      }
    });

    it('should answer 401 without credentials', async () => {
      await expectEnvelope(await t.app.request('/api/v1/fleet/overview'), 401);
      await expectEnvelope(await t.app.request('/api/v1/fleet/adoption'), 401);
      await expectEnvelope(await t.app.request('/api/v1/fleet/dashboard'), 401);
    });
  });

  describe('security', () => {
    it("should never count another organisation's sites, and answer it with its own fleet only", async () => {
      const other = await makeOrg(h.db);
      const r = await h.db
        .insert(releases)
        .values({ orgId: other.id, version: '9.0.0', state: 'published' })
        .returning();
      const s = await makeSite(h.db, other.id, {
        region: 'North',
        reportedVersion: '9.0.0',
        reportedReleaseId: r[0]!.id,
        reportedAt: new Date(),
        reportedStatus: 'healthy',
      });
      await h.db.insert(siteReports).values({
        orgId: other.id,
        siteId: s.id,
        source: 'heartbeat',
        version: '9.0.0',
        status: 'healthy',
        idempotencyKey: 'other-1',
        reportedAt: new Date(),
      });
      await rebuildVersionSpans(h.db, { siteIds: [s.id] });
      const mine = await get('/api/v1/fleet/overview');
      expect(mine.summary.sites.count).toBe(live().length);
      expect(mine.summary.versions.some((v: { version: string }) => v.version === '9.0.0')).toBe(false);
      const adoption = await get('/api/v1/fleet/adoption?days=5');
      expect(adoption.series.some((v: { version: string }) => v.version === '9.0.0')).toBe(false);
      const theirs = withToken(t.app, (await makeApiToken(h.db, other.id, 'viewer')).token);
      const o = await get('/api/v1/fleet/overview', theirs);
      expect(o.summary.sites.count).toBe(1);
      expect(o.summary.versions.map((v: { version: string }) => v.version)).toEqual(['9.0.0']);
      expect((await get('/api/v1/fleet/behind', theirs)).items).toEqual([]);
      const dash = await get('/api/v1/fleet/dashboard?days=5', theirs);
      expect(dash.overview.summary.sites.count).toBe(1);
      expect(dash.adoption.series.map((x: { version: string }) => x.version)).toEqual(['9.0.0']);
      expect(dash.facets.regions).toEqual(['North']);
      expect(dash.facets.versions).toEqual(['9.0.0']);
      const ours = await get('/api/v1/fleet/dashboard?days=5');
      expect(ours.overview.summary.sites.count).toBe(live().length);
      expect(ours.adoption.series.some((v: { version: string }) => v.version === '9.0.0')).toBe(false);
      expect(ours.facets.versions).not.toContain('9.0.0');
      expect(
        (await get('/api/v1/fleet/adoption?days=5', theirs)).series.map(
          (x: { version: string }) => x.version,
        ),
      ).toEqual(['9.0.0']);
    });

    it('should show a coordinator the figures of their own sites only', async () => {
      const coord = await makeUser(h.db, orgId, 'coordinator');
      const mine = live().slice(10, 14);
      for (const m of mine)
        await h.db.insert(coordinatorSites).values({ orgId, userId: coord.id, siteId: m.id });
      const session = await signIn(t.app, coord.email, coord.password);
      const res = await session.request('/api/v1/fleet/summary');
      expect(res.status).toBe(200);
      const s = await res.json();
      expect(s.sites.count).toBe(mine.length);
      expect(s.status.behind.count).toBe(count(mine, (e) => e.status === 'behind'));
      const a = await (await session.request('/api/v1/fleet/adoption?days=3')).json();
      expect(a.reporting.at(-1)).toBe(mine.filter((x) => x.reports.length > 0).length);
      expect(a.series.reduce((n: number, x: { counts: number[] }) => n + x.counts.at(-1)!, 0)).toBe(
        a.reporting.at(-1),
      );
      const d = await (await session.request('/api/v1/fleet/dashboard?days=3')).json();
      expect(d.overview.summary.sites.count).toBe(mine.length);
      expect(d.adoption.reporting).toEqual(a.reporting);
      expect(d.facets.regions).toEqual([...new Set(mine.map((m) => m.region).filter(Boolean))].sort());
    });
  });
});
