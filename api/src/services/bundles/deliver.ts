import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { blobKey, headSize, stitchPlan, type ImagesArchiveLayout, type SharedObject } from '@outpost/bundler';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { artifacts, bundleDownloads, bundles, imageArchives, releases } from '../../db/schema/index.ts';
import { AppError, NotFoundError } from '../../lib/errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { get, type BlobStore } from '../../lib/blob-store.ts';
import { readWhole, type ByteSource } from '../../lib/byte-source.ts';
import { recordAudit } from '../audit/record.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { missingBlobsForDownload, readShared, stitchedSource, type SharedSource } from './download.ts';
import { bundleFileName, loadBundle } from './list.ts';

type Loaded = Awaited<ReturnType<typeof loadBundle>>;

/** The parts of a ready bundle: its site part and the shared objects the manifest lists, in tar order. */
export function releaseRevoked(version: string): AppError {
  return new AppError(
    'conflict',
    'RELEASE_REVOKED',
    `Release ${version} was revoked; its bundles can no longer be downloaded. Ask for a bundle of another release.`,
  );
}

function partsOf(row: Loaded) {
  const b = row.bundle;
  if (row.releaseState === 'revoked' || b.errorCode === 'RELEASE_REVOKED') throw releaseRevoked(row.version);
  if (b.state !== 'ready' || !b.sitePartSha256 || b.sitePartSize === null || !b.manifest) {
    throw new AppError(
      'conflict',
      'BUNDLE_NOT_READY',
      b.state === 'failed'
        ? `${b.errorCode === 'PARTS_MISSING' ? 'This bundle can no longer be downloaded' : 'This bundle failed to build'}: ${b.error ?? 'unknown error'}`
        : `This bundle is ${b.state}; it can be downloaded once it is ready.`,
    );
  }
  if (b.expiresAt && b.expiresAt.getTime() <= Date.now()) {
    throw new AppError(
      'conflict',
      'BUNDLE_EXPIRED',
      'This bundle has expired (sites refuse expired bundles); ask for a new one.',
    );
  }
  const manifest = b.manifest as {
    files: { path: string; size: number; sha256: string }[];
    images: { path: string };
    content: { path: string } | null;
  };
  const root = `outpost-${row.siteCode}-${row.version}`;
  const sharedPaths = [...(manifest.content ? [manifest.content.path] : []), manifest.images.path];
  const shared = sharedPaths.map((p) => {
    const file = manifest.files.find((f) => f.path === p)!;
    return {
      path: `${root}/${p}`,
      size: file.size,
      sha256: file.sha256,
      mtime: Math.floor(new Date((b.manifest as { created: string }).created).getTime() / 1000),
    };
  });
  return { root, sitePart: { sha256: b.sitePartSha256, size: b.sitePartSize }, shared };
}

/**
 * The parts of a ready bundle with where each comes from: the images archive is produced from its
 * blobs by its layout (archives built before migration 0007 were stored whole, at their key); the
 * site part and content package are stored content-addressed.
 */
async function locateParts(ctx: ServiceCtx, row: Loaded) {
  const parts = partsOf(row);
  const rows = await ctx.db
    .select({ sha256: artifacts.sha256, key: artifacts.key })
    .from(artifacts)
    .where(inArray(artifacts.sha256, [parts.sitePart.sha256, ...parts.shared.map((s) => s.sha256)]));
  const keys = new Map(rows.map((r) => [r.sha256, r.key]));
  const keyOf = (sha256: string) => keys.get(sha256) ?? blobKey(`sha256:${sha256}`);
  const [archive] = row.bundle.imageArchiveId
    ? await ctx.db
        .select({ id: imageArchives.id, sha256: imageArchives.sha256, layout: imageArchives.layout })
        .from(imageArchives)
        .where(eq(imageArchives.id, row.bundle.imageArchiveId))
        .limit(1)
    : [];
  const layoutOf = (sha256: string) => (archive?.layout && archive.sha256 === sha256 ? archive.layout : null);
  return {
    root: parts.root,
    archiveId: archive?.id ?? null,
    sitePart: { ...parts.sitePart, key: keyOf(parts.sitePart.sha256) },
    shared: parts.shared.map((s) => ({ ...s, key: keyOf(s.sha256), archive: layoutOf(s.sha256) })),
  };
}

const partsMissing = () =>
  new AppError(
    'unavailable',
    'BUNDLE_PARTS_MISSING',
    'Part of this bundle is missing from storage. It is now marked failed: ask for it again or press Try again, and it will be built again.',
  );

/**
 * Checks that the stored parts a download reads are there whole. A part that is gone (not merely a
 * store that does not answer: that error is thrown as it is) marks the bundle failed — and, when
 * blobs of its images archive are gone, the archive and every bundle built on it — so that asking
 * again or retrying builds them again (the archive build copies missing blobs from the registry).
 */
async function assertStored(
  ctx: ServiceCtx,
  row: Loaded,
  store: BlobStore,
  archiveId: string | null,
  objects: { key: string; size: number; archive?: ImagesArchiveLayout | null }[],
): Promise<void> {
  const archives = objects.filter((o) => o.archive);
  const stored = objects.filter((o) => !o.archive);
  const [archiveGone, storedGone] = await Promise.all([
    Promise.all(
      archives.map(async (o) => (await missingBlobsForDownload(store, o.archive!)).length > 0),
    ).then((gone) => gone.includes(true)),
    Promise.all(stored.map(async (o) => (await headSize(store, o.key)) !== o.size)).then((gone) =>
      gone.includes(true),
    ),
  ]);
  if (!archiveGone && !storedGone) return;
  await markPartsMissing(ctx, row, archiveGone ? archiveId : null);
  throw partsMissing();
}

async function markPartsMissing(ctx: ServiceCtx, row: Loaded, archiveId: string | null): Promise<void> {
  const bundleError = { state: 'failed' as const, errorCode: 'PARTS_MISSING', updatedAt: sql`now()` };
  await inTransaction(ctx, async (ctx) => {
    if (archiveId) {
      await ctx.db
        .update(imageArchives)
        .set({ ...bundleError, error: 'Blobs of this images archive are missing from the object store.' })
        .where(eq(imageArchives.id, archiveId));
      await ctx.db
        .update(bundles)
        .set({
          ...bundleError,
          error:
            'Blobs of the images archive are missing from storage; the bundle is built again when asked for or tried again.',
        })
        .where(
          and(
            eq(bundles.imageArchiveId, archiveId),
            sql`${bundles.state} in ('queued', 'building', 'ready')`,
          ),
        );
    }
    await ctx.db
      .update(bundles)
      .set({
        ...bundleError,
        error:
          'Part of this bundle is missing from storage; it is built again when asked for or tried again.',
      })
      .where(and(eq(bundles.id, row.bundle.id), eq(bundles.state, 'ready')));
    await recordAudit(ctx, {
      action: 'bundle.parts_missing',
      objectType: 'bundle',
      objectId: row.bundle.id,
      details: { archiveId },
    });
  });
}

/**
 * The stitched file of a ready bundle (see `stitchedSource`): the per-site part, then the shared
 * content package and images archive, read from the object store as the bytes are pulled. Checks
 * first that every part is there whole; a missing one marks the bundle failed (503).
 */
export async function bundleBytes(ctx: ServiceCtx, store: BlobStore, id: string) {
  const row = await loadBundle(ctx, id);
  const parts = await locateParts(ctx, row);
  // The site part is read whole just below (its size is checked there); the shared ones are looked at.
  await assertStored(ctx, row, store, parts.archiveId, parts.shared);
  const read = await get(store, parts.sitePart.sha256, undefined, parts.sitePart.key).catch(
    async (error: unknown) => {
      if (!(error instanceof NotFoundError)) throw error;
      await markPartsMissing(ctx, row, null);
      throw partsMissing();
    },
  );
  const sitePart = await readWhole(read.body);
  if (sitePart.length !== parts.sitePart.size) {
    await markPartsMissing(ctx, row, null);
    throw partsMissing();
  }
  const shared: SharedObject[] = parts.shared.map(({ path, size, mtime }) => ({ path, size, mtime }));
  const source = stitchedSource({
    store,
    plan: stitchPlan({ sitePartSize: sitePart.length, shared }),
    sitePart,
    shared: parts.shared,
    etag: row.bundle.etag ?? parts.sitePart.sha256,
    fileName: bundleFileName(row.siteCode, row.version),
  });
  return { row, source };
}

/**
 * The one-file download of a bundle, as `bundleBytes`, where each body sent is recorded (who, when,
 * which bytes, whether it was sent to the end). A HEAD or a 416 opens no body and records nothing.
 */
export async function downloadBundle({
  ctx,
  store,
  input,
}: {
  ctx: ServiceCtx;
  store: BlobStore;
  input: { id: string };
}): Promise<ByteSource> {
  const { row, source } = await bundleBytes(ctx, store, input.id);
  return {
    ...source,
    open: async (start, end) => {
      const [download] = await ctx.db
        .insert(bundleDownloads)
        .values({
          orgId: ctx.orgId,
          bundleId: row.bundle.id,
          siteId: row.bundle.siteId,
          userId: ctx.actor.userId,
          tokenId: ctx.actor.tokenId,
          kind: 'stitched',
          rangeStart: start,
          rangeEnd: end - 1,
          bytes: 0,
        })
        .returning({ id: bundleDownloads.id });
      return counted(ctx.db, download!.id, end - start, await source.open(start, end));
    },
  };
}

/**
 * Passes the bytes on and, once the last one is handed over (before the body ends, while this
 * request's database connection is still open), records how many were sent. A body that stops early
 * (the client went away, a stored object ended short) keeps the row at 0 bytes, incomplete.
 */
async function* counted(
  db: ServiceCtx['db'],
  downloadId: string,
  length: number,
  chunks: AsyncGenerator<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  let sent = 0;
  for await (const chunk of chunks) {
    sent += chunk.length;
    yield chunk;
  }
  await db
    .update(bundleDownloads)
    .set({ bytes: sent, complete: sent === length })
    .where(eq(bundleDownloads.id, downloadId));
}

/**
 * Direct links to each part of a bundle, for download managers: fetch them all, put each at its
 * `path` (the site part is a tar to extract there), and the folder is the bundle. Stored parts get
 * presigned object-store links; an images archive (produced from its blobs) a signed API link.
 */
export async function bundleLinks({
  ctx,
  store,
  box,
  baseUrl,
  input,
}: {
  ctx: ServiceCtx;
  store: BlobStore & { presignClient?: S3Client };
  box: SecretBox;
  baseUrl: string;
  input: { id: string; expiresInSeconds?: number };
}) {
  const row = await loadBundle(ctx, input.id);
  const parts = await locateParts(ctx, row);
  await assertStored(ctx, row, store, parts.archiveId, [parts.sitePart, ...parts.shared]);
  const expiresIn = input.expiresInSeconds ?? 24 * 3600;
  const expires = Math.floor(Date.now() / 1000) + expiresIn;
  const link = (key: string, fileName: string) =>
    getSignedUrl(
      store.presignClient ?? store.client,
      new GetObjectCommand({
        Bucket: store.bucket,
        Key: key,
        ResponseContentDisposition: `attachment; filename="${fileName}"`,
      }),
      { expiresIn },
    );
  // An images archive is not one stored object: its link is the API's own, signed like a presigned one.
  const archiveLink = async (fileName: string) => {
    const signature = await box.mac(archiveLinkMessage(parts.archiveId!, ctx.orgId, expires));
    return `${baseUrl.replace(/\/+$/, '')}/api/v1/archive-links/${parts.archiveId}/${encodeURIComponent(fileName)}?expires=${expires}&signature=${signature}`;
  };
  const sitePartName = `outpost-${row.siteCode}-${row.version}-site.tar`;
  const files = [
    {
      path: sitePartName,
      extract: true,
      size: parts.sitePart.size,
      sha256: parts.sitePart.sha256,
      url: await link(parts.sitePart.key, sitePartName),
    },
    ...(await Promise.all(
      parts.shared.map(async (s) => {
        const fileName = s.path.split('/').pop()!;
        return {
          path: s.path,
          extract: false,
          size: s.size,
          sha256: s.sha256,
          url: s.archive ? await archiveLink(fileName) : await link(s.key, fileName),
        };
      }),
    )),
  ];
  // Handing out links is not a download and a GET changes nothing: only bytes sent by the API are counted.
  return {
    bundleId: row.bundle.id,
    root: parts.root,
    expiresAt: new Date(expires * 1000).toISOString(),
    manifest: row.bundle.manifest,
    files,
  };
}

const archiveLinkMessage = (archiveId: string, orgId: string, expires: number) =>
  `archive-link\n${archiveId}\n${orgId}\n${expires}`;

/**
 * `images.tgz` of one images archive through a link from `bundleLinks`: no session, the signature
 * and expiry are the authorisation (as with a presigned S3 link). Served with ranges as the bundle
 * download is. A wrong, altered or expired link is refused without saying whether the archive exists.
 */
export async function downloadArchiveLink({
  db,
  store,
  box,
  input,
}: {
  db: ServiceCtx['db'];
  store: BlobStore;
  box: SecretBox;
  input: {
    id: string;
    fileName: string;
    expires: string | undefined;
    signature: string | undefined;
  };
}): Promise<ByteSource> {
  const expires = Number(input.expires);
  const refused = new AppError(
    'forbidden',
    'LINK_INVALID',
    'This download link is not valid or has expired; ask for new links.',
  );
  if (!/^[0-9a-f-]{36}$/.test(input.id) || !Number.isSafeInteger(expires) || !input.signature) throw refused;
  const [archive] = await db.select().from(imageArchives).where(eq(imageArchives.id, input.id)).limit(1);
  if (
    !archive ||
    !(await box.verifyMac(archiveLinkMessage(archive.id, archive.orgId, expires), input.signature))
  )
    throw refused;
  if (expires * 1000 <= Date.now())
    throw new AppError('forbidden', 'LINK_EXPIRED', 'This download link has expired; ask for new links.');
  const [release] = await db
    .select({ state: releases.state, version: releases.version })
    .from(releases)
    .where(eq(releases.id, archive.releaseId))
    .limit(1);
  if (!release || release.state === 'revoked' || archive.errorCode === 'RELEASE_REVOKED')
    throw releaseRevoked(release?.version ?? 'of this link');
  if (archive.state !== 'ready' || !archive.layout || !archive.sha256 || archive.size === null) {
    throw new NotFoundError('image archive', archive.id);
  }
  const source: SharedSource = { sha256: archive.sha256, archive: archive.layout };
  if ((await missingBlobsForDownload(store, archive.layout)).length > 0) {
    throw new AppError(
      'unavailable',
      'BUNDLE_PARTS_MISSING',
      'Blobs of this images archive are missing from storage; ask for new links once the bundle was built again.',
    );
  }
  return {
    size: archive.size,
    etag: archive.sha256.slice(0, 32),
    fileName: /^[\w.+-]{1,100}$/.test(input.fileName) ? input.fileName : 'images.tgz',
    contentType: 'application/gzip',
    open: async (start, end) => readShared(store, source, start, end),
  };
}
