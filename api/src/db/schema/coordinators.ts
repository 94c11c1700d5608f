import { sql } from 'drizzle-orm';
import { pgTable, uuid, text, index, bigint } from 'drizzle-orm/pg-core';
import { roleEnum } from './accounts.ts';
import { bundles } from './bundles.ts';
import { createdAt, id, orgId, siteId, timestamptz, userRef } from './columns.ts';

/**
 * Invitations: the only way a person joins an organisation (a new account, or an account that
 * already exists elsewhere — that person accepts by signing in, so nobody is added without consent).
 * The link carries a random token; only its sha256 is stored. One use, and it expires.
 */
export const invites = pgTable(
  'invites',
  {
    id: id(),
    orgId: orgId(),
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
    createdBy: userRef('created_by'),
    createdAt: createdAt(),
    expiresAt: timestamptz('expires_at').notNull(),
    acceptedAt: timestamptz('accepted_at'),
    acceptedBy: userRef('accepted_by'),
    revokedAt: timestamptz('revoked_at'),
  },
  (t) => [index('invites_org_created_idx').on(t.orgId, t.createdAt)],
);

/** Problems a coordinator reports from a site ("the install stopped at step 4"), read by the ministry. */
export const siteProblems = pgTable(
  'site_problems',
  {
    id: id(),
    orgId: orgId(),
    siteId: siteId(),
    reportedBy: userRef('reported_by'),
    description: text('description').notNull(),
    // What the site's screen said, pasted or typed as seen.
    errorText: text('error_text').notNull().default(''),
    version: text('version'),
    createdAt: createdAt(),
    resolvedAt: timestamptz('resolved_at'),
    resolvedBy: userRef('resolved_by'),
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
  orgId: orgId(),
  // The bundle's etag when hashed: a rebuilt bundle (new etag) is hashed again.
  etag: text('etag').notNull(),
  sha256: text('sha256').notNull(),
  size: bigint('size', { mode: 'number' }).notNull(),
  computedAt: timestamptz('computed_at').notNull().defaultNow(),
});
