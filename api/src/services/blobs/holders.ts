import { and, eq, inArray } from 'drizzle-orm';
import { blobHolders } from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';

/**
 * Tenant ownership of shared blobs (see schema/blob-holders.ts). Deduplication keeps one copy of the
 * bytes; these rows say which organisations may use that copy. Nothing here is ever shown to another
 * organisation: whether someone else holds a blob must not be learnable.
 */
const hex = (digestOrHex: string) => digestOrHex.replace(/^sha256:/, '');

/** The blobs among `digests` (`sha256:…` or hex) that the organisation already holds, as given. */
export async function heldBlobs(db: Db, orgId: string, digests: string[]): Promise<Set<string>> {
  if (digests.length === 0) return new Set();
  const byHex = new Map(digests.map((d) => [hex(d), d]));
  const rows = await db
    .select({ sha256: blobHolders.sha256 })
    .from(blobHolders)
    .where(and(eq(blobHolders.orgId, orgId), inArray(blobHolders.sha256, [...byHex.keys()])));
  return new Set(rows.map((r) => byHex.get(r.sha256)!));
}

/** Records that the organisation proved it can read these blobs (fetched and verified, or uploaded). */
export async function recordHolders(db: Db, rows: { orgId: string; digest: string }[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insert(blobHolders)
    .values(rows.map((r) => ({ orgId: r.orgId, sha256: hex(r.digest) })))
    .onConflictDoNothing();
}
