import { and, eq, gt, lt, or, type AnyColumn, type SQL } from 'drizzle-orm';
import { encodeCursor, type Cursor } from '../lib/cursor.ts';

/**
 * One page of a keyset-paginated list. `fetch(take)` runs the query with `.limit(take)`: it is asked
 * for one row more than the page, so whether another page follows is known without counting, and
 * the next cursor is made from the page's last row.
 *
 * @example
 * const { rows, nextCursor } = await keysetPage(
 *   input.limit,
 *   (take) => ctx.db.select().from(t).where(afterCursor(c, t.createdAt, t.id, 'desc')).orderBy(…).limit(take),
 *   (last) => timeCursor(last.createdAt, last.id),
 * );
 */
export async function keysetPage<R>(
  limit: number,
  fetch: (take: number) => PromiseLike<R[]>,
  cursorOf: (last: R) => string,
): Promise<{ rows: R[]; nextCursor: string | null }> {
  const rows = await fetch(limit + 1);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { rows: page, nextCursor: rows.length > limit && last !== undefined ? cursorOf(last) : null };
}

/**
 * The rows after a (time, id) cursor in `order`: a later (asc) or earlier (desc) time, or the same
 * time and a greater (asc) or smaller (desc) id. Written as `or`/`and` of plain comparisons, which
 * the (time, id) indexes serve. No cursor: no condition.
 */
export function afterCursor(
  cursor: Cursor | null,
  time: AnyColumn,
  id: AnyColumn,
  order: 'asc' | 'desc',
): SQL | undefined {
  if (!cursor) return undefined;
  const beyond = order === 'asc' ? gt : lt;
  const t = new Date(cursor.t);
  return or(beyond(time, t), and(eq(time, t), beyond(id, cursor.id)));
}

/** The cursor after a row of a (time, id)-ordered list. */
export const timeCursor = (time: Date, id: string) => encodeCursor({ t: time.toISOString(), id });
