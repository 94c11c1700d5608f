import { sql } from 'drizzle-orm';
import { pgTable, uuid, text, timestamp, index, bigint } from 'drizzle-orm/pg-core';
import { organizations, roleEnum, users } from './accounts.ts';
import { sites } from './sites.ts';
import { bundles } from './bundles.ts';

/**
 * Invitations: the only way a person joins an organisation (a new account, or an account that
 * already exists elsewhere — that person accepts by signing in, so nobody is added without consent).
 * The link carries a random token; only its sha256 is stored. One use, and it expires.
 */
export const invites = pgTable(
  'invites',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    orgId: uuid('org_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    email: text('email').notNull(),
    name: text('name').notNull().default(''),
    role: roleEnum('role').notNull(),
    // Sites a coordinator looks after from the moment they join (ids re-checked against the org on accept).
    siteIds: uuid('site_ids')
      .array()
      .notNull()
      .default(sql`'{}'::uuid[]`),
    language: text('language').$type<'en' | 'fr' | 'pt'>(),
    tokenHash: text('token_hash').notNull().unique(),
    createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }).notNull(),
    acceptedAt: timestamp('accepted_at', { withTimezone: true, precision: 3 }),
    acceptedBy: uuid('accepted_by').references(() => users.id, { onDelete: 'set null' }),
    revokedAt: timestamp('revoked_at', { withTimezone: true, precision: 3 }),
  },
  (t) => [index('invites_org_created_idx').on(t.orgId, t.createdAt)],
);

/** Problems a coordinator reports from a site ("the install stopped at step 4"), read by the ministry. */
export const siteProblems = pgTable(
  'site_problems',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    orgId: uuid('org_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    siteId: uuid('site_id')
      .notNull()
      .references(() => sites.id, { onDelete: 'cascade' }),
    reportedBy: uuid('reported_by').references(() => users.id, { onDelete: 'set null' }),
    description: text('description').notNull(),
    // What the site's screen said, pasted or typed as seen.
    errorText: text('error_text').notNull().default(''),
    version: text('version'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    resolvedAt: timestamp('resolved_at', { withTimezone: true, precision: 3 }),
    resolvedBy: uuid('resolved_by').references(() => users.id, { onDelete: 'set null' }),
  },
  (t) => [
    index('site_problems_site_idx').on(t.siteId, t.createdAt),
    index('site_problems_org_open_idx').on(t.orgId, t.resolvedAt),
  ],
);

/**
 * The sha256 of a bundle's one-file download, worked out once when first asked for (reading the
 * stitched file through the hash) so a coordinator can compare it with what they downloaded.
 */
export const bundleChecksums = pgTable('bundle_checksums', {
  bundleId: uuid('bundle_id')
    .primaryKey()
    .references(() => bundles.id, { onDelete: 'cascade' }),
  orgId: uuid('org_id')
    .notNull()
    .references(() => organizations.id, { onDelete: 'cascade' }),
  // The bundle's etag when hashed: a rebuilt bundle (new etag) is hashed again.
  etag: text('etag').notNull(),
  sha256: text('sha256').notNull(),
  size: bigint('size', { mode: 'number' }).notNull(),
  computedAt: timestamp('computed_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
});
