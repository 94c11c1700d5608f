import { index, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { organizations } from './accounts.ts';
import { sites } from './sites.ts';

/**
 * Rollup of the report history for "adoption over time": one row per run of reports of the same
 * version at a site, [valid_from, valid_to) in the reports' own time (`reported_at`), valid_to null
 * for the run that still lasts. A few rows per site instead of every heartbeat, so a day-by-day
 * count of the whole fleet reads them once. Always derivable from `site_reports`: a site's rows are
 * rebuilt from its reports whenever a report changes its history (services/fleet/spans.ts), and go
 * with the site when it is deleted.
 */
export const siteVersionSpans = pgTable('site_version_spans', {
  orgId: uuid('org_id').notNull().references(() => organizations.id, { onDelete: 'cascade' }),
  siteId: uuid('site_id').notNull().references(() => sites.id, { onDelete: 'cascade' }),
  version: text('version'),
  validFrom: timestamp('valid_from', { withTimezone: true, precision: 3 }).notNull(),
  validTo: timestamp('valid_to', { withTimezone: true, precision: 3 }),
}, (t) => [
  index('site_version_spans_org_idx').on(t.orgId, t.validFrom),
  index('site_version_spans_site_idx').on(t.siteId),
]);
