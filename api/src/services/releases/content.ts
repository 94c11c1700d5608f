import type { Readable } from 'node:stream';
import { and, desc, eq } from 'drizzle-orm';
import { contentPackages } from '../../db/schema/index.ts';
import { putStream, recordArtifact, type BlobStore } from '../../lib/blob-store.ts';
import { decodeCursor } from '../../lib/cursor.ts';
import { afterCursor, keysetPage, timeCursor } from '../keyset.ts';
import {
  ConflictError,
  NotFoundError,
  ValidationError,
  fieldIssue,
  isUniqueViolation,
} from '../../lib/errors.ts';
import { recordAudit } from '../audit/record.ts';
import { heldBlobs, recordHolders } from '../blobs/holders.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { createZipInspector, type ZipSummary } from './zip-inspector.ts';

/**
 * Content packages: a zip of site content (forms, concepts, configuration) that a release carries
 * into every bundle. The upload is checked as it streams to the object store — never unpacked to
 * disk — and refused whole when anything is wrong with it.
 */

export const CONTENT_MEDIA_TYPE = 'application/zip';

export interface ContentLimits {
  /** Entries (files and folders) in one package. */
  maxEntries: number;
  /** Total unpacked size, whatever the upload limit. */
  maxUncompressedBytes: number;
  /** Total unpacked size at most this many times the upload limit (zip bombs). */
  maxExpansion: number;
}

export const CONTENT_LIMITS: ContentLimits = {
  maxEntries: 100_000,
  maxUncompressedBytes: 2 * 1024 ** 3,
  maxExpansion: 20,
};

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

export interface UploadContentPackageInput {
  name: string;
  version: string;
  /** The zip itself, streamed. */
  body: ReadableStream<Uint8Array> | Readable;
  /** Refused with 413 BODY_TOO_LARGE past this many bytes. */
  maxBytes: number;
}

export type ContentPackageRow = typeof contentPackages.$inferSelect;

export function toContentPackageView(p: ContentPackageRow) {
  return {
    id: p.id,
    name: p.name,
    version: p.version,
    sha256: p.sha256,
    size: p.size,
    entries: p.entries,
    uncompressedSize: p.uncompressedSize,
    createdBy: p.createdBy,
    createdAt: p.createdAt.toISOString(),
  };
}
export type ContentPackageView = ReturnType<typeof toContentPackageView>;

function conflict(name: string, version: string, id?: string) {
  return new ConflictError(
    `Content package ${name} ${version} already exists; upload it under a new version.`,
    fieldIssue('version', 'Already used for this package name.', id ? { contentPackageId: id } : {}),
  );
}

/**
 * Streams a zip into the object store (content-addressed, stored once whoever uploads the same
 * bytes) while checking it, then records the package. Name and version are checked, and a clash
 * refused (409), before a byte of the body is read. When the body is refused (400 CONTENT_INVALID,
 * 413 BODY_TOO_LARGE) nothing is kept: no rows, no temporary object, no blob.
 */
export async function uploadContentPackage({
  ctx,
  store,
  input,
  limits = CONTENT_LIMITS,
}: {
  ctx: ServiceCtx;
  store: BlobStore;
  input: UploadContentPackageInput;
  limits?: ContentLimits;
}): Promise<ContentPackageView> {
  const name = input.name.trim();
  const version = input.version.trim();
  const issues = [
    ...(NAME.test(name) && name.length <= 128
      ? []
      : fieldIssue(
          'name',
          'Lowercase letters, digits, ".", "_" and "-", starting with a letter or digit (at most 128).',
        )),

    ...(version.length >= 1 && version.length <= 64 && !/[\u0000-\u001f\u007f]/.test(version)
      ? []
      : fieldIssue('version', 'Between 1 and 64 characters, no control characters.')),
  ];
  if (issues.length) throw new ValidationError('Fix the package name or version.', issues);

  const [clash] = await ctx.db
    .select({ id: contentPackages.id })
    .from(contentPackages)
    .where(
      and(
        eq(contentPackages.orgId, ctx.orgId),
        eq(contentPackages.name, name),
        eq(contentPackages.version, version),
      ),
    )
    .limit(1);
  if (clash) throw conflict(name, version, clash.id);

  const inspector = createZipInspector({
    maxEntries: limits.maxEntries,
    maxUncompressedBytes: Math.min(limits.maxUncompressedBytes, limits.maxExpansion * input.maxBytes),
  });
  let summary: ZipSummary | undefined;
  const blob = await putStream(store, input.body, {
    mediaType: CONTENT_MEDIA_TYPE,
    maxBytes: input.maxBytes,
    inspect: (chunk) => inspector.push(chunk),
    verify: async () => {
      summary = await inspector.end();
    },
  }).catch((err: unknown) => {
    inspector.abort();
    throw err;
  });

  try {
    return await inTransaction(ctx, async (ctx) => {
      // `existed` is about this organisation only: whether another one uploaded the same bytes must not show.
      const existed = (await heldBlobs(ctx.db, ctx.orgId, [blob.sha256])).size > 0;
      await recordArtifact(ctx.db, {
        sha256: blob.sha256,
        size: blob.size,
        mediaType: CONTENT_MEDIA_TYPE,
        key: blob.key,
      });
      await recordHolders(ctx.db, [{ orgId: ctx.orgId, digest: blob.sha256 }]);
      const [row] = await ctx.db
        .insert(contentPackages)
        .values({
          orgId: ctx.orgId,
          name,
          version,
          sha256: blob.sha256,
          size: blob.size,
          entries: summary!.entries,
          uncompressedSize: summary!.uncompressedSize,
          createdBy: ctx.actor.userId,
        })
        .returning();
      await recordAudit(ctx, {
        action: 'content_package.upload',
        objectType: 'content_package',
        objectId: row!.id,
        details: { name, version, sha256: blob.sha256, size: blob.size, entries: summary!.entries, existed },
      });
      return toContentPackageView(row!);
    });
  } catch (err) {
    // The blob stays: another upload of the same bytes may be recording it right now, and a retry
    // finds it (`existed`). Only a blob with no artifact row can be an orphan; a sweep may reclaim those.
    if (isUniqueViolation(err)) throw conflict(name, version);
    throw err;
  }
}

export async function listContentPackages({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { limit: number; cursor?: string };
}) {
  const limit = Math.min(Math.max(Math.trunc(input.limit) || 50, 1), 200);
  const after = input.cursor ? decodeCursor(input.cursor) : null;
  const { rows, nextCursor } = await keysetPage(
    limit,
    (take) =>
      ctx.db
        .select()
        .from(contentPackages)
        .where(
          and(
            eq(contentPackages.orgId, ctx.orgId),
            afterCursor(after, contentPackages.createdAt, contentPackages.id, 'desc'),
          ),
        )
        .orderBy(desc(contentPackages.createdAt), desc(contentPackages.id))
        .limit(take),
    (last) => timeCursor(last.createdAt, last.id),
  );
  return { items: rows.map(toContentPackageView), nextCursor };
}

/** One content package of the organisation; 404 for any other's. */
export async function getContentPackage(ctx: ServiceCtx, id: string): Promise<ContentPackageView> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw new NotFoundError('content package', id);
  const [row] = await ctx.db
    .select()
    .from(contentPackages)
    .where(and(eq(contentPackages.orgId, ctx.orgId), eq(contentPackages.id, id)))
    .limit(1);
  if (!row) throw new NotFoundError('content package', id);
  return toContentPackageView(row);
}
