import { and, arrayContains, asc, eq, sql, type SQL } from 'drizzle-orm';
import { fleetSiteCounts, sites } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { siteFilterWhere, statusConditions, type SiteFilter } from '../sites/list.ts';
import { DEFAULT_SILENT_DAYS, targetRelease, type SiteStatus } from '../sites/scope.ts';
import {
  layerDrift,
  LAYERS,
  loadReleaseOrder,
  ReleaseOrder,
  type BehindBucket,
  type Layer,
} from './drift.ts';

/** What every fleet figure can be narrowed by (the site list's filters of the same names). */
export interface FleetFilter {
  region?: string;
  district?: string;
  tag?: string;
  connectivity?: 'online' | 'intermittent' | 'offline';
  silentDays?: number;
}

/** The site-list filter (GET /sites, and the web's /sites?… URL) that lists exactly a figure's sites. */
export type ListFilter = Pick<
  SiteFilter,
  'region' | 'district' | 'tag' | 'connectivity' | 'silentDays' | 'status' | 'version' | 'behind' | 'drift'
>;

export interface Figure {
  count: number;
  filter: ListFilter | null;
}

export const STATUSES: readonly SiteStatus[] = [
  'on_target',
  'behind',
  'ahead',
  'failed',
  'revoked',
  'silent',
  'never_reported',
  'no_target',
];

export type Dimension = 'region' | 'district' | 'tag';

interface GroupRow {
  k1: string | null;
  k2: string | null;
  v: string | null;
  t: string | null;
  st: SiteStatus;
  n: number;
  dc: number;
  dm: number;
  ds: number;
}

function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

export function baseFilter(f: FleetFilter): ListFilter {
  const out: ListFilter = {};
  if (f.region) out.region = f.region;
  if (f.district) out.district = f.district;
  if (f.tag) out.tag = f.tag;
  if (f.connectivity) out.connectivity = f.connectivity;
  if (f.silentDays && f.silentDays !== DEFAULT_SILENT_DAYS) out.silentDays = f.silentDays;
  return out;
}

/**
 * Runs the dashboard's reads in one transaction with PostgreSQL's JIT off. The grouped pass carries
 * per-row subqueries whose estimated cost crosses the JIT threshold, and compiling the plan took
 * seconds (8.4 s of JIT for a 0.2 s query, measured on the 100,000-site bench) — never worth it here.
 */
export async function withoutJit<T>(ctx: ServiceCtx, fn: (ctx: ServiceCtx) => Promise<T>): Promise<T> {
  return ctx.db.transaction(async (tx) => {
    await tx.execute(sql`set local jit = off`);
    // Group in memory (a hash of a few hundred groups), not by sorting 100,000 rows to disk.
    await tx.execute(sql`set local work_mem = '32MB'`);
    // One backend scans the fleet faster than three that then merge-sort it (measured: parallel
    // workers made the planner sort instead of hash, 1 s against a fraction of it).
    await tx.execute(sql`set local max_parallel_workers_per_gather = 0`);
    return fn({ ...ctx, db: tx as unknown as ServiceCtx['db'] });
  });
}

/**
 * A dashboard read as a service verb, `verb({ ctx, input, now })`: `read` runs in withoutJit's
 * transaction, with `now` the request's time unless a test fixes it.
 */
export function fleetRead<I, R>(read: (ctx: ServiceCtx, input: I, now: Date) => Promise<R>) {
  return ({ ctx, input, now = new Date() }: { ctx: ServiceCtx; input: I; now?: Date }): Promise<R> =>
    withoutJit(ctx, (tx) => read(tx, input, now));
}

/**
 * The visible fleet grouped by (dimension, reported version, target, status) with the layer drift
 * counted alongside: a few thousand rows at most, from which every figure of the summary, the
 * distribution and a breakdown is added up. The status of each site is the site list's own rule
 * (statusConditions), so a figure and the list behind it cannot disagree.
 *
 * For an organisation-wide viewer it reads the maintained rollup fleet_site_counts (a few thousand
 * rows) instead of every site, and the sites themselves only for the one UTC day on which "silent
 * for N days" falls (through sites_org_reported_day_idx): before that day every report is older than
 * the threshold, after it every report is newer. A coordinator sees only their own sites, which
 * the rollup does not know, so their figures come from their sites.
 */
export async function groupFleet(
  ctx: ServiceCtx,
  f: FleetFilter,
  now: Date,
  dim: Dimension | null,
  order: ReleaseOrder,
): Promise<GroupRow[]> {
  if (ctx.actor.role === 'coordinator') return groupSites(ctx, f, now, dim, order);
  const boundary = silentBoundaryDay(now, f.silentDays);
  const [counted, boundarySites] = [
    await groupCounts(ctx, f, boundary, dim, order),
    await groupSites(ctx, f, now, dim, order, sql`${sites.reportedDay} = ${boundary}`),
  ];
  return [...counted, ...boundarySites];
}

/** The UTC day (YYYY-MM-DD) in which the "silent" threshold falls. */
function silentBoundaryDay(now: Date, silentDays = DEFAULT_SILENT_DAYS): string {
  return new Date(now.getTime() - silentDays * 86_400_000).toISOString().slice(0, 10);
}

const DIM_KEYS_SITES: Record<Dimension | 'none', [SQL, SQL]> = {
  none: [sql`null::text`, sql`null::text`],
  region: [sql`${sites.region}`, sql`null::text`],
  district: [sql`${sites.region}`, sql`${sites.district}`],
  tag: [sql`tg.tag`, sql`null::text`],
};

/** The sites in view (narrowed by `only`), grouped; exported for the bench's same-run baseline. */
export async function groupSites(
  ctx: ServiceCtx,
  f: FleetFilter,
  now: Date,
  dim: Dimension | null,
  order: ReleaseOrder,
  only?: SQL,
): Promise<GroupRow[]> {
  const cond = statusConditions(now, f.silentDays, order);
  const statusCase = sql`case ${sql.join(
    STATUSES.map((k) => sql`when ${cond[k]} then ${k}`),
    sql` `,
  )} end`;
  const where = and(siteFilterWhere(ctx, f, now), only);
  const [k1, k2] = DIM_KEYS_SITES[dim ?? 'none'];
  const result = await ctx.db.execute(sql`
    select ${k1} as k1, ${k2} as k2, ${sites.reportedVersion} as v, ${sites.targetReleaseId} as t, ${statusCase} as st,
      count(*)::int as n,
      (count(*) filter (where (${sites.reportedContentVersion} <> cp.version) is true))::int as dc,
      (count(*) filter (where ${layerDrift('compose')}))::int as dm,
      (count(*) filter (where (${sites.reportedScriptsVersion} <> rr.edge_scripts_version) is true))::int as ds
    from ${sites}
      left join releases rr on rr.id = ${sites.reportedReleaseId}
      left join content_packages cp on cp.id = rr.content_package_id
      ${dim === 'tag' ? sql`cross join lateral unnest(${sites.tags}) as tg(tag)` : sql``}
    where ${where}
    group by 1, 2, 3, 4, 5`);
  return rowsOf<GroupRow>(result);
}

/**
 * The rollup's rows of the organisation, but those whose latest report falls on the boundary day,
 * grouped as groupSites groups the sites. Each status is statusConditions read on the rollup's
 * columns: "reported before the threshold" is a report day before the boundary, "since" after it.
 */
async function groupCounts(
  ctx: ServiceCtx,
  f: FleetFilter,
  boundary: string,
  dim: Dimension | null,
  order: ReleaseOrder,
): Promise<GroupRow[]> {
  const c = fleetSiteCounts;
  // The rollup's rows are first added up on what the status and the drift read — the report day
  // only as before or after the boundary (`side`: −1, 1, null for never) — so that the status case
  // and the release joins run over a few hundred groups, not the ~24,000 rows that the report day
  // multiplies (measured: the case over every row was most of a breakdown's time; docs/benchmarks.md).
  const failed = sql`g.failed`;
  const revoked = sql`(rr.state = 'revoked') is true`;
  const reported = sql`g.side is not null`;
  const recentAndOk = sql`g.side > 0 and not ${failed} and not ${revoked}`;
  const ahead = order.aheadCondition({ reported: sql`g.r`, target: sql`g.t` });
  const cond: Record<SiteStatus, SQL> = {
    never_reported: sql`g.side is null`,
    failed: sql`${reported} and ${failed}`,
    revoked: sql`${reported} and not ${failed} and ${revoked}`,
    silent: sql`g.side < 0 and not ${failed} and not ${revoked}`,
    no_target: sql`${recentAndOk} and g.t is null`,
    on_target: sql`${recentAndOk} and g.t is not null and (g.r = g.t) is true`,
    behind: sql`${recentAndOk} and g.t is not null and (g.r = g.t) is not true and not ${ahead}`,
    ahead: sql`${recentAndOk} and g.t is not null and ${ahead}`,
  };
  const statusCase = sql`case ${sql.join(
    STATUSES.map((k) => sql`when ${cond[k]} then ${k}`),
    sql` `,
  )} end`;
  // A tag breakdown groups by tag set first and splits the sets into tags afterwards.
  const keys: Record<Dimension | 'none', [SQL, SQL]> = {
    none: [sql`null::text`, sql`null::text`],
    region: [sql`${c.region}`, sql`null::text`],
    district: [sql`${c.region}`, sql`${c.district}`],
    tag: [sql`${c.tags}`, sql`null::text`],
  };
  const [k1, k2] = keys[dim ?? 'none'];
  const where = and(
    eq(c.orgId, ctx.orgId),
    sql`${c.reportedDay} is distinct from ${boundary}`,
    f.region ? eq(c.region, f.region) : undefined,
    f.district ? eq(c.district, f.district) : undefined,
    f.tag ? arrayContains(c.tags, [f.tag]) : undefined,
    f.connectivity ? eq(c.connectivity, f.connectivity) : undefined,
  );
  const result = await ctx.db.execute(sql`
    with g as (
      select ${k1} as k1, ${k2} as k2, ${c.reportedVersion} as v, ${c.reportedReleaseId} as r,
        ${c.targetReleaseId} as t, ${c.reportedFailed} as failed, sign(${c.reportedDay} - ${boundary}::date) as side,
        ${c.contentVersion} as cv, ${c.scriptsVersion} as sv,
        sum(${c.n})::int as n, (coalesce(sum(${c.n}) filter (where ${c.composeDrift}), 0))::int as dm
      from ${c}
      where ${where}
      group by 1, 2, 3, 4, 5, 6, 7, 8, 9
    )
    select ${dim === 'tag' ? sql`tg.tag` : sql`g.k1`} as k1, g.k2, g.v, g.t, ${statusCase} as st,
      sum(g.n)::int as n,
      (coalesce(sum(g.n) filter (where (g.cv <> cp.version) is true), 0))::int as dc,
      sum(g.dm)::int as dm,
      (coalesce(sum(g.n) filter (where (g.sv <> rr.edge_scripts_version) is true), 0))::int as ds
    from g
      left join releases rr on rr.id = g.r
      left join content_packages cp on cp.id = rr.content_package_id
      ${dim === 'tag' ? sql`cross join lateral unnest(g.k1::text[]) as tg(tag)` : sql``}
    group by 1, 2, 3, 4, 5`);
  return rowsOf<GroupRow>(result);
}

interface Tally {
  sites: number;
  status: Record<SiteStatus, number>;
  behind: Record<BehindBucket, number>;
  drift: Record<Layer, number>;
  versions: Map<string | null, number>;
  behindVersions: number;
}

function newTally(): Tally {
  return {
    sites: 0,
    status: Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<SiteStatus, number>,
    behind: { 1: 0, 2: 0, 3: 0 },
    drift: { content: 0, compose: 0, scripts: 0 },
    versions: new Map(),
    behindVersions: 0,
  };
}

function add(t: Tally, r: GroupRow, order: ReleaseOrder) {
  t.sites += r.n;
  t.status[r.st] += r.n;
  if (r.st === 'behind') {
    t.behind[order.bucket(r.v, r.t)] += r.n;
    t.behindVersions += r.n * Math.max(1, order.versionsBehind(r.v, r.t) ?? 3);
  }
  t.drift.content += r.dc;
  t.drift.compose += r.dm;
  t.drift.scripts += r.ds;
  t.versions.set(r.v, (t.versions.get(r.v) ?? 0) + r.n);
}

/** A tally as figures, each with the list filter of its sites (`scope` narrows the base filter). */
function figures(t: Tally, scope: ListFilter | null, order: ReleaseOrder) {
  const fig = (count: number, extra: Partial<ListFilter>): Figure => ({
    count,
    filter: scope ? { ...scope, ...extra } : null,
  });
  const statusFigures = Object.fromEntries(
    STATUSES.map((s) => [s, fig(t.status[s], { status: s })]),
  ) as Record<SiteStatus, Figure>;
  return {
    sites: fig(t.sites, {}),
    status: statusFigures,
    behind: BEHIND_KEYS.map((b) => ({ by: b, ...fig(t.behind[b], { behind: b }) })),
    drift: Object.fromEntries(LAYERS.map((l) => [l, fig(t.drift[l], { drift: l })])) as Record<Layer, Figure>,
    versions: [...t.versions.entries()]
      .sort(([a], [b]) => (a === null ? 1 : b === null ? -1 : ReleaseOrder.compare(a, b)))
      .map(([version, count]) => ({
        version,
        count,
        // Sites that never reported have no version: the "never reported" status lists them.
        filter: scope
          ? version === null
            ? { ...scope, status: 'never_reported' as const }
            : { ...scope, version }
          : null,
        revoked:
          version !== null &&
          [...order.byId.values()].some((r) => r.version === version && r.state === 'revoked'),
      })),
    // Mean versions behind over the sites behind: how far the laggards lag.
    meanVersionsBehind: t.status.behind ? Math.round((t.behindVersions / t.status.behind) * 100) / 100 : 0,
    behindShare: t.sites ? t.status.behind / t.sites : 0,
  };
}

const BEHIND_KEYS: BehindBucket[] = [1, 2, 3];

export type FleetFigures = ReturnType<typeof figures>;

/** The figures of the whole (filtered) fleet, and the releases it reports. */
export const fleetSummaryFigures = fleetRead(async (ctx, input: FleetFilter, now) => {
  const order = await loadReleaseOrder(ctx);
  return summaryOf(order, await groupFleet(ctx, input, now, null, order), input, now);
});

function summaryOf(order: ReleaseOrder, rows: GroupRow[], input: FleetFilter, now: Date) {
  const t = newTally();
  for (const r of rows) add(t, r, order);
  const f = figures(t, baseFilter(input), order);
  return {
    ...f,
    latestVersion: order.latest(),
    silentDays: input.silentDays ?? DEFAULT_SILENT_DAYS,
    generatedAt: now.toISOString(),
  };
}

/** The fleet broken down by region, district or tag: one row per value, biggest share behind first. */
export const fleetBreakdown = fleetRead(async (ctx, input: FleetFilter & { by: Dimension }, now) => {
  const order = await loadReleaseOrder(ctx);
  return {
    by: input.by,
    rows: breakdownOf(order, await groupFleet(ctx, input, now, input.by, order), input, input.by),
  };
});

function breakdownOf(order: ReleaseOrder, rows: GroupRow[], input: FleetFilter, by: Dimension) {
  const tallies = new Map<string, { k1: string | null; k2: string | null; t: Tally }>();
  for (const r of rows) {
    const key = JSON.stringify([r.k1, r.k2]);
    let e = tallies.get(key);
    if (!e) tallies.set(key, (e = { k1: r.k1, k2: r.k2, t: newTally() }));
    add(e.t, r, order);
  }
  const base = baseFilter(input);
  return [...tallies.values()]
    .map(({ k1, k2, t }) => {
      // Sites with no region or district cannot be listed by a filter (the list has no "none" value).
      const scope: ListFilter | null =
        by === 'tag'
          ? { ...base, tag: k1! }
          : by === 'region'
            ? k1 === null
              ? null
              : { ...base, region: k1 }
            : k1 === null || k2 === null
              ? null
              : { ...base, region: k1, district: k2 };
      const key =
        by === 'district' ? { region: k1, district: k2 } : by === 'tag' ? { tag: k1 } : { region: k1 };
      return { key, ...figures(t, scope, order) };
    })
    .sort(
      (a, b) =>
        b.behindShare - a.behindShare ||
        b.meanVersionsBehind - a.meanVersionsBehind ||
        b.sites.count - a.sites.count,
    );
}

/** The columns of a site that the dashboard's site lists show. */
const SITE_BRIEF = {
  id: sites.id,
  code: sites.code,
  name: sites.name,
  region: sites.region,
  district: sites.district,
  reportedVersion: sites.reportedVersion,
  reportedAt: sites.reportedAt,
};

/** The sites furthest behind their target (most versions first, then the longest unseen). */
export const sitesBehindMost = fleetRead(async (ctx, input: FleetFilter & { limit: number }, now) => {
  const order = await loadReleaseOrder(ctx, { reportedVersions: true });
  return { items: await behindMostOf(ctx, order, input, now) };
});

async function behindMostOf(
  ctx: ServiceCtx,
  order: ReleaseOrder,
  input: FleetFilter & { limit: number },
  now: Date,
) {
  // (target, reported version) pairs by how many versions behind they are; the furthest asked first,
  // so the common case is one indexed query for a handful of sites, not a rank of every site behind.
  const byDistance = new Map<number, SQL[]>();
  for (const t of order.byId.values()) {
    for (const v of order.reportedVersions) {
      const n = order.versionsBehind(v, t.id);
      if (n === null || v === t.version) continue;
      const k = Math.max(1, n);
      byDistance.set(k, [...(byDistance.get(k) ?? []), sql`(${t.id}::uuid, ${v}::text)`]);
    }
  }
  const out: {
    id: string;
    code: string;
    name: string;
    region: string | null;
    district: string | null;
    reportedVersion: string | null;
    targetVersion: string | null;
    reportedAt: string | null;
    versionsBehind: number;
  }[] = [];
  const behind = statusConditions(now, input.silentDays, order).behind;
  for (const n of [...byDistance.keys()].sort((a, b) => b - a)) {
    if (out.length >= input.limit) break;
    const rows = await ctx.db
      .select({ ...SITE_BRIEF, targetVersion: targetRelease.targetVersion })
      .from(sites)
      .where(
        and(
          siteFilterWhere(ctx, input, now),
          behind,
          sql`(${sites.targetReleaseId}, ${sites.reportedVersion}) in (${sql.join(byDistance.get(n)!, sql`, `)})`,
        ),
      )
      .orderBy(asc(sites.reportedAt), asc(sites.code))
      .limit(input.limit - out.length);
    for (const r of rows)
      out.push({ ...r, reportedAt: r.reportedAt?.toISOString() ?? null, versionsBehind: n });
  }
  return out;
}

/** The sites silent the longest (last report older than the silent threshold). */
async function silentLongest(
  ctx: ServiceCtx,
  order: ReleaseOrder,
  input: FleetFilter & { limit: number },
  now: Date,
) {
  const rows = await ctx.db
    .select(SITE_BRIEF)
    .from(sites)
    .where(
      and(
        siteFilterWhere(ctx, input, now),
        statusConditions(now, input.silentDays, order).silent,
        // Implied by "silent"; lets the planner walk sites_org_reported_day_idx from the oldest day.
        sql`${sites.reportedDay} <= ${silentBoundaryDay(now, input.silentDays)}`,
      ),
    )
    // The report day first: the same order as by reported_at alone, which the index gives.
    .orderBy(asc(sites.reportedDay), asc(sites.reportedAt), asc(sites.code))
    .limit(input.limit);
  return rows.map((r) => ({ ...r, reportedAt: r.reportedAt?.toISOString() ?? null }));
}

/**
 * Everything the dashboard shows but adoption over time, in one request: the summary, the
 * breakdown by region (which also draws the per-region release bars and the heat table), the
 * sites behind the most and the longest silent.
 */
export const fleetOverview = fleetRead(async (ctx, input: FleetFilter & { limit: number }, now) => {
  // The grouped pass already lists every version reported in view: no separate distinct scan.
  const releases = await loadReleaseOrder(ctx);
  const rows = await groupFleet(ctx, input, now, 'region', releases);
  const order = releases.withReported(rows.map((r) => r.v));
  return {
    summary: summaryOf(order, rows, input, now),
    regions: breakdownOf(order, rows, input, 'region'),
    behindMost: await behindMostOf(ctx, order, input, now),
    silent: await silentLongest(ctx, order, input, now),
  };
});
