import { and, isNull, sql } from 'drizzle-orm';
import { sites } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { DEFAULT_SILENT_DAYS, visibleSites, type SiteStatus } from './scope.ts';

/**
 * Fleet at a glance: sites per status, per reported version and per region, in one pass over the
 * visible sites. The status rule is the same as siteStatus() in scope.ts, written in SQL.
 */
export async function fleetSummary({ ctx, input, now = new Date() }: { ctx: ServiceCtx; input: { silentDays?: number }; now?: Date }) {
  const silentBefore = new Date(now.getTime() - (input.silentDays ?? DEFAULT_SILENT_DAYS) * 86_400_000);
  const status = sql<SiteStatus>`case
    when ${sites.reportedAt} is null then 'never_reported'
    when ${sites.reportedStatus} in ('failed', 'rolled_back') then 'failed'
    when exists (select 1 from releases r where r.id = ${sites.reportedReleaseId} and r.state = 'revoked') then 'revoked'
    when ${sites.reportedAt} < ${silentBefore} then 'silent'
    when ${sites.targetReleaseId} is null then 'no_target'
    when ${sites.reportedReleaseId} = ${sites.targetReleaseId} then 'on_target'
    else 'behind' end`;
  const where = and(visibleSites(ctx), isNull(sites.archivedAt));
  const [byStatus, byVersion, byRegion] = await Promise.all([
    ctx.db.select({ key: status, n: sql<number>`count(*)::int` }).from(sites).where(where).groupBy(sql`1`),
    ctx.db.select({ key: sql<string | null>`${sites.reportedVersion}`, n: sql<number>`count(*)::int` }).from(sites).where(where)
      .groupBy(sites.reportedVersion).orderBy(sql`2 desc`).limit(20),
    ctx.db.select({ key: sql<string | null>`${sites.region}`, n: sql<number>`count(*)::int` }).from(sites).where(where)
      .groupBy(sites.region).orderBy(sql`2 desc`).limit(50),
  ]);
  const statuses: Record<SiteStatus, number> = { on_target: 0, behind: 0, failed: 0, revoked: 0, never_reported: 0, silent: 0, no_target: 0 };
  for (const r of byStatus) statuses[r.key] = r.n;
  return {
    total: byStatus.reduce((a, r) => a + r.n, 0),
    byStatus: statuses,
    byVersion: byVersion.map((r) => ({ version: r.key, sites: r.n })),
    byRegion: byRegion.map((r) => ({ region: r.key, sites: r.n })),
    silentDays: input.silentDays ?? DEFAULT_SILENT_DAYS,
  };
}
