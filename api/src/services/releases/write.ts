import { and, eq, inArray, max, ne, sql } from 'drizzle-orm';
import semver from 'semver';
import { bundles, contentPackages, imageArchives, releaseImages, releases } from '../../db/schema/index.ts';
import { blobKey, deleteQuietly } from '@outpost/bundler';
import type { BlobStore } from '../../lib/blob-store.ts';
import {
  AppError,
  ConflictError,
  NotFoundError,
  ValidationError,
  fieldIssue,
  isUniqueViolation,
} from '../../lib/errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { credentialFor } from '../registries/credentials.ts';
import { ImageResolveError, type ImageResolver } from './resolver.ts';
import { loadRelease, toReleaseView } from './view.ts';

export interface CreateReleaseInput {
  version: string;
  channel?: string;
  notes?: string;
  platform?: string;
  edgeScriptsVersion?: string;
  composeTemplate?: string;
  contentPackageId?: string | null;
}

export type UpdateReleaseInput = Partial<Omit<CreateReleaseInput, 'version'>>;

function cleanVersion(v: string): string {
  const valid = semver.valid(v.trim());
  if (!valid)
    throw new ValidationError(
      `"${v}" is not a semantic version (like 2.4.1 or 2.5.0-rc.1).`,
      fieldIssue('version', 'Use a semantic version such as 2.4.1.'),
    );
  return valid;
}

async function assertContentPackage(ctx: ServiceCtx, id: string | null | undefined) {
  if (!id) return;
  const [p] = await ctx.db
    .select({ id: contentPackages.id })
    .from(contentPackages)
    .where(and(eq(contentPackages.orgId, ctx.orgId), eq(contentPackages.id, id)))
    .limit(1);
  if (!p)
    throw new ValidationError(
      'No such content package in this organisation.',
      fieldIssue('contentPackageId', 'Upload the package first.'),
    );
}

function assertDraft(state: string) {
  if (state !== 'draft')
    throw new ConflictError(
      `This release is ${state}; a published release never changes. Create a new version instead.`,
    );
}

export async function createRelease({ ctx, input }: { ctx: ServiceCtx; input: CreateReleaseInput }) {
  const version = cleanVersion(input.version);
  await assertContentPackage(ctx, input.contentPackageId);
  return inTransaction(ctx, async (ctx) => {
    const [clash] = await ctx.db
      .select({ id: releases.id })
      .from(releases)
      .where(and(eq(releases.orgId, ctx.orgId), eq(releases.version, version)))
      .limit(1);
    if (clash)
      throw new ConflictError(
        `Release ${version} already exists.`,
        fieldIssue('version', 'Already used.', { releaseId: clash.id }),
      );
    const [row] = await ctx.db
      .insert(releases)
      .values({
        orgId: ctx.orgId,
        version,
        channel: input.channel ?? 'stable',
        notes: input.notes ?? '',
        platform: input.platform ?? 'linux/amd64',
        edgeScriptsVersion: input.edgeScriptsVersion ?? null,
        composeTemplate: input.composeTemplate ?? null,
        contentPackageId: input.contentPackageId ?? null,
        createdBy: ctx.actor.userId,
      })
      .returning();
    await recordAudit(ctx, {
      action: 'release.create',
      objectType: 'release',
      objectId: row!.id,
      details: { version },
    });
    return toReleaseView(await loadRelease(ctx, row!.id));
  });
}

export async function updateRelease({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { releaseId: string; patch: UpdateReleaseInput };
}) {
  await assertContentPackage(ctx, input.patch.contentPackageId);
  return inTransaction(ctx, async (ctx) => {
    const { release } = await loadRelease(ctx, input.releaseId);
    assertDraft(release.state);
    await ctx.db.update(releases).set(input.patch).where(eq(releases.id, release.id));
    await recordAudit(ctx, {
      action: 'release.update',
      objectType: 'release',
      objectId: release.id,
      details: { fields: Object.keys(input.patch) },
    });
    return toReleaseView(await loadRelease(ctx, release.id));
  });
}

const FAILURE_KIND: Record<ImageResolveError['kind'], { code: string; kind: 'unprocessable' | 'invalid' }> = {
  'unknown-image': { code: 'IMAGE_NOT_FOUND', kind: 'unprocessable' },
  'unknown-tag': { code: 'IMAGE_NOT_FOUND', kind: 'unprocessable' },
  unauthorized: { code: 'REGISTRY_AUTH_FAILED', kind: 'unprocessable' },
  unreachable: { code: 'REGISTRY_UNREACHABLE', kind: 'unprocessable' },
  'platform-not-found': { code: 'PLATFORM_NOT_FOUND', kind: 'unprocessable' },
  'digest-mismatch': { code: 'DIGEST_MISMATCH', kind: 'unprocessable' },
  'invalid-reference': { code: 'VALIDATION_FAILED', kind: 'invalid' },
  protocol: { code: 'REGISTRY_ERROR', kind: 'unprocessable' },
  'forbidden-address': { code: 'REGISTRY_NOT_ALLOWED', kind: 'unprocessable' },
};

/**
 * Adds an image to a draft: the reference is resolved now, in its registry, to the digest for the
 * release's platform, so the release pins exactly these bytes. Registry failures are the user's to
 * fix (a typo, a password), so they answer 4xx with the registry's reason in plain words.
 */
export async function addReleaseImage({
  ctx,
  box,
  resolver,
  input,
}: {
  ctx: ServiceCtx;
  box: SecretBox;
  resolver: ImageResolver;
  input: { releaseId: string; name: string; reference: string };
}) {
  const { release, images } = await loadRelease(ctx, input.releaseId);
  assertDraft(release.state);
  if (images.some((i) => i.name === input.name)) {
    throw new ConflictError(
      `This release already has an image named ${input.name}.`,
      fieldIssue('name', 'Already used in this release.'),
    );
  }
  let resolved;
  try {
    const registry = resolver.registryOf(input.reference);
    resolved = await resolver.resolve({
      reference: input.reference,
      platform: release.platform,
      credentials: await credentialFor(ctx, box, registry),
    });
  } catch (e) {
    if (!(e instanceof ImageResolveError)) throw e;
    const f = FAILURE_KIND[e.kind];
    throw new AppError(f.kind, f.code, e.message, fieldIssue('reference', e.message, { reason: e.kind }));
  }
  return inTransaction(ctx, async (ctx) => {
    const { release: fresh } = await loadRelease(ctx, input.releaseId);
    assertDraft(fresh.state);
    const [{ next } = { next: 0 }] = await ctx.db
      .select({ next: sql<number>`coalesce(${max(releaseImages.position)}, -1)::int + 1` })
      .from(releaseImages)
      .where(eq(releaseImages.releaseId, fresh.id));
    try {
      await ctx.db.insert(releaseImages).values({
        orgId: ctx.orgId,
        releaseId: fresh.id,
        name: input.name,
        reference: input.reference,
        registry: resolved.registry,
        repository: resolved.repository,
        digest: resolved.digest,
        indexDigest: resolved.indexDigest ?? null,
        mediaType: resolved.mediaType,
        platform: resolved.platform,
        config: resolved.config,
        layers: resolved.layers,
        totalSize: resolved.totalSize,
        position: next,
      });
    } catch (e) {
      if (isUniqueViolation(e))
        throw new ConflictError(`This release already has an image named ${input.name}.`);
      throw e;
    }
    await recordAudit(ctx, {
      action: 'release.image.add',
      objectType: 'release',
      objectId: fresh.id,
      details: { name: input.name, reference: input.reference, digest: resolved.digest },
    });
    return toReleaseView(await loadRelease(ctx, fresh.id));
  });
}

export async function removeReleaseImage({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { releaseId: string; imageId: string };
}) {
  return inTransaction(ctx, async (ctx) => {
    const { release, images } = await loadRelease(ctx, input.releaseId);
    assertDraft(release.state);
    const image = images.find((i) => i.id === input.imageId);
    if (!image) throw new NotFoundError('image', input.imageId);
    await ctx.db.delete(releaseImages).where(eq(releaseImages.id, image.id));
    await recordAudit(ctx, {
      action: 'release.image.remove',
      objectType: 'release',
      objectId: release.id,
      details: { name: image.name },
    });
    return toReleaseView(await loadRelease(ctx, release.id));
  });
}

/** Checks a draft can be published; returns the problems in plain words (empty when it can). */
export type PublishCheck = (
  l: Awaited<ReturnType<typeof loadRelease>>,
) => { path: string; message: string; line?: number }[];

export async function publishRelease({
  ctx,
  input,
  check,
}: {
  ctx: ServiceCtx;
  input: { releaseId: string };
  check: PublishCheck;
}) {
  return inTransaction(ctx, async (ctx) => {
    const l = await loadRelease(ctx, input.releaseId);
    assertDraft(l.release.state);
    const problems = [
      ...(l.images.length === 0 ? [{ path: 'images', message: 'Add at least one image.' }] : []),
      ...(!l.release.composeTemplate
        ? [{ path: 'composeTemplate', message: 'Add a compose template.' }]
        : []),
      ...(l.release.composeTemplate && l.images.length ? check(l) : []),
    ];
    if (problems.length)
      throw new AppError(
        'unprocessable',
        'NOT_PUBLISHABLE',
        'This release cannot be published yet.',
        problems,
      );
    await ctx.db
      .update(releases)
      .set({ state: 'published', publishedAt: new Date() })
      .where(eq(releases.id, l.release.id));
    await recordAudit(ctx, {
      action: 'release.publish',
      objectType: 'release',
      objectId: l.release.id,
      details: { version: l.release.version },
    });
    return toReleaseView(await loadRelease(ctx, l.release.id));
  });
}

export async function deprecateRelease({ ctx, input }: { ctx: ServiceCtx; input: { releaseId: string } }) {
  return inTransaction(ctx, async (ctx) => {
    const { release } = await loadRelease(ctx, input.releaseId);
    if (release.state !== 'published')
      throw new ConflictError(`Only a published release can be deprecated; this one is ${release.state}.`);
    await ctx.db
      .update(releases)
      .set({ state: 'deprecated', deprecatedAt: new Date() })
      .where(eq(releases.id, release.id));
    await recordAudit(ctx, {
      action: 'release.deprecate',
      objectType: 'release',
      objectId: release.id,
      details: { version: release.version },
    });
    return toReleaseView(await loadRelease(ctx, release.id));
  });
}

/** Revoked releases can never be bundled or rolled out; sites running one show as needing action. */
/**
 * Revokes a release and every way of getting its bytes: its bundles (queued, building or ready) and
 * images archives are marked failed with RELEASE_REVOKED in the same transaction, downloads and
 * links refuse it from then on (409), and each bundle's own stored part is deleted afterwards so
 * that presigned links handed out earlier stop working too (a content package may be shared with
 * other releases and stays; its links expire by themselves).
 */
export async function revokeRelease({
  ctx,
  store,
  input,
}: {
  ctx: ServiceCtx;
  store?: BlobStore;
  input: { releaseId: string; reason: string };
}) {
  const revoked = await inTransaction(ctx, async (ctx) => {
    const { release } = await loadRelease(ctx, input.releaseId);
    if (release.state === 'revoked')
      return { view: toReleaseView(await loadRelease(ctx, release.id)), siteParts: [] as string[] };
    if (release.state === 'draft')
      throw new ConflictError('A draft was never published; delete it instead of revoking it.');
    await ctx.db
      .update(releases)
      .set({ state: 'revoked', revokedAt: new Date(), revokedReason: input.reason })
      .where(eq(releases.id, release.id));
    const message = `Release ${release.version} was revoked; its bundles can no longer be downloaded.`;
    const marked = await ctx.db
      .update(bundles)
      .set({ state: 'failed', errorCode: 'RELEASE_REVOKED', error: message, updatedAt: sql`now()` })
      .where(
        and(
          eq(bundles.orgId, ctx.orgId),
          eq(bundles.releaseId, release.id),
          inArray(bundles.state, ['queued', 'building', 'ready']),
        ),
      )
      .returning({ sitePartSha256: bundles.sitePartSha256 });
    await ctx.db
      .update(imageArchives)
      .set({ state: 'failed', errorCode: 'RELEASE_REVOKED', error: message, updatedAt: sql`now()` })
      .where(and(eq(imageArchives.releaseId, release.id), ne(imageArchives.state, 'failed')));
    await recordAudit(ctx, {
      action: 'release.revoke',
      objectType: 'release',
      objectId: release.id,
      details: { version: release.version, reason: input.reason, bundles: marked.length },
    });
    return {
      view: toReleaseView(await loadRelease(ctx, release.id)),
      siteParts: marked.map((b) => b.sitePartSha256).filter((s): s is string => !!s),
    };
  });
  if (store) {
    // Each site part is signed for one bundle (its own manifest): nothing else reads these objects.
    await Promise.all(revoked.siteParts.map((sha) => deleteQuietly(store, blobKey(`sha256:${sha}`))));
  }
  return revoked.view;
}

export async function deleteDraft({ ctx, input }: { ctx: ServiceCtx; input: { releaseId: string } }) {
  return inTransaction(ctx, async (ctx) => {
    const { release } = await loadRelease(ctx, input.releaseId);
    assertDraft(release.state);
    await ctx.db.delete(releases).where(eq(releases.id, release.id));
    await recordAudit(ctx, {
      action: 'release.delete',
      objectType: 'release',
      objectId: release.id,
      details: { version: release.version },
    });
  });
}
