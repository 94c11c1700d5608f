import { and, eq, inArray, sql } from 'drizzle-orm';
import { bundles, imageArchives, releaseImages, releases, sites } from '../../db/schema/index.ts';
import { AppError, NotFoundError, ValidationError } from '../../lib/errors.ts';
import { recordAudit } from '../audit/record.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { siteFilterWhere } from '../sites/list.ts';
import { enqueueJobs } from './jobs.ts';

export type BundleMode = 'auto' | 'full' | 'delta';

export interface RequestBundlesInput {
  releaseId: string;
  /** Sites by id, by code, or by a filter; at least one of them. */
  siteIds?: string[];
  siteCodes?: string[];
  filter?: { region?: string; district?: string; tag?: string };
  /** auto: a delta where the site reported a release it can be made from, else full. */
  mode?: BundleMode;
  /** Days until the bundle expires (the installer refuses an expired one). Default 90. */
  expiresInDays?: number;
}

export const MAX_SITES_PER_REQUEST = 10_000;
const CHUNK = 1000;

const chunks = <T>(items: T[]) =>
  Array.from({ length: Math.ceil(items.length / CHUNK) }, (_, i) => items.slice(i * CHUNK, (i + 1) * CHUNK));

/**
 * Asks for bundles of a release for a selection of sites. Each site gets a bundle built by the
 * workers; the release's images archive (and each delta archive needed) is built once and shared.
 * A site that already has a queued, building or ready (unexpired) bundle of the same release and
 * base keeps it: asking twice builds nothing twice. All or nothing: a bad selection writes nothing.
 */
export async function requestBundles({ ctx, input }: { ctx: ServiceCtx; input: RequestBundlesInput }) {
  const mode = input.mode ?? 'auto';
  const expiresInDays = input.expiresInDays ?? 90;
  return inTransaction(ctx, async (ctx) => {
    const [release] = await ctx.db
      .select()
      .from(releases)
      .where(and(eq(releases.orgId, ctx.orgId), eq(releases.id, input.releaseId)))
      .limit(1);
    if (!release) throw new NotFoundError('release', input.releaseId);
    if (release.state === 'revoked') {
      throw new AppError(
        409,
        'RELEASE_REVOKED',
        `Release ${release.version} was revoked${release.revokedReason ? ` (${release.revokedReason})` : ''}; no bundles can be built for it.`,
      );
    }
    if (release.state === 'draft') {
      throw new AppError(
        409,
        'RELEASE_NOT_PUBLISHED',
        `Release ${release.version} is a draft; publish it before building bundles.`,
      );
    }
    // Publishing demands images and a compose template; releases seeded or imported otherwise may
    // lack them, and a build would only fail later with nothing to try again.
    const [image] = await ctx.db
      .select({ id: releaseImages.id })
      .from(releaseImages)
      .where(eq(releaseImages.releaseId, release.id))
      .limit(1);
    if (!image || !release.composeTemplate) {
      throw new AppError(
        422,
        'RELEASE_NOT_BUNDLABLE',
        `Release ${release.version} has ${!image ? 'no images' : 'no compose template'}, so there is nothing to bundle; publish a release that has both.`,
      );
    }

    const chosen = await selectSites(ctx, input);
    // Releases a delta can be made from: this organisation's published ones that have images.
    const baseIds = [
      ...new Set(chosen.map((s) => s.reportedReleaseId).filter((id): id is string => id !== null)),
    ];
    const bases = new Set(
      baseIds.length === 0
        ? []
        : (
            await ctx.db
              .selectDistinct({ id: releases.id })
              .from(releases)
              .innerJoin(releaseImages, eq(releaseImages.releaseId, releases.id))
              .where(
                and(
                  eq(releases.orgId, ctx.orgId),
                  inArray(releases.id, baseIds),
                  sql`${releases.state} <> 'draft'`,
                ),
              )
          ).map((r) => r.id),
    );

    // A site already on this release gets a full bundle (a reinstall), not a delta that leaves out every layer.
    const plan = chosen.map((s) => ({
      site: s,
      from:
        mode !== 'full' &&
        s.reportedReleaseId &&
        s.reportedReleaseId !== release.id &&
        bases.has(s.reportedReleaseId)
          ? s.reportedReleaseId
          : null,
    }));
    if (mode === 'delta') {
      const without = plan.filter((p) => p.from === null);
      if (without.length > 0) {
        throw new AppError(
          422,
          'DELTA_BASE_UNKNOWN',
          `${without.length === 1 ? `Site ${without[0]!.site.code} has` : `${without.length} sites have`} not reported a release a delta can be made from; ask for full bundles (or "auto") for ${without.length === 1 ? 'it' : 'them'}.`,
          without.slice(0, 100).map((p) => ({
            path: 'siteIds',
            siteId: p.site.id,
            code: p.site.code,
            message:
              p.site.reportedReleaseId === release.id
                ? `Already runs ${release.version}; a reinstall needs a full bundle.`
                : p.site.reportedVersion
                  ? `Reports version ${p.site.reportedVersion}, which is not a published release of this organisation.`
                  : 'Has never reported a release.',
          })),
        );
      }
    }

    // The archives: the full one always (a delta's installer falls back to it), and one per base.
    const archiveKeys = [null, ...new Set(plan.map((p) => p.from).filter((f): f is string => f !== null))];
    await ctx.db
      .insert(imageArchives)
      .values(archiveKeys.map((from) => ({ orgId: ctx.orgId, releaseId: release.id, fromReleaseId: from })))
      .onConflictDoNothing();
    // A failed archive is tried again when bundles are asked for again.
    await ctx.db
      .update(imageArchives)
      .set({ state: 'queued', error: null, errorCode: null, updatedAt: sql`now()` })
      .where(and(eq(imageArchives.releaseId, release.id), eq(imageArchives.state, 'failed')));
    const archives = await ctx.db.select().from(imageArchives).where(eq(imageArchives.releaseId, release.id));
    const archiveFor = new Map(archives.map((a) => [a.fromReleaseId ?? '', a]));
    await enqueueJobs(
      ctx.db,
      archives
        .filter((a) => a.state !== 'ready' && archiveKeys.includes(a.fromReleaseId))
        .map((a) => ({ orgId: ctx.orgId, kind: 'image-archive' as const, targetId: a.id })),
    );

    // Bundles already asked for (and still good) are kept.
    const existing = new Map<string, string>();
    for (const part of chunks(plan)) {
      const rows = await ctx.db
        .select({ id: bundles.id, siteId: bundles.siteId, fromReleaseId: bundles.fromReleaseId })
        .from(bundles)
        .where(
          and(
            eq(bundles.orgId, ctx.orgId),
            eq(bundles.releaseId, release.id),
            inArray(
              bundles.siteId,
              part.map((p) => p.site.id),
            ),
            inArray(bundles.state, ['queued', 'building', 'ready']),
            sql`(${bundles.expiresAt} is null or ${bundles.expiresAt} > now() + interval '1 day')`,
          ),
        );
      for (const r of rows) existing.set(`${r.siteId}/${r.fromReleaseId ?? ''}`, r.id);
    }
    const toBuild = plan.filter((p) => !existing.has(`${p.site.id}/${p.from ?? ''}`));
    const created: { id: string; siteId: string }[] = [];
    for (const part of chunks(toBuild)) {
      created.push(
        ...(await ctx.db
          .insert(bundles)
          .values(
            part.map((p) => ({
              orgId: ctx.orgId,
              siteId: p.site.id,
              releaseId: release.id,
              fromReleaseId: p.from,
              delta: p.from !== null,
              imageArchiveId: archiveFor.get(p.from ?? '')!.id,
              requestedBy: ctx.actor.userId,
              expiresAt: sql`now() + make_interval(days => ${expiresInDays})`,
            })),
          )
          .returning({ id: bundles.id, siteId: bundles.siteId })),
      );
    }
    for (const part of chunks(created)) {
      await enqueueJobs(
        ctx.db,
        part.map((b) => ({ orgId: ctx.orgId, kind: 'site-bundle' as const, targetId: b.id })),
      );
    }
    await recordAudit(ctx, {
      action: 'bundle.request',
      objectType: 'release',
      objectId: release.id,
      details: {
        version: release.version,
        mode,
        sites: plan.length,
        created: created.length,
        kept: plan.length - toBuild.length,
        deltas: plan.filter((p) => p.from !== null).length,
      },
    });
    const createdFor = new Map(created.map((b) => [b.siteId, b.id]));
    return {
      release: { id: release.id, version: release.version },
      created: created.length,
      kept: plan.length - toBuild.length,
      bundles: plan.map((p) => ({
        id: existing.get(`${p.site.id}/${p.from ?? ''}`) ?? createdFor.get(p.site.id)!,
        siteId: p.site.id,
        siteCode: p.site.code,
        delta: p.from !== null,
      })),
    };
  });
}

type ChosenSite = {
  id: string;
  code: string;
  reportedReleaseId: string | null;
  reportedVersion: string | null;
};

async function selectSites(ctx: ServiceCtx, input: RequestBundlesInput): Promise<ChosenSite[]> {
  const ids = input.siteIds ?? [];
  const codes = input.siteCodes ?? [];
  const filter = input.filter && Object.values(input.filter).some((v) => v) ? input.filter : null;
  if (ids.length + codes.length === 0 && !filter) {
    throw new ValidationError('Choose the sites: give siteIds, siteCodes or a filter.', [
      { path: 'siteIds', message: 'No sites chosen.' },
    ]);
  }
  const cols = {
    id: sites.id,
    code: sites.code,
    reportedReleaseId: sites.reportedReleaseId,
    reportedVersion: sites.reportedVersion,
  };
  // Visible to the actor and not archived: the site list's own rule.
  const base = siteFilterWhere(ctx, {});
  const found = new Map<string, ChosenSite>();
  for (const part of chunks(ids)) {
    const rows = await ctx.db
      .select(cols)
      .from(sites)
      .where(and(base, inArray(sites.id, part)));
    for (const r of rows) found.set(r.id, r);
  }
  const missingIds = ids.filter((id) => !found.has(id));
  const byCode = new Map<string, ChosenSite>();
  for (const part of chunks(codes)) {
    const rows = await ctx.db
      .select(cols)
      .from(sites)
      .where(and(base, inArray(sites.code, part)));
    for (const r of rows) {
      byCode.set(r.code, r);
      found.set(r.id, r);
    }
  }
  const missingCodes = codes.filter((c) => !byCode.has(c));
  if (missingIds.length + missingCodes.length > 0) {
    throw new AppError(
      422,
      'UNKNOWN_SITES',
      `${missingIds.length + missingCodes.length} of the chosen sites do not exist (or are archived); nothing was asked for.`,
      [
        ...missingIds.slice(0, 100).map((id) => ({ path: 'siteIds', value: id, message: 'No such site.' })),
        ...missingCodes
          .slice(0, 100)
          .map((code) => ({ path: 'siteCodes', value: code, message: 'No such site.' })),
      ],
    );
  }
  if (filter) {
    const rows = await ctx.db
      .select(cols)
      .from(sites)
      .where(siteFilterWhere(ctx, filter))
      .limit(MAX_SITES_PER_REQUEST + 1);
    for (const r of rows) found.set(r.id, r);
  }
  if (found.size === 0) throw new AppError(422, 'NO_SITES', 'No site matches this selection.');
  if (found.size > MAX_SITES_PER_REQUEST) {
    throw new AppError(
      422,
      'TOO_MANY_SITES',
      `At most ${MAX_SITES_PER_REQUEST.toLocaleString('en')} sites per request; narrow the selection.`,
    );
  }
  return [...found.values()];
}
