import { and, arrayContains, eq, isNotNull, isNull, sql, type SQL } from 'drizzle-orm';
import { sites } from '../../db/schema/index.ts';
import { fromBase64Url, toBase64Url } from '../../lib/crypto.ts';
import { ValidationError, fieldIssue } from '../../lib/errors.ts';
import type { ServiceCtx } from '../context.ts';
import { keysetPage } from '../keyset.ts';
import { layerDrift, loadReleaseOrder, ReleaseOrder, type BehindBucket, type Layer } from '../fleet/drift.ts';
import { DEFAULT_SILENT_DAYS, targetRelease, toSiteView, visibleSites, type SiteStatus } from './scope.ts';

export const TOTAL_CAP = 1_000;

/** For the statuses that do not compare releases (checked by siteFilterWhere: never used for ahead/behind). */
const EMPTY_ORDER = new ReleaseOrder([]);

export const SITE_SORTS = ['code', 'name', 'region', 'reportedAt', 'createdAt'] as const;
export type SiteSort = (typeof SITE_SORTS)[number];

export interface SiteFilter {
  q?: string;
  region?: string;
  district?: string;
  tag?: string;
  connectivity?: 'online' | 'intermittent' | 'offline';
  version?: string;
  status?: SiteStatus;
  silentDays?: number;
  archived?: boolean;
  /** Behind its target by 1, 2 or 3+ versions (implies status "behind"); needs the release order. */
  behind?: BehindBucket;
  /** Reports a content package, compose file or scripts other than its release carries. */
  drift?: Layer;
}

/** The release order a filter needs (`behind`, and the statuses "behind" and "ahead"), loaded once per request. */
export async function releaseOrderFor(ctx: ServiceCtx, f: SiteFilter): Promise<ReleaseOrder | undefined> {
  if (f.behind) return loadReleaseOrder(ctx, { reportedVersions: true });
  return f.status === 'behind' || f.status === 'ahead' ? loadReleaseOrder(ctx) : undefined;
}

export interface ListSitesInput extends SiteFilter {
  sort?: SiteSort;
  order?: 'asc' | 'desc';
  limit: number;
  cursor?: string;
}

// Nullable sort columns are coalesced so that keyset comparisons stay total.
const sortExpr: Record<SiteSort, { expr: SQL; cast: string }> = {
  code: { expr: sql`${sites.code}`, cast: 'text' },
  name: { expr: sql`${sites.name}`, cast: 'text' },
  region: { expr: sql`coalesce(${sites.region}, '')`, cast: 'text' },
  reportedAt: { expr: sql`coalesce(${sites.reportedAt}, 'epoch'::timestamptz)`, cast: 'timestamptz' },
  createdAt: { expr: sql`${sites.createdAt}`, cast: 'timestamptz' },
};

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (m) => `\\${m}`);
}

/**
 * The SQL of each status, written once: the list filters on one, the summary counts them all.
 * They are the rule of siteStatus() in scope.ts and exclude one another. "Ahead" and "behind" need
 * the organisation's release order (a site on a newer release than its target is ahead).
 */
export function statusConditions(
  now: Date,
  silentDays: number | undefined,
  order: ReleaseOrder,
): Record<SiteStatus, SQL> {
  silentDays ??= DEFAULT_SILENT_DAYS;
  const silentBefore = new Date(now.getTime() - silentDays * 86_400_000);
  const notFailed = sql`coalesce(${sites.reportedStatus}, '') not in ('failed', 'rolled_back')`;
  const onRevoked = sql`exists (select 1 from releases r where r.id = ${sites.reportedReleaseId} and r.state = 'revoked')`;
  const ahead = order.aheadCondition();
  const recentAndOk = and(
    isNotNull(sites.reportedAt),
    sql`${sites.reportedAt} >= ${silentBefore}`,
    notFailed,
    sql`not ${onRevoked}`,
  );
  return {
    never_reported: isNull(sites.reportedAt),
    failed: and(isNotNull(sites.reportedAt), sql`${sites.reportedStatus} in ('failed', 'rolled_back')`)!,
    revoked: and(isNotNull(sites.reportedAt), notFailed, onRevoked)!,
    silent: and(sql`${sites.reportedAt} < ${silentBefore}`, notFailed, sql`not ${onRevoked}`)!,
    no_target: and(recentAndOk, isNull(sites.targetReleaseId))!,
    // IS [NOT] TRUE, so the planner uses the statistics on this expression (migration 0006).
    on_target: and(
      recentAndOk,
      isNotNull(sites.targetReleaseId),
      sql`(${sites.reportedReleaseId} = ${sites.targetReleaseId}) is true`,
    )!,
    behind: and(
      recentAndOk,
      isNotNull(sites.targetReleaseId),
      sql`(${sites.reportedReleaseId} = ${sites.targetReleaseId}) is not true`,
      sql`not ${ahead}`,
    )!,
    ahead: and(recentAndOk, isNotNull(sites.targetReleaseId), ahead)!,
  };
}

/** The WHERE clause for a filter; shared by the list, the count, the CSV export and the fleet figures. */
export function siteFilterWhere(ctx: ServiceCtx, f: SiteFilter, now = new Date(), order?: ReleaseOrder): SQL {
  const q = f.q?.trim();
  const needsOrder = f.behind || f.status === 'behind' || f.status === 'ahead';
  if (needsOrder && !order)
    throw new Error('siteFilterWhere: this filter needs the release order (releaseOrderFor)');
  return and(
    visibleSites(ctx),
    f.archived ? isNotNull(sites.archivedAt) : isNull(sites.archivedAt),
    // Must match the expression of the sites_search_trgm_idx index.
    q ? sql`(${sites.code} || ' ' || ${sites.name}) ilike ${`%${escapeLike(q)}%`}` : undefined,
    f.region ? eq(sites.region, f.region) : undefined,
    f.district ? eq(sites.district, f.district) : undefined,
    f.tag ? arrayContains(sites.tags, [f.tag]) : undefined,
    f.connectivity ? eq(sites.connectivity, f.connectivity) : undefined,
    f.version ? eq(sites.reportedVersion, f.version) : undefined,
    f.status ? statusConditions(now, f.silentDays, order ?? EMPTY_ORDER)[f.status] : undefined,
    f.behind && order
      ? and(statusConditions(now, f.silentDays, order).behind, order.behindCondition(f.behind))
      : undefined,
    f.drift ? layerDrift(f.drift) : undefined,
  )!;
}

interface SiteCursor {
  s: SiteSort;
  o: 'asc' | 'desc';
  v: string;
  id: string;
}

function encode(c: SiteCursor) {
  return toBase64Url(new TextEncoder().encode(JSON.stringify(c)));
}
function decode(raw: string, sort: SiteSort, order: 'asc' | 'desc'): SiteCursor {
  let c: SiteCursor;
  try {
    c = JSON.parse(new TextDecoder().decode(fromBase64Url(raw)));
  } catch {
    c = {} as SiteCursor;
  }
  if (typeof c.v !== 'string' || typeof c.id !== 'string' || !/^[0-9a-f-]{36}$/.test(c.id)) {
    throw new ValidationError(
      'The cursor is not one this API gave out.',
      fieldIssue('cursor', 'Start from the first page.'),
    );
  }
  if (c.s !== sort || c.o !== order)
    throw new ValidationError(
      'The cursor belongs to a different sort order; start from the first page.',
      fieldIssue('cursor', 'Start from the first page.'),
    );
  return c;
}

export async function listSites({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: ListSitesInput;
  now?: Date;
}) {
  const sort = input.sort ?? 'code';
  const order = input.order ?? 'asc';
  const { expr, cast } = sortExpr[sort];
  const where = siteFilterWhere(ctx, input, now, await releaseOrderFor(ctx, input));
  const c = input.cursor ? decode(input.cursor, sort, order) : null;
  const after = c
    ? order === 'asc'
      ? sql`(${expr}, ${sites.id}) > (cast(${c.v} as ${sql.raw(cast)}), cast(${c.id} as uuid))`
      : sql`(${expr}, ${sites.id}) < (cast(${c.v} as ${sql.raw(cast)}), cast(${c.id} as uuid))`
    : undefined;
  const dir = order === 'asc' ? sql`asc` : sql`desc`;
  const [{ rows, nextCursor }, [{ total } = { total: 0 }]] = await Promise.all([
    keysetPage(
      input.limit,
      (take) =>
        ctx.db
          .select({ site: sites, ...targetRelease, sortValue: sql<string>`(${expr})::text` })
          .from(sites)
          .where(and(where, after))
          .orderBy(sql`${expr} ${dir}`, sql`${sites.id} ${dir}`)
          .limit(take),
      (last) => encode({ s: sort, o: order, v: last.sortValue, id: last.site.id }),
    ),
    // Counting stops at TOTAL_CAP: an exact count of a whole 100,000-site fleet on every page costs
    // more than the page itself; past the cap the UI says "1,000+" (GET /sites/summary gives whole-fleet counts).
    ctx.db.select({ total: sql<number>`count(*)::int` }).from(
      ctx.db
        .select({ one: sql`1` })
        .from(sites)
        .where(where)
        .limit(TOTAL_CAP + 1)
        .as('capped'),
    ),
  ]);
  return {
    items: rows.map((r) => toSiteView(r.site, r.targetVersion, now, r.reportedRevoked)),
    total: Math.min(total, TOTAL_CAP),
    totalIsExact: total <= TOTAL_CAP,
    nextCursor,
  };
}
