import { and, isNull, sql, type SQL } from 'drizzle-orm';
import { sites } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { DEFAULT_SILENT_DAYS, visibleSites, type SiteStatus } from './scope.ts';
import { statusConditions } from './list.ts';
import { loadReleaseOrder } from '../fleet/drift.ts';

/** Fleet at a glance: sites per status (the list's own status conditions), per reported version and per region. */
export async function fleetSummary({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: { silentDays?: number };
  now?: Date;
}) {
  const conditions = statusConditions(now, input.silentDays, await loadReleaseOrder(ctx));
  const keys = Object.keys(conditions) as SiteStatus[];
  const where = and(visibleSites(ctx), isNull(sites.archivedAt));
  const [byStatus, byVersion, byRegion] = await Promise.all([
    ctx.db
      .select(
        Object.fromEntries(
          keys.map((k) => [k, sql<number>`(count(*) filter (where ${conditions[k]}))::int`]),
        ) as Record<SiteStatus, SQL<number>>,
      )
      .from(sites)
      .where(where),
    ctx.db
      .select({ key: sql<string | null>`${sites.reportedVersion}`, n: sql<number>`count(*)::int` })
      .from(sites)
      .where(where)
      .groupBy(sites.reportedVersion)
      .orderBy(sql`2 desc`)
      .limit(20),
    ctx.db
      .select({ key: sql<string | null>`${sites.region}`, n: sql<number>`count(*)::int` })
      .from(sites)
      .where(where)
      .groupBy(sites.region)
      .orderBy(sql`2 desc`)
      .limit(50),
  ]);
  const statuses = byStatus[0]!;
  return {
    total: keys.reduce((a, k) => a + statuses[k], 0),
    byStatus: statuses,
    byVersion: byVersion.map((r) => ({ version: r.key, sites: r.n })),
    byRegion: byRegion.map((r) => ({ region: r.key, sites: r.n })),
    silentDays: input.silentDays ?? DEFAULT_SILENT_DAYS,
  };
}
