import { index, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { organizations } from './accounts.ts';
import { sites } from './sites.ts';

/**
 * One-time enrolment tokens: each site bundle carries one (`site/enrolment-token`), which the
 * installer exchanges for the site's device token on its first contact with the API after the
 * install (POST /api/v1/enrol). Stored hashed; single use; expires with the bundle. An exchange
 * also closes every other open token of the site, so an older bundle found later cannot take the
 * site's identity (docs/decisions.md).
 */
export const siteEnrolments = pgTable(
  'site_enrolments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    orgId: uuid('org_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    siteId: uuid('site_id')
      .notNull()
      .references(() => sites.id, { onDelete: 'cascade' }),
    /** The bundle that carries it (no foreign key: bundles may be pruned while the token's record stays). */
    bundleId: uuid('bundle_id'),
    tokenHash: text('token_hash').notNull().unique(),
    expiresAt: timestamp('expires_at', { withTimezone: true, precision: 3 }).notNull(),
    /** When it was exchanged, or closed because another token of the site was. */
    closedAt: timestamp('closed_at', { withTimezone: true, precision: 3 }),
    /** `exchanged` | `superseded` */
    closedReason: text('closed_reason'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [index('site_enrolments_site_idx').on(t.siteId)],
);
