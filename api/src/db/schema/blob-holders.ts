import { pgTable, text, primaryKey } from 'drizzle-orm/pg-core';
import { createdAt, orgId } from './columns.ts';

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
    orgId: orgId(),
    sha256: text('sha256').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.sha256] })],
);
