import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../../test/db.ts';
import { makeOrg, makeRelease } from '../../test/factories.ts';
import type { DbHandle } from '../../db/types.ts';
import { rolloutTargets, rolloutWaves, sites } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { createRollout } from './create.ts';
import { listAttention, SILENT_DAYS } from './attention.ts';

// A page of the attention list is picked in passes (walks of the next 2,000 and 16,000 sites in code
// order, then a join past them); here a fleet larger than the walk, with attention sparse and dense in
// places, is paged through and checked against the list worked out in JavaScript from every target.
describe.each(TEST_DRIVERS)('rollout attention list on %s', (driver) => {
  let h: DbHandle;
  beforeAll(async () => {
    h = await createTestDb(driver);
  });
  afterAll(async () => {
    await h.close();
  });

  it('should list the same sites in the same order as the whole list sorted by code, across pages', async () => {
    const org = await makeOrg(h.db);
    const r2 = await makeRelease(h.db, org.id, '2.0.0');
    const now = new Date();
    const old = new Date(now.getTime() - (SILENT_DAYS + 2) * 86_400_000);
    const recent = new Date(now.getTime() - 3_600_000);
    // 2,600 sites: silent ones every 97th site, and a dense run of silent ones near the end.
    const rows = Array.from({ length: 2600 }, (_, i) => ({
      orgId: org.id,
      code: `C${String(i).padStart(5, '0')}`,
      name: `Clinic ${i}`,
      reportedAt: i % 97 === 0 ? (i % 2 ? null : old) : i >= 2400 && i < 2440 ? old : recent,
    }));
    for (let i = 0; i < rows.length; i += 500) await h.db.insert(sites).values(rows.slice(i, i + 500));
    const ctx: ServiceCtx = {
      db: h.db,
      orgId: org.id,
      actor: { userId: null, tokenId: null, role: 'owner' },
    };
    const at = (hours: number) => new Date(now.getTime() + hours * 3_600_000).toISOString();
    const { id } = await createRollout({
      ctx,
      now,
      input: {
        name: 'Everyone',
        releaseId: r2.id,
        draft: false,
        policy: {
          successThreshold: 0.95,
          failureThreshold: 0.5,
          autoAdvance: true,
          soakMinutes: 0,
          bundleLeadHours: 0,
          buildBundles: false,
        },
        waves: [{ name: 'All', selector: { all: true }, startsAt: at(0), deadlineAt: at(48) }],
      },
    });
    await h.db
      .update(rolloutWaves)
      .set({ state: 'open', openedAt: now })
      .where(eq(rolloutWaves.rolloutId, id));
    // A few failures and overdue sites among those that report, on both sides of the 2,000th site.
    await h.db
      .execute(sql`update rollout_targets t set state = case when s.code in ('C00005', 'C02100') then 'failed'
        else 'overdue' end from sites s
      where s.id = t.site_id and t.rollout_id = ${id} and s.code in ('C00005', 'C01999', 'C02000', 'C02100', 'C02599')`);
    // A site that has installed is never listed, silent or not.
    await h.db.execute(sql`update rollout_targets t set state = 'installed' from sites s
      where s.id = t.site_id and t.rollout_id = ${id} and s.code = 'C00097'`);

    const targets = await h.db
      .select({ code: sites.code, state: rolloutTargets.state, reportedAt: sites.reportedAt })
      .from(rolloutTargets)
      .innerJoin(sites, eq(sites.id, rolloutTargets.siteId))
      .where(eq(rolloutTargets.rolloutId, id));
    const silentBefore = now.getTime() - SILENT_DAYS * 86_400_000;
    const want = targets
      .filter(
        (t) =>
          ['failed', 'rolled_back', 'overdue'].includes(t.state) ||
          (['pending', 'bundled', 'downloaded', 'installing'].includes(t.state) &&
            (t.reportedAt === null || t.reportedAt.getTime() < silentBefore)),
      )
      .map((t) => `${t.code} ${t.state}`)
      .sort();
    expect(want.length).toBeGreaterThan(60);
    expect(want).toContain('C02000 overdue');
    expect(want).not.toContain('C00097 installed');

    // The default walks (2,000 sites, then the rest of this fleet), and short ones that leave the
    // sites past 1,200 to the set-based pass.
    for (const [walks, limit] of [
      [undefined, 7],
      [undefined, 25],
      [undefined, 200],
      [[500, 700], 7],
      [[500, 700], 200],
    ] as const) {
      const got: string[] = [];
      let after: string | undefined;
      for (;;) {
        const p = await listAttention({ ctx, now, input: { id, limit, after }, walks });
        got.push(...p.items.map((i) => `${i.code} ${i.targetState}`));
        expect(p.items.length).toBeLessThanOrEqual(limit);
        if (p.nextAfter === null) break;
        expect(p.items).toHaveLength(limit);
        after = p.nextAfter;
      }
      expect(got).toEqual(want);
    }
    const first = await listAttention({ ctx, now, input: { id, limit: 3 } });
    expect(first.items.map((i) => [i.code, i.kind])).toEqual([
      ['C00000', 'silent'],
      ['C00005', 'failed'],
      ['C00194', 'silent'],
    ]);
  });
});
