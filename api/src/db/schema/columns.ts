import { timestamp, uuid } from 'drizzle-orm/pg-core';
import { organizations, users } from './accounts.ts';
import { sites } from './sites.ts';

// Column builders that most tables share, so that a convention (the precision of a time, what
// happens to a row when its organisation, site or person goes) is written once. Each call makes a
// new builder: drizzle binds a builder to the one table it is declared in.
// Function declarations, not arrow constants: the tables they reference import this file back, and
// a hoisted function is defined whichever of the two files is evaluated first.

/** An entity's own key: a random uuid made by the database. */
export function id() {
  return uuid('id').primaryKey().defaultRandom();
}

/** Every point in time in the schema: `timestamp(3) with time zone`. */
export function timestamptz(name: string) {
  return timestamp(name, { withTimezone: true, precision: 3 });
}

export function createdAt() {
  return timestamptz('created_at').notNull().defaultNow();
}

export function updatedAt() {
  return timestamptz('updated_at').notNull().defaultNow();
}

/** The organisation a row belongs to (tenant scoping filters on it); the row goes with it. */
export function orgId() {
  return uuid('org_id')
    .notNull()
    .references(() => organizations.id, { onDelete: 'cascade' });
}

/** The site a row belongs to; the row goes with it. */
export function siteId() {
  return uuid('site_id')
    .notNull()
    .references(() => sites.id, { onDelete: 'cascade' });
}

/** A person named on a row (who created, requested, resolved it): the row outlives their account. */
export function userRef(name: string) {
  return uuid(name).references(() => users.id, { onDelete: 'set null' });
}
