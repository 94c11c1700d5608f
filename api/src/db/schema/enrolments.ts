import { index, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { createdAt, id, orgId, siteId, timestamptz } from './columns.ts';

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
    id: id(),
    orgId: orgId(),
    siteId: siteId(),
    /** The bundle that carries it (no foreign key: bundles may be pruned while the token's record stays). */
    bundleId: uuid('bundle_id'),
    tokenHash: text('token_hash').notNull().unique(),
    expiresAt: timestamptz('expires_at').notNull(),
    /** When it was exchanged, or closed because another token of the site was. */
    closedAt: timestamptz('closed_at'),
    /** `exchanged` | `superseded` */
    closedReason: text('closed_reason'),
    createdAt: createdAt(),
  },
  (t) => [index('site_enrolments_site_idx').on(t.siteId)],
);
