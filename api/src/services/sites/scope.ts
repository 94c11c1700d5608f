import { and, eq, isNull, sql, type SQL } from 'drizzle-orm';
import semver from 'semver';
import { coordinatorSites, sites } from '../../db/schema/index.ts';
import { NotFoundError } from '../../lib/errors.ts';
import type { ServiceCtx } from '../context.ts';

/**
 * Which sites the actor may see: the organisation's, and for a coordinator only the ones assigned
 * to them. Everything else is invisible (404), never "forbidden".
 */
export function visibleSites(ctx: ServiceCtx): SQL {
  const inOrg = eq(sites.orgId, ctx.orgId);
  if (ctx.actor.role !== 'coordinator') return inOrg;
  return and(
    inOrg,
    sql`exists (select 1 from ${coordinatorSites} where ${coordinatorSites.siteId} = ${sites.id}
    and ${coordinatorSites.userId} = ${ctx.actor.userId ?? '00000000-0000-0000-0000-000000000000'})`,
  )!;
}

export type SiteRow = typeof sites.$inferSelect;

export const targetRelease = {
  // Written out in full: drizzle leaves columns unqualified inside a select list.
  targetVersion: sql<
    string | null
  >`(select r.version from releases r where r.id = "sites"."target_release_id")`,
  reportedRevoked: sql<boolean>`exists (select 1 from releases r where r.id = "sites"."reported_release_id" and r.state = 'revoked')`,
};

/** Loads one visible site or throws 404. */
export async function loadSite(ctx: ServiceCtx, siteId: string, opts: { includeArchived?: boolean } = {}) {
  const [row] = await ctx.db
    .select({ site: sites, ...targetRelease })
    .from(sites)
    .where(
      and(
        visibleSites(ctx),
        eq(sites.id, siteId),
        opts.includeArchived ? undefined : isNull(sites.archivedAt),
      ),
    )
    .limit(1);
  if (!row) throw new NotFoundError('site', siteId);
  return row;
}

export type SiteStatus =
  'on_target' | 'behind' | 'ahead' | 'failed' | 'revoked' | 'never_reported' | 'silent' | 'no_target';

export const DEFAULT_SILENT_DAYS = 7;

/**
 * One status per site, in priority order: never reported, failed, revoked (runs a revoked release:
 * needs action), silent, no target, on target, then off target: ahead when the reported release is
 * newer (semver) than the target, else behind (a local build or an older release).
 */
export function siteStatus(
  s: Pick<
    SiteRow,
    'reportedAt' | 'reportedStatus' | 'reportedReleaseId' | 'targetReleaseId' | 'reportedVersion'
  > & { reportedRevoked?: boolean; targetVersion?: string | null },
  now = new Date(),
  silentDays = DEFAULT_SILENT_DAYS,
): SiteStatus {
  if (!s.reportedAt) return 'never_reported';
  if (s.reportedStatus === 'failed' || s.reportedStatus === 'rolled_back') return 'failed';
  if (s.reportedRevoked) return 'revoked';
  if (s.reportedAt.getTime() < now.getTime() - silentDays * 86_400_000) return 'silent';
  if (!s.targetReleaseId) return 'no_target';
  if (s.reportedReleaseId === s.targetReleaseId) return 'on_target';
  return isAhead(s.reportedReleaseId, s.reportedVersion, s.targetVersion ?? null) ? 'ahead' : 'behind';
}

/** A reported release newer than the target (the rule of ReleaseOrder.aheadCondition in SQL). */
export function isAhead(
  reportedReleaseId: string | null,
  reported: string | null,
  target: string | null,
): boolean {
  return (
    reportedReleaseId !== null &&
    reported !== null &&
    target !== null &&
    semver.valid(reported) !== null &&
    semver.valid(target) !== null &&
    semver.gt(reported, target)
  );
}

export function toSiteView(
  s: SiteRow,
  targetVersion: string | null,
  now = new Date(),
  reportedRevoked = false,
) {
  return {
    id: s.id,
    code: s.code,
    name: s.name,
    region: s.region,
    district: s.district,
    facilityType: s.facilityType,
    tags: s.tags,
    connectivity: s.connectivity,
    bandwidthKbps: s.bandwidthKbps,
    timezone: s.timezone,
    language: s.language,
    maintenanceWindow: s.maintenanceWindow,
    latitude: s.latitude,
    longitude: s.longitude,
    contactName: s.contactName,
    contactPhone: s.contactPhone,
    contactEmail: s.contactEmail,
    reportedVersion: s.reportedVersion,
    reportedReleaseId: s.reportedReleaseId,
    reportedStatus: s.reportedStatus,
    reportedAt: s.reportedAt?.toISOString() ?? null,
    reportedContentVersion: s.reportedContentVersion,
    reportedScriptsVersion: s.reportedScriptsVersion,
    reportedComposeSha256: s.reportedComposeSha256,
    targetReleaseId: s.targetReleaseId,
    targetVersion,
    status: siteStatus({ ...s, reportedRevoked, targetVersion }, now),
    deviceToken: s.deviceTokenHash
      ? { prefix: s.deviceTokenPrefix, issuedAt: s.deviceTokenIssuedAt?.toISOString() ?? null }
      : null,
    // Receipt codes can be checked once the site has a key (created with its first device token).
    hasReceiptKey: s.receiptKeySealed !== null,
    archivedAt: s.archivedAt?.toISOString() ?? null,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  };
}

export type SiteView = ReturnType<typeof toSiteView>;
