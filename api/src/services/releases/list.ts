import { and, eq, inArray } from 'drizzle-orm';
import semver from 'semver';
import { releaseImages, releases } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { loadRelease, toReleaseSummary, type ReleaseImageRow } from './view.ts';

/** Bytes a site downloads for these images: every config and layer once, however many images share it. */
export function downloadSize(images: ReleaseImageRow[]): number {
  const blobs = new Map<string, number>();
  for (const i of images) for (const b of [i.config, ...i.layers]) blobs.set(b.digest, b.size);
  return [...blobs.values()].reduce((a, b) => a + b, 0);
}

/** The images of each of `releaseIds` (of the organisation only), read in one query. */
export async function imagesOfReleases(
  ctx: ServiceCtx,
  releaseIds: string[],
): Promise<Map<string, ReleaseImageRow[]>> {
  const byRelease = new Map(releaseIds.map((id) => [id, [] as ReleaseImageRow[]]));
  if (!releaseIds.length) return byRelease;
  const rows = await ctx.db
    .select()
    .from(releaseImages)
    .where(and(eq(releaseImages.orgId, ctx.orgId), inArray(releaseImages.releaseId, releaseIds)));
  for (const i of rows) byRelease.get(i.releaseId)!.push(i);
  return byRelease;
}

export type ReleaseState = 'draft' | 'published' | 'deprecated' | 'revoked';

/**
 * The organisation's releases, newest version first (semver order, not creation order), each with
 * `behindLatest`: how many published, non-revoked versions are newer — the "versions behind" a site
 * on it would be.
 */
export async function listReleases({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { state?: ReleaseState; channel?: string; version?: string };
}) {
  const list = await ctx.db
    .select()
    .from(releases)
    .where(
      and(
        eq(releases.orgId, ctx.orgId),
        input.state ? eq(releases.state, input.state) : undefined,
        input.channel ? eq(releases.channel, input.channel) : undefined,
        input.version
          ? inArray(releases.version, [...new Set([input.version, input.version.replace(/^v/i, '')])])
          : undefined,
      ),
    );
  const images = await imagesOfReleases(
    ctx,
    list.map((r) => r.id),
  );
  // The same download size as the release page: each config and layer counted once per release.
  const rows = list.map((r) => {
    const mine = images.get(r.id)!;
    return { r, imageCount: mine.length, totalSize: downloadSize(mine) };
  });
  rows.sort((a, b) => semver.rcompare(a.r.version, b.r.version));
  const live = (
    await ctx.db
      .select({ version: releases.version })
      .from(releases)
      .where(and(eq(releases.orgId, ctx.orgId), inArray(releases.state, ['published', 'deprecated'])))
  ).map((r) => r.version);
  return rows.map(({ r, imageCount, totalSize }) => ({
    ...toReleaseSummary(r, { imageCount, totalSize }),
    behindLatest: live.filter((v) => semver.gt(v, r.version)).length,
  }));
}

/**
 * What changed from one release to another: images added, changed (new digest), removed, and the
 * bytes of layers the target has that the base does not — what a delta bundle will cost.
 */
export function diffImages(base: ReleaseImageRow[], target: ReleaseImageRow[]) {
  const byName = new Map(base.map((i) => [i.name, i]));
  const baseBlobs = new Set(base.flatMap((i) => [i.config.digest, ...i.layers.map((l) => l.digest)]));
  const added = target
    .filter((i) => !byName.has(i.name))
    .map((i) => ({ name: i.name, reference: i.reference, digest: i.digest }));
  const changed = target
    .filter((i) => byName.has(i.name) && byName.get(i.name)!.digest !== i.digest)
    .map((i) => ({
      name: i.name,
      from: { reference: byName.get(i.name)!.reference, digest: byName.get(i.name)!.digest },
      to: { reference: i.reference, digest: i.digest },
    }));
  const targetNames = new Set(target.map((i) => i.name));
  const removed = base
    .filter((i) => !targetNames.has(i.name))
    .map((i) => ({ name: i.name, reference: i.reference, digest: i.digest }));
  const newBlobs = new Map<string, number>();
  for (const i of target)
    for (const b of [i.config, ...i.layers]) if (!baseBlobs.has(b.digest)) newBlobs.set(b.digest, b.size);
  const newLayers = new Set(
    target.flatMap((i) => i.layers.map((l) => l.digest)).filter((d) => !baseBlobs.has(d)),
  );
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return {
    added,
    changed,
    removed,
    deltaSize: sum(newBlobs),
    fullSize: downloadSize(target),
    newLayers: newLayers.size,
  };
}

/** The diff from the previous release (the highest version below this one, drafts excluded) or a given one. */
export async function releaseDiff({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { releaseId: string; fromReleaseId?: string };
}) {
  const target = await loadRelease(ctx, input.releaseId);
  let baseId = input.fromReleaseId;
  if (!baseId) {
    const all = await ctx.db
      .select({ id: releases.id, version: releases.version, state: releases.state })
      .from(releases)
      .where(eq(releases.orgId, ctx.orgId));
    const prev = all
      .filter((r) => r.state !== 'draft' && semver.lt(r.version, target.release.version))
      .sort((a, b) => semver.rcompare(a.version, b.version))[0];
    baseId = prev?.id;
  }
  if (!baseId) return { from: null, ...diffImages([], target.images) };
  const base = await loadRelease(ctx, baseId);
  return {
    from: { id: base.release.id, version: base.release.version },
    ...diffImages(base.images, target.images),
  };
}
