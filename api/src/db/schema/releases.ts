import { sql } from 'drizzle-orm';
import { pgTable, uuid, text, jsonb, integer, bigint, uniqueIndex, index, pgEnum } from 'drizzle-orm/pg-core';
import { createdAt, id, orgId, timestamptz, updatedAt, userRef } from './columns.ts';

export const releaseStateEnum = pgEnum('release_state', ['draft', 'published', 'deprecated', 'revoked']);

/** A version of the software an organisation ships to its sites: images, compose template, content, edge scripts. */
export const releases = pgTable(
  'releases',
  {
    id: id(),
    orgId: orgId(),
    version: text('version').notNull(),
    channel: text('channel').notNull().default('stable'),
    notes: text('notes').notNull().default(''),
    state: releaseStateEnum('state').notNull().default('draft'),
    composeTemplate: text('compose_template'),
    contentPackageId: uuid('content_package_id'),
    edgeScriptsVersion: text('edge_scripts_version'),
    platform: text('platform').notNull().default('linux/amd64'),
    createdBy: userRef('created_by'),
    publishedAt: timestamptz('published_at'),
    deprecatedAt: timestamptz('deprecated_at'),
    revokedAt: timestamptz('revoked_at'),
    revokedReason: text('revoked_reason'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('releases_org_version_uq').on(t.orgId, t.version)],
);

/**
 * Content-addressed objects in the object store (`blobs/sha256/<hex>`): image layers and configs,
 * image archives, content packages. Stored once, whoever needs them; the org-scoped tables that
 * reference them decide who may see them.
 */
export const artifacts = pgTable('artifacts', {
  sha256: text('sha256').primaryKey(),
  size: bigint('size', { mode: 'number' }).notNull(),
  mediaType: text('media_type').notNull(),
  key: text('key').notNull(),
  createdAt: createdAt(),
});

/** Credentials for a private registry, per organisation; the secret is sealed (lib/secret-box.ts). */
export const registryCredentials = pgTable(
  'registry_credentials',
  {
    id: id(),
    orgId: orgId(),
    registry: text('registry').notNull(),
    username: text('username'),
    secretSealed: text('secret_sealed').notNull(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('registry_credentials_org_registry_uq').on(t.orgId, t.registry)],
);

export const contentPackages = pgTable(
  'content_packages',
  {
    id: id(),
    orgId: orgId(),
    name: text('name').notNull(),
    version: text('version').notNull(),
    sha256: text('sha256')
      .notNull()
      .references(() => artifacts.sha256),
    size: bigint('size', { mode: 'number' }).notNull(),
    entries: integer('entries').notNull(),
    uncompressedSize: bigint('uncompressed_size', { mode: 'number' }).notNull(),
    createdBy: userRef('created_by'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('content_packages_org_name_version_uq').on(t.orgId, t.name, t.version)],
);

export interface LayerRef {
  digest: string;
  size: number;
  mediaType: string;
}

/** An image of a release, resolved to a digest for one platform when it was added. */
export const releaseImages = pgTable(
  'release_images',
  {
    id: id(),
    orgId: orgId(),
    releaseId: uuid('release_id')
      .notNull()
      .references(() => releases.id, { onDelete: 'cascade' }),
    // The name the compose template uses: {{ image.<name> }}
    name: text('name').notNull(),
    reference: text('reference').notNull(),
    registry: text('registry').notNull(),
    repository: text('repository').notNull(),
    digest: text('digest').notNull(),
    indexDigest: text('index_digest'),
    mediaType: text('media_type').notNull(),
    platform: text('platform').notNull(),
    config: jsonb('config').$type<LayerRef>().notNull(),
    layers: jsonb('layers')
      .$type<LayerRef[]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    totalSize: bigint('total_size', { mode: 'number' }).notNull(),
    position: integer('position').notNull().default(0),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('release_images_release_name_uq').on(t.releaseId, t.name),
    index('release_images_org_idx').on(t.orgId),
  ],
);
