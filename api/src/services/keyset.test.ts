import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { and, asc, desc, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeOrg } from '../test/factories.ts';
import type { DbHandle } from '../db/types.ts';
import { auditLog } from '../db/schema/index.ts';
import { decodeCursor } from '../lib/cursor.ts';
import { afterCursor, keysetPage, timeCursor } from './keyset.ts';

describe('keysetPage', () => {
  const source = Array.from({ length: 5 }, (_, i) => i);
  const from = (start: number) => async (take: number) => source.slice(start, start + take);

  it('should ask for one row more than the page and give a cursor from the last row kept', async () => {
    const asked: number[] = [];
    const page = await keysetPage(
      2,
      (take) => {
        asked.push(take);
        return from(0)(take);
      },
      (last) => `after-${last}`,
    );
    expect(asked).toEqual([3]);
    expect(page).toEqual({ rows: [0, 1], nextCursor: 'after-1' });
  });

  it('should give no cursor when the last page is exactly full or short', async () => {
    expect(await keysetPage(2, from(3), String)).toEqual({ rows: [3, 4], nextCursor: null });
    expect(await keysetPage(2, from(4), String)).toEqual({ rows: [4], nextCursor: null });
    expect(await keysetPage(2, from(5), String)).toEqual({ rows: [], nextCursor: null });
  });
});

describe.each(TEST_DRIVERS)('afterCursor on %s', (driver) => {
  let h: DbHandle;
  let orgId: string;
  beforeAll(async () => {
    h = await createTestDb(driver);
    orgId = (await makeOrg(h.db)).id;
    // Three rows share one instant: the id must break the tie, or a page boundary there loses or repeats rows.
    const at = (m: number) => new Date(Date.UTC(2026, 0, 1, 0, m));
    await h.db
      .insert(auditLog)
      .values(
        [0, 1, 1, 1, 2, 3, 3].map((m, i) => ({ orgId, action: `test.${i}`, objectType: 'test', at: at(m) })),
      );
  });
  afterAll(async () => {
    await h.close();
  });

  for (const order of ['asc', 'desc'] as const) {
    it(`should walk every row once, in (time, id) ${order} order, two at a time`, async () => {
      const dir = order === 'asc' ? asc : desc;
      const all = await h.db
        .select({ id: auditLog.id })
        .from(auditLog)
        .where(eq(auditLog.orgId, orgId))
        .orderBy(dir(auditLog.at), dir(auditLog.id));
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const after = cursor ? decodeCursor(cursor) : null;
        const page: { rows: { id: string; at: Date }[]; nextCursor: string | null } = await keysetPage(
          2,
          (take) =>
            h.db
              .select({ id: auditLog.id, at: auditLog.at })
              .from(auditLog)
              .where(and(eq(auditLog.orgId, orgId), afterCursor(after, auditLog.at, auditLog.id, order)))
              .orderBy(dir(auditLog.at), dir(auditLog.id))
              .limit(take),
          (last) => timeCursor(last.at, last.id),
        );
        seen.push(...page.rows.map((r) => r.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      expect(seen).toEqual(all.map((r) => r.id));
      expect(pages).toBe(4);
    });
  }

  it('should add no condition without a cursor', () => {
    expect(afterCursor(null, auditLog.at, auditLog.id, 'desc')).toBeUndefined();
  });
});
