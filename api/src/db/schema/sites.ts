import { sql } from 'drizzle-orm';
import {
  pgTable, uuid, text, timestamp, pgEnum, uniqueIndex, index, integer, doublePrecision, primaryKey,
} from 'drizzle-orm/pg-core';
import { organizations, users } from './accounts.ts';

export const connectivityEnum = pgEnum('connectivity', ['online', 'intermittent', 'offline']);

export const sites = pgTable('sites', {
  id: uuid('id').primaryKey().defaultRandom(),
  orgId: uuid('org_id').notNull().references(() => organizations.id, { onDelete: 'cascade' }),
  code: text('code').notNull(),
  name: text('name').notNull(),
  region: text('region'),
  district: text('district'),
  facilityType: text('facility_type'),
  tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
  connectivity: connectivityEnum('connectivity').notNull().default('online'),
  bandwidthKbps: integer('bandwidth_kbps'),
  timezone: text('timezone').notNull().default('UTC'),
  maintenanceWindow: text('maintenance_window'),
  latitude: doublePrecision('latitude'),
  longitude: doublePrecision('longitude'),
  contactName: text('contact_name'),
  contactPhone: text('contact_phone'),
  contactEmail: text('contact_email'),
  deviceTokenHash: text('device_token_hash'),
  // Denormalised from site_reports / rollouts so that fleet dashboards read one table.
  reportedVersion: text('reported_version'),
  reportedReleaseId: uuid('reported_release_id'),
  reportedStatus: text('reported_status'),
  reportedAt: timestamp('reported_at', { withTimezone: true, precision: 3 }),
  targetReleaseId: uuid('target_release_id'),
  archivedAt: timestamp('archived_at', { withTimezone: true, precision: 3 }),
  createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
}, (t) => [
  uniqueIndex('sites_org_code_uq').on(t.orgId, t.code),
  index('sites_org_region_idx').on(t.orgId, t.region, t.district),
  uniqueIndex('sites_device_token_uq').on(t.deviceTokenHash),
]);

export const coordinatorSites = pgTable('coordinator_sites', {
  orgId: uuid('org_id').notNull().references(() => organizations.id, { onDelete: 'cascade' }),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  siteId: uuid('site_id').notNull().references(() => sites.id, { onDelete: 'cascade' }),
}, (t) => [primaryKey({ columns: [t.userId, t.siteId] }), index('coordinator_sites_site_idx').on(t.siteId)]);

