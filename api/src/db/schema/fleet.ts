import { boolean, index, integer, pgTable, primaryKey, text, uuid } from 'drizzle-orm/pg-core';
import { orgId, siteId, timestamptz } from './columns.ts';

/**
 * Rollup of the report history for "adoption over time": one row per run of reports of the same
 * version at a site, [valid_from, valid_to) in the reports' own time (`reported_at`), valid_to null
 * for the run that still lasts. A few rows per site instead of every heartbeat, so a day-by-day
 * count of the whole fleet reads them once. Always derivable from `site_reports`: a site's rows are
 * rebuilt from its reports whenever a report changes its history (services/fleet/spans.ts), and go
 * with the site when it is deleted.
 */
export const siteVersionSpans = pgTable(
  'site_version_spans',
  {
    orgId: orgId(),
    siteId: siteId(),
    version: text('version'),
    validFrom: timestamptz('valid_from').notNull(),
    validTo: timestamptz('valid_to'),
    /** Whether this run is in `fleet_adoption_deltas` (its site was not archived); kept by triggers (migration 0009). */
    counted: boolean('counted').notNull().default(false),
  },
  (t) => [
    index('site_version_spans_org_idx').on(t.orgId, t.validFrom),
    index('site_version_spans_site_idx').on(t.siteId),
  ],
);

/**
 * The whole fleet's adoption as daily changes: for each version and UTC day (days since 1970), how
 * many non-archived sites started (+) or ended (−) a run of it. A running sum gives the sites on each
 * version at the end of each day without reading a row per site, for the dashboard's default view.
 * Kept by triggers on site_version_spans (insert, delete) and sites (archive, restore) in the same
 * transaction as the change (migration 0009); no foreign key, so deleting an organisation cascades
 * through its runs without the triggers tripping over it.
 */
export const fleetAdoptionDeltas = pgTable(
  'fleet_adoption_deltas',
  {
    orgId: uuid('org_id').notNull(),
    version: text('version').notNull(),
    day: integer('day').notNull(),
    delta: integer('delta').notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.version, t.day] })],
);
