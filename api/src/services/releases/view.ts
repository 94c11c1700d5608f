import { and, asc, eq } from 'drizzle-orm';
import { contentPackages, releaseImages, releases } from '../../db/schema/index.ts';
import { NotFoundError } from '../../lib/errors.ts';
import type { ServiceCtx } from '../context.ts';

export type ReleaseRow = typeof releases.$inferSelect;
export type ReleaseImageRow = typeof releaseImages.$inferSelect;

export function toImageView(i: ReleaseImageRow) {
  return {
    id: i.id,
    name: i.name,
    reference: i.reference,
    registry: i.registry,
    repository: i.repository,
    digest: i.digest,
    indexDigest: i.indexDigest,
    mediaType: i.mediaType,
    platform: i.platform,
    pinned: `${i.registry}/${i.repository}@${i.digest}`,
    config: i.config,
    layers: i.layers,
    totalSize: i.totalSize,
  };
}

export function toReleaseSummary(r: ReleaseRow, extra: { imageCount?: number; totalSize?: number } = {}) {
  return {
    id: r.id,
    version: r.version,
    channel: r.channel,
    state: r.state,
    platform: r.platform,
    edgeScriptsVersion: r.edgeScriptsVersion,
    contentPackageId: r.contentPackageId,
    createdAt: r.createdAt.toISOString(),
    publishedAt: r.publishedAt?.toISOString() ?? null,
    deprecatedAt: r.deprecatedAt?.toISOString() ?? null,
    revokedAt: r.revokedAt?.toISOString() ?? null,
    revokedReason: r.revokedReason,
    imageCount: extra.imageCount ?? 0,
    totalSize: extra.totalSize ?? 0,
  };
}

/** One release of the organisation with its images and content package, or 404. */
export async function loadRelease(ctx: ServiceCtx, id: string) {
  const [release] = await ctx.db
    .select()
    .from(releases)
    .where(and(eq(releases.orgId, ctx.orgId), eq(releases.id, id)))
    .limit(1);
  if (!release) throw new NotFoundError('release', id);
  const images = await ctx.db
    .select()
    .from(releaseImages)
    .where(and(eq(releaseImages.orgId, ctx.orgId), eq(releaseImages.releaseId, id)))
    .orderBy(asc(releaseImages.position), asc(releaseImages.name));
  const [content] = release.contentPackageId
    ? await ctx.db
        .select()
        .from(contentPackages)
        .where(and(eq(contentPackages.orgId, ctx.orgId), eq(contentPackages.id, release.contentPackageId)))
        .limit(1)
    : [];
  return { release, images, content: content ?? null };
}

export function toReleaseView(l: Awaited<ReturnType<typeof loadRelease>>) {
  // Layers shared between images are downloaded once: the download size counts each digest once.
  const unique = new Map<string, number>();
  for (const i of l.images) {
    unique.set(i.config.digest, i.config.size);
    for (const layer of i.layers) unique.set(layer.digest, layer.size);
  }
  const downloadSize = [...unique.values()].reduce((a, b) => a + b, 0);
  return {
    ...toReleaseSummary(l.release, { imageCount: l.images.length, totalSize: downloadSize }),
    notes: l.release.notes,
    composeTemplate: l.release.composeTemplate,
    images: l.images.map(toImageView),
    contentPackage: l.content
      ? {
          id: l.content.id,
          name: l.content.name,
          version: l.content.version,
          sha256: l.content.sha256,
          size: l.content.size,
          entries: l.content.entries,
        }
      : null,
  };
}
