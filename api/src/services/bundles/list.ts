import { and, desc, eq, sql, type SQL } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { bundleDownloads, bundles, imageArchives, releases, sites } from '../../db/schema/index.ts';
import { decodeCursor } from '../../lib/cursor.ts';
import { afterCursor, keysetPage, timeCursor } from '../keyset.ts';
import { NotFoundError } from '../../lib/errors.ts';
import type { ServiceCtx } from '../context.ts';
import { visibleSites } from '../sites/scope.ts';

export type BundleRow = typeof bundles.$inferSelect;

const fromReleases = alias(releases, 'from_releases');

const bundleSelect = {
  bundle: bundles,
  siteCode: sites.code,
  siteName: sites.name,
  bandwidthKbps: sites.bandwidthKbps,
  version: releases.version,
  releaseState: releases.state,
  fromVersion: fromReleases.version,
  // Downloads that reached the last byte (a resumed one counts once, by its final range) and links handed out.
  downloads: sql<number>`(select count(*)::int from ${bundleDownloads} d where d.bundle_id = "bundles"."id"
    and (d.kind = 'links' or (d.complete and d.range_end = "bundles"."size" - 1)))`,
};

type Selected = {
  bundle: BundleRow;
  siteCode: string;
  siteName: string;
  bandwidthKbps: number | null;
  version: string;
  releaseState: string;
  fromVersion: string | null;
  downloads: number;
};

/** The one-file download's name: what the person sees in their downloads folder. */
export const bundleFileName = (siteCode: string, version: string) => `outpost-${siteCode}-${version}.tar`;

/** Seconds the download takes at the site's bandwidth estimate (null when unknown). */
export function estimatedSeconds(bytes: number | null, bandwidthKbps: number | null): number | null {
  if (bytes === null || !bandwidthKbps || bandwidthKbps <= 0) return null;
  return Math.ceil((bytes * 8) / (bandwidthKbps * 1000));
}

export function toBundleView(r: Selected) {
  const b = r.bundle;
  return {
    id: b.id,
    site: { id: b.siteId, code: r.siteCode, name: r.siteName, bandwidthKbps: r.bandwidthKbps },
    release: { id: b.releaseId, version: r.version, state: r.releaseState },
    fromRelease: b.fromReleaseId && r.fromVersion ? { id: b.fromReleaseId, version: r.fromVersion } : null,
    state: b.state,
    delta: b.delta,
    size: b.size,
    fullSize: b.fullSize,
    sitePartSize: b.sitePartSize,
    estimatedSeconds: estimatedSeconds(b.size, r.bandwidthKbps),
    keyFingerprint: b.keyFingerprint,
    fileName: bundleFileName(r.siteCode, r.version),
    error: b.error ? { code: b.errorCode ?? 'BUILD_FAILED', message: b.error } : null,
    downloads: r.downloads,
    createdAt: b.createdAt.toISOString(),
    readyAt: b.readyAt?.toISOString() ?? null,
    expiresAt: b.expiresAt?.toISOString() ?? null,
  };
}

export type BundleView = ReturnType<typeof toBundleView>;

function selectBundles(ctx: ServiceCtx, where: SQL | undefined) {
  return ctx.db
    .select(bundleSelect)
    .from(bundles)
    .innerJoin(sites, eq(sites.id, bundles.siteId))
    .innerJoin(releases, eq(releases.id, bundles.releaseId))
    .leftJoin(fromReleases, eq(fromReleases.id, bundles.fromReleaseId))
    .where(and(eq(bundles.orgId, ctx.orgId), visibleSites(ctx), where));
}

/** One bundle of a site the actor may see; 404 otherwise (other organisations' included). */
export async function loadBundle(ctx: ServiceCtx, id: string) {
  const [row] = await selectBundles(ctx, eq(bundles.id, id)).limit(1);
  if (!row) throw new NotFoundError('bundle', id);
  return row;
}

export async function getBundle({ ctx, input }: { ctx: ServiceCtx; input: { id: string } }) {
  return toBundleView(await loadBundle(ctx, input.id));
}

export interface ListBundlesInput {
  releaseId?: string;
  siteId?: string;
  state?: BundleRow['state'];
  limit?: number;
  cursor?: string;
}

export async function listBundles({ ctx, input }: { ctx: ServiceCtx; input: ListBundlesInput }) {
  const limit = Math.min(Math.max(Math.trunc(input.limit ?? 50) || 50, 1), 500);
  const after = input.cursor ? decodeCursor(input.cursor) : null;
  const { rows, nextCursor } = await keysetPage(
    limit,
    (take) =>
      selectBundles(
        ctx,
        and(
          input.releaseId ? eq(bundles.releaseId, input.releaseId) : undefined,
          input.siteId ? eq(bundles.siteId, input.siteId) : undefined,
          input.state ? eq(bundles.state, input.state) : undefined,
          afterCursor(after, bundles.createdAt, bundles.id, 'desc'),
        ),
      )
        .orderBy(desc(bundles.createdAt), desc(bundles.id))
        .limit(take),
    (last) => timeCursor(last.bundle.createdAt, last.bundle.id),
  );
  return { items: rows.map(toBundleView), nextCursor };
}

/** Counts by state for a release, for the release page's progress line. */
export async function bundleCounts({ ctx, input }: { ctx: ServiceCtx; input: { releaseId: string } }) {
  const rows = await ctx.db
    .select({ state: bundles.state, n: sql<number>`count(*)::int` })
    .from(bundles)
    .innerJoin(sites, eq(sites.id, bundles.siteId))
    .where(and(eq(bundles.orgId, ctx.orgId), visibleSites(ctx), eq(bundles.releaseId, input.releaseId)))
    .groupBy(bundles.state);
  const counts = { queued: 0, building: 0, ready: 0, failed: 0 };
  for (const r of rows) counts[r.state] = r.n;
  return counts;
}

export function toImageArchiveView(a: typeof imageArchives.$inferSelect, fromVersion: string | null) {
  return {
    id: a.id,
    releaseId: a.releaseId,
    fromRelease: a.fromReleaseId ? { id: a.fromReleaseId, version: fromVersion } : null,
    state: a.state,
    sha256: a.sha256,
    size: a.size,
    omittedLayers: a.omittedLayers.length,
    error: a.error ? { code: a.errorCode ?? 'BUILD_FAILED', message: a.error } : null,
    createdAt: a.createdAt.toISOString(),
    readyAt: a.readyAt?.toISOString() ?? null,
  };
}

/** The images archives of a release (full and deltas). */
export async function listImageArchives({ ctx, input }: { ctx: ServiceCtx; input: { releaseId: string } }) {
  const rows = await ctx.db
    .select({ archive: imageArchives, fromVersion: fromReleases.version })
    .from(imageArchives)
    .leftJoin(fromReleases, eq(fromReleases.id, imageArchives.fromReleaseId))
    .where(and(eq(imageArchives.orgId, ctx.orgId), eq(imageArchives.releaseId, input.releaseId)))
    .orderBy(sql`${imageArchives.fromReleaseId} is not null`, desc(imageArchives.createdAt));
  return rows.map((r) => toImageArchiveView(r.archive, r.fromVersion));
}
