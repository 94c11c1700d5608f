import { pgTable, uuid, text, timestamp, primaryKey } from 'drizzle-orm/pg-core';
import { organizations } from './accounts.ts';

/**
 * Which organisations have proved they can read a content-addressed blob: fetched it from their own
 * registry with its digest verified, or uploaded its bytes. The bytes are stored once for everyone
 * (`blobs/sha256/<hex>`), but a blob enters an organisation's archive from the store only when that
 * organisation holds it; otherwise it is fetched and verified from the organisation's registry first.
 * `sha256` is the hex digest, as in `artifacts`.
 */
export const blobHolders = pgTable(
  'blob_holders',
  {
    orgId: uuid('org_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    sha256: text('sha256').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.sha256] })],
);
