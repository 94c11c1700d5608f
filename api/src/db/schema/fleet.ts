import {
  bigint,
  boolean,
  date,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';
import { connectivityEnum } from './sites.ts';
import { orgId, siteId, timestamptz } from './columns.ts';

/**
 * A site's group as the dashboard filters it (region, district, connectivity, tag set), copied
 * into the rollups and the runs; a function so that each table gets builders of its own.
 */
function siteGroup() {
  return {
    region: text('region'),
    district: text('district'),
    connectivity: connectivityEnum('connectivity').notNull(),
    tags: text('tags').array().notNull(),
  };
}

/** The head of a rollup row keyed by site group: its own id, the organisation, the group. */
function rollupKey() {
  return {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    orgId: uuid('org_id').notNull(),
    ...siteGroup(),
  };
}

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
    // The site's current region, district, connectivity and tags, copied so that the filtered
    // adoption rollup (fleet_adoption_group_deltas) can be kept from the runs alone — a deleted
    // site's runs go after the site row. A site that moves has its runs written again (migration 0019).
    ...siteGroup(),
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

/**
 * fleet_adoption_deltas per group of sites — the same daily changes, kept apart for each (region,
 * district, connectivity, tag set) the sites are in now — so that adoption over time filtered like
 * the site list (region, district, tag, connectivity) adds up the rows of the matching groups
 * instead of reading every run in view. A site that changes group takes its whole history along:
 * the curve of region X is the history of the sites in region X today, the sites its filter lists.
 * Kept by the triggers of migration 0019 on site_version_spans (insert, delete) and sites (archive,
 * restore, a change of region, district, connectivity or tags); a row that drops to zero is
 * deleted. No foreign key, like fleet_adoption_deltas.
 */
export const fleetAdoptionGroupDeltas = pgTable(
  'fleet_adoption_group_deltas',
  {
    ...rollupKey(),
    version: text('version').notNull(),
    day: integer('day').notNull(),
    delta: integer('delta').notNull(),
  },
  (t) => [
    unique('fleet_adoption_group_deltas_key')
      .on(t.orgId, t.region, t.district, t.connectivity, t.tags, t.version, t.day)
      .nullsNotDistinct(),
  ],
);

/**
 * The same daily changes per single filter value — a region, a district, a tag, a connectivity
 * (`facet` names which) — so that the commonest filtered curve, one filter alone, adds up a few
 * thousand rows (versions × days) instead of every group's: the group rollup has a row for nearly
 * every run start and end (~200,000 on the bench fleet), a facet at most one per version and day.
 * Kept by the same triggers (migration 0019); a row that drops to zero is deleted.
 */
export const fleetAdoptionFacetDeltas = pgTable(
  'fleet_adoption_facet_deltas',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    orgId: uuid('org_id').notNull(),
    facet: text('facet', { enum: ['region', 'district', 'tag', 'connectivity'] }).notNull(),
    value: text('value').notNull(),
    version: text('version').notNull(),
    day: integer('day').notNull(),
    delta: integer('delta').notNull(),
  },
  (t) => [unique('fleet_adoption_facet_deltas_key').on(t.orgId, t.facet, t.value, t.version, t.day)],
);

/**
 * The fleet's current state, counted: how many non-archived sites share every value the dashboard
 * groups, filters or derives a status from (region, district, connectivity, tag set, reported and
 * target release, failed or not, the UTC day of the latest report, the layers reported). A few
 * thousand rows stand for 100,000 sites; the summary, distribution and breakdowns add them up and
 * derive each status at read time (release state and order are read then, so a revoked or newly
 * published release needs no rewrite). Kept by triggers on sites in the same transaction as every
 * change (migration 0015); a row whose count drops to zero is deleted. No foreign key, like
 * fleet_adoption_deltas, so deleting an organisation cascades through its sites without the
 * triggers tripping over it.
 */
export const fleetSiteCounts = pgTable(
  'fleet_site_counts',
  {
    ...rollupKey(),
    reportedVersion: text('reported_version'),
    reportedReleaseId: uuid('reported_release_id'),
    reportedFailed: boolean('reported_failed').notNull(),
    reportedDay: date('reported_day', { mode: 'string' }),
    contentVersion: text('content_version'),
    scriptsVersion: text('scripts_version'),
    composeDrift: boolean('compose_drift').notNull(),
    targetReleaseId: uuid('target_release_id'),
    n: integer('n').notNull(),
  },
  (t) => [
    unique('fleet_site_counts_key')
      .on(
        t.orgId,
        t.region,
        t.district,
        t.connectivity,
        t.tags,
        t.reportedVersion,
        t.reportedReleaseId,
        t.reportedFailed,
        t.reportedDay,
        t.contentVersion,
        t.scriptsVersion,
        t.composeDrift,
        t.targetReleaseId,
      )
      .nullsNotDistinct(),
  ],
);
