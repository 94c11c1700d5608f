import { sql } from 'drizzle-orm';
import {
  pgTable,
  uuid,
  text,
  pgEnum,
  jsonb,
  bigint,
  uniqueIndex,
  index,
  integer,
  doublePrecision,
  primaryKey,
  date,
  boolean,
} from 'drizzle-orm/pg-core';
import { users } from './accounts.ts';
import { releases } from './releases.ts';
import { createdAt, id, orgId, siteId, timestamptz, updatedAt, userRef } from './columns.ts';

export const connectivityEnum = pgEnum('connectivity', ['online', 'intermittent', 'offline']);
/** The language of the site's README.txt and of the installer's printed steps (LANG at the site overrides it). */
export const siteLanguageEnum = pgEnum('site_language', ['en', 'fr', 'pt']);

export const sites = pgTable(
  'sites',
  {
    id: id(),
    orgId: orgId(),
    code: text('code').notNull(),
    name: text('name').notNull(),
    region: text('region'),
    district: text('district'),
    facilityType: text('facility_type'),
    tags: text('tags')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    connectivity: connectivityEnum('connectivity').notNull().default('online'),
    bandwidthKbps: integer('bandwidth_kbps'),
    timezone: text('timezone').notNull().default('UTC'),
    language: siteLanguageEnum('language').notNull().default('en'),
    maintenanceWindow: text('maintenance_window'),
    latitude: doublePrecision('latitude'),
    longitude: doublePrecision('longitude'),
    contactName: text('contact_name'),
    contactPhone: text('contact_phone'),
    contactEmail: text('contact_email'),
    deviceTokenHash: text('device_token_hash'),
    deviceTokenPrefix: text('device_token_prefix'),
    deviceTokenIssuedAt: timestamptz('device_token_issued_at'),
    // Per-site key for receipt codes and files, sealed with the server's secret key (lib/secret-box.ts).
    receiptKeySealed: text('receipt_key_sealed'),
    // Denormalised from site_reports / rollouts so that fleet dashboards read one table.
    // reported_at moves with every check-in, so no index covers it: then a heartbeat that does not
    // change the version is a HOT update that touches none of the indexes below (migration 0005,
    // which also leaves room on each page for it; docs/benchmarks.md).
    reportedVersion: text('reported_version'),
    reportedReleaseId: uuid('reported_release_id'),
    reportedStatus: text('reported_status'),
    reportedAt: timestamptz('reported_at'),
    // The other layers a release carries, as the latest report gave them (null: not reported —
    // old clients, receipts). Compared with what the reported release carries (services/fleet/).
    reportedContentVersion: text('reported_content_version'),
    reportedScriptsVersion: text('reported_scripts_version'),
    reportedComposeSha256: text('reported_compose_sha256'),
    // The UTC day of reported_at, so the dashboard can read the sites of one day (the "silent for
    // N days" boundary) through an index. Stored and indexed, but it only changes on a site's first
    // check-in of a day: every other heartbeat stays a HOT update (migration 0005).
    reportedDay: date('reported_day', { mode: 'string' }).generatedAlwaysAs(
      sql`((reported_at at time zone 'UTC')::date)`,
    ),
    // Whether the compose file the site reports differs from its bundle's (layerDrift('compose')),
    // kept by triggers on sites and bundles so the fleet rollup can count it (fleet_site_counts).
    composeDrift: boolean('compose_drift').notNull().default(false),
    targetReleaseId: uuid('target_release_id'),
    archivedAt: timestamptz('archived_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('sites_org_code_uq').on(t.orgId, t.code),
    index('sites_org_region_idx').on(t.orgId, t.region, t.district),
    uniqueIndex('sites_device_token_uq').on(t.deviceTokenHash),
    index('sites_org_name_idx').on(t.orgId, t.name),
    // One trigram index over "code name" makes "search anywhere in code or name" an index scan
    // (pg_trgm, migration 0001); services/sites/list.ts searches exactly this expression.
    index('sites_search_trgm_idx').using('gin', sql`(${t.code} || ' ' || ${t.name}) gin_trgm_ops`),
    index('sites_tags_idx').using('gin', t.tags),
    index('sites_org_version_idx').on(t.orgId, t.reportedVersion),
    index('sites_org_reported_day_idx').on(t.orgId, t.reportedDay),
  ],
);

export const reportSourceEnum = pgEnum('report_source', [
  'heartbeat',
  'receipt_code',
  'receipt_file',
  'manual',
]);

/** Append-only history of what each site reported; the site row holds the latest for dashboards. */
export const siteReports = pgTable(
  'site_reports',
  {
    id: id(),
    orgId: orgId(),
    siteId: siteId(),
    source: reportSourceEnum('source').notNull(),
    version: text('version'),
    releaseId: uuid('release_id').references(() => releases.id, { onDelete: 'set null' }),
    // healthy | degraded | failed | installing (heartbeats); installed | failed | rolled_back (receipts)
    status: text('status').notNull(),
    healthChecks: jsonb('health_checks')
      .$type<{ name: string; ok: boolean; message?: string }[]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    dockerVersion: text('docker_version'),
    imageStore: text('image_store'),
    composeVersion: text('compose_version'),
    contentPackageVersion: text('content_package_version'),
    edgeScriptsVersion: text('edge_scripts_version'),
    composeSha256: text('compose_sha256'),
    diskFreeBytes: bigint('disk_free_bytes', { mode: 'number' }),
    details: jsonb('details')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    idempotencyKey: text('idempotency_key').notNull(),
    // The site's own clock (may be wrong); receivedAt is the server's.
    reportedAt: timestamptz('reported_at').notNull(),
    receivedAt: timestamptz('received_at').notNull().defaultNow(),
    actorUserId: userRef('actor_user_id'),
  },
  (t) => [
    uniqueIndex('site_reports_idem_uq').on(t.siteId, t.idempotencyKey),
    index('site_reports_site_at_idx').on(t.siteId, t.receivedAt),
  ],
);

export const coordinatorSites = pgTable(
  'coordinator_sites',
  {
    orgId: orgId(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    siteId: siteId(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.siteId] }), index('coordinator_sites_site_idx').on(t.siteId)],
);
