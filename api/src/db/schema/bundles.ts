import { sql } from 'drizzle-orm';
import {
  pgTable,
  uuid,
  text,
  jsonb,
  integer,
  bigint,
  boolean,
  index,
  unique,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import { releases } from './releases.ts';
import type { ImagesArchiveLayout } from '@outpost/bundler';
import { createdAt, id, orgId, siteId, timestamptz, updatedAt, userRef } from './columns.ts';

/**
 * An organisation's bundle signing keys (ECDSA P-256, docs/decisions.md). One is active; rotation
 * retires it and keeps its public key, so bundles signed before still verify.
 * The private key is sealed with the server's secret box and never leaves the API.
 */
export const signingKeys = pgTable(
  'signing_keys',
  {
    id: id(),
    orgId: orgId(),
    algorithm: text('algorithm').notNull().default('ecdsa-p256-sha256'),
    fingerprint: text('fingerprint').notNull(),
    publicKeyPem: text('public_key_pem').notNull(),
    privateKeySealed: text('private_key_sealed').notNull(),
    createdBy: userRef('created_by'),
    createdAt: createdAt(),
    retiredAt: timestamptz('retired_at'),
  },
  (t) => [
    uniqueIndex('signing_keys_org_active_uq')
      .on(t.orgId)
      .where(sql`retired_at IS NULL`),
    uniqueIndex('signing_keys_org_fingerprint_uq').on(t.orgId, t.fingerprint),
  ],
);

export type BuildState = 'queued' | 'building' | 'ready' | 'failed';

/**
 * A release's images archive (`images.tgz`), full (`from_release_id` null) or a delta from an
 * earlier release. Built once and shared by every bundle of that release (and that delta).
 */
export const imageArchives = pgTable(
  'image_archives',
  {
    id: id(),
    orgId: orgId(),
    releaseId: uuid('release_id')
      .notNull()
      .references(() => releases.id, { onDelete: 'cascade' }),
    fromReleaseId: uuid('from_release_id').references(() => releases.id, { onDelete: 'cascade' }),
    state: text('state').$type<BuildState>().notNull().default('queued'),
    sha256: text('sha256'),
    size: bigint('size', { mode: 'number' }),
    tarSize: bigint('tar_size', { mode: 'number' }),
    omittedLayers: jsonb('omitted_layers')
      .$type<string[]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    /** How `images.tgz` is produced from the stored blobs (it is never stored itself); null for archives stored whole before migration 0007. */
    layout: jsonb('layout').$type<ImagesArchiveLayout>(),
    errorCode: text('error_code'),
    error: text('error'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    readyAt: timestamptz('ready_at'),
  },
  (t) => [unique('image_archives_release_from_uq').on(t.releaseId, t.fromReleaseId).nullsNotDistinct()],
);

/** One site's bundle of one release: the per-site part (in the object store) and the shared archives it names. */
export const bundles = pgTable(
  'bundles',
  {
    id: id(),
    orgId: orgId(),
    siteId: siteId(),
    releaseId: uuid('release_id')
      .notNull()
      .references(() => releases.id, { onDelete: 'cascade' }),
    fromReleaseId: uuid('from_release_id').references(() => releases.id, { onDelete: 'set null' }),
    imageArchiveId: uuid('image_archive_id').references(() => imageArchives.id, { onDelete: 'set null' }),
    state: text('state').$type<BuildState>().notNull().default('queued'),
    delta: boolean('delta').notNull().default(false),
    /** The per-site tar (no trailer), stored content-addressed. */
    sitePartSha256: text('site_part_sha256'),
    sitePartSize: integer('site_part_size'),
    /** Bytes of the stitched one-file download. */
    size: bigint('size', { mode: 'number' }),
    /** Size the full (non-delta) download would have, for comparison. */
    fullSize: bigint('full_size', { mode: 'number' }),
    manifest: jsonb('manifest').$type<Record<string, unknown>>(),
    keyFingerprint: text('key_fingerprint'),
    etag: text('etag'),
    errorCode: text('error_code'),
    error: text('error'),
    requestedBy: userRef('requested_by'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    readyAt: timestamptz('ready_at'),
    expiresAt: timestamptz('expires_at'),
  },
  (t) => [
    index('bundles_org_release_idx').on(t.orgId, t.releaseId, t.createdAt),
    index('bundles_org_site_idx').on(t.orgId, t.siteId, t.createdAt),
    index('bundles_archive_idx').on(t.imageArchiveId),
  ],
);

export type JobKind = 'image-archive' | 'site-bundle';
export type JobState = 'queued' | 'running' | 'done' | 'failed';

/**
 * The build queue. Workers claim rows with `FOR UPDATE SKIP LOCKED` and hold a lease
 * (`locked_until`) they renew while working; a worker that dies lets its lease lapse and another
 * picks the job up again.
 */
export const bundleJobs = pgTable(
  'bundle_jobs',
  {
    id: id(),
    orgId: orgId(),
    kind: text('kind').$type<JobKind>().notNull(),
    /** The image archive or bundle this job builds. */
    targetId: uuid('target_id').notNull(),
    state: text('state').$type<JobState>().notNull().default('queued'),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(5),
    runAfter: timestamptz('run_after').notNull().defaultNow(),
    lockedBy: text('locked_by'),
    lockedUntil: timestamptz('locked_until'),
    lastError: text('last_error'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('bundle_jobs_ready_idx')
      .on(t.runAfter)
      .where(sql`state IN ('queued', 'running')`),
    uniqueIndex('bundle_jobs_target_open_uq')
      .on(t.kind, t.targetId)
      .where(sql`state IN ('queued', 'running')`),
  ],
);

/** Every bundle download (or presigned link handed out), so a rollout can count a site as "downloaded". */
export const bundleDownloads = pgTable(
  'bundle_downloads',
  {
    id: id(),
    orgId: orgId(),
    bundleId: uuid('bundle_id')
      .notNull()
      .references(() => bundles.id, { onDelete: 'cascade' }),
    siteId: siteId(),
    userId: userRef('user_id'),
    tokenId: uuid('token_id'),
    kind: text('kind').$type<'stitched' | 'links'>().notNull(),
    rangeStart: bigint('range_start', { mode: 'number' }),
    rangeEnd: bigint('range_end', { mode: 'number' }),
    /** Bytes sent (stitched); for links, the bytes the links cover. */
    bytes: bigint('bytes', { mode: 'number' }).notNull().default(0),
    complete: boolean('complete').notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [
    index('bundle_downloads_bundle_idx').on(t.bundleId, t.createdAt),
    index('bundle_downloads_org_site_idx').on(t.orgId, t.siteId),
  ],
);
