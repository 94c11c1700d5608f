import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { eq, inArray, sql } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../../test/db.ts';
import { makeTestApp } from '../../test/app.ts';
import { makeApiToken, makeOrg, makeRelease } from '../../test/factories.ts';
import { withToken } from '../../test/http.ts';
import type { DbHandle } from '../../db/types.ts';
import {
  bundles,
  organizations,
  rollouts,
  rolloutTargets,
  rolloutWaves,
  sites,
  type TargetState,
} from '../../db/schema/index.ts';
import { sha256Hex } from '../../lib/crypto.ts';
import type { ServiceCtx } from '../context.ts';
import { createRollout } from './create.ts';
import { cancelRollout, excludeSite, retryTargets, scheduleDraft } from './controls.ts';
import { runSchedulerPass } from './scheduler.ts';
import { getRollout, listRollouts } from './view.ts';
import { emptyCounts, TARGET_STATES, type TargetCounts } from './machine.ts';

// rollout_wave_state_counts (migration 0018) is kept by statement-level triggers on rollout_targets.
// These tests move targets in every way the product does — created, check-ins, receipts, the
// scheduler, retry, exclude, cancel, schedule, a site, a rollout and an organisation deleted — and
// random multi-row statements, and after each step compare the table with a recount of the targets.

const KEY = sql.raw('rollout_id, wave_id, state, healthy');
const HOUR = 3_600_000;

function rowsOf<T>(r: unknown): T[] {
  return (r as { rows: T[] }).rows;
}

describe.each(TEST_DRIVERS)('rollout_wave_state_counts on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h, { checkinsPerMinute: 1000 });
  });
  afterAll(async () => {
    await h?.close();
  });

  /** The kept counts and a recount of the targets, row for row; no empty rows are left behind. */
  async function expectCountsEqualRecount() {
    const kept = rowsOf<Record<string, unknown>>(
      await h.db.execute(sql`select ${KEY}, n from rollout_wave_state_counts order by ${KEY}`),
    );
    const recount = rowsOf<Record<string, unknown>>(
      await h.db.execute(
        sql`select ${KEY}, count(*)::int as n from rollout_targets group by ${KEY} order by ${KEY}`,
      ),
    );
    expect(kept).toEqual(recount);
    expect(kept.every((r) => (r.n as number) > 0)).toBe(true);
  }

  /** What the progress view shows per wave, against the targets counted in JavaScript. */
  async function expectViewCounts(ctx: ServiceCtx, rolloutId: string) {
    const targets = await h.db
      .select({ waveId: rolloutTargets.waveId, state: rolloutTargets.state, healthy: rolloutTargets.healthy })
      .from(rolloutTargets)
      .where(eq(rolloutTargets.rolloutId, rolloutId));
    const want = new Map<string, TargetCounts>();
    for (const x of targets) {
      const c = want.get(x.waveId) ?? emptyCounts();
      c[x.state]++;
      if (x.state === 'installed' && x.healthy) c.healthy++;
      want.set(x.waveId, c);
    }
    const v = await getRollout({ ctx, input: { id: rolloutId } });
    for (const w of v.waves)
      expect({ wave: w.name, counts: w.counts }).toEqual({
        wave: w.name,
        counts: want.get(w.id) ?? emptyCounts(),
      });
    expect(v.total).toBe(targets.length);
    const listed = (await listRollouts({ ctx })).find((r) => r.id === rolloutId)!;
    expect(listed.total).toBe(targets.length);
  }

  it('should equal a recount of the targets as a rollout is created, reported on, scheduled, retried, excluded, cancelled and deleted', async () => {
    const org = await makeOrg(h.db);
    const ctx: ServiceCtx = {
      db: h.db,
      orgId: org.id,
      actor: { userId: null, tokenId: null, role: 'owner' },
    };
    const operator = withToken(t.app, (await makeApiToken(h.db, org.id, 'operator')).token);
    const r1 = await makeRelease(h.db, org.id, '1.0.0');
    const r2 = await makeRelease(h.db, org.id, '2.0.0');
    const now = new Date();
    const at = (hours: number) => new Date(now.getTime() + hours * HOUR);
    // 30 sites: North 0–11 (wave 1), South 12–29 (wave 2); sites 10 and 11 are already on 2.0.0 (skipped).
    const tokens = Array.from({ length: 30 }, (_, i) => `opd_counts_${i}_${crypto.randomUUID()}`);
    const made = await h.db
      .insert(sites)
      .values(
        await Promise.all(
          tokens.map(async (tok, i) => ({
            orgId: org.id,
            code: `K${String(i).padStart(3, '0')}`,
            name: `Clinic ${i}`,
            region: i < 12 ? 'North' : 'South',
            timezone: 'UTC',
            reportedVersion: i === 10 || i === 11 ? '2.0.0' : '1.0.0',
            reportedReleaseId: i === 10 || i === 11 ? r2.id : r1.id,
            reportedAt: new Date(now.getTime() - HOUR),
            deviceTokenHash: await sha256Hex(tok),
          })),
        ),
      )
      .returning({ id: sites.id, code: sites.code });
    const ids = made.sort((a, b) => a.code.localeCompare(b.code)).map((s) => s.id);
    const policy = {
      successThreshold: 1,
      failureThreshold: 1,
      autoAdvance: false,
      soakMinutes: 0,
      bundleLeadHours: 0,
      buildBundles: false,
    };
    const { id } = await createRollout({
      ctx,
      now,
      input: {
        name: 'Two regions',
        releaseId: r2.id,
        draft: false,
        policy,
        waves: [
          {
            name: 'North',
            selector: { regions: ['North'] },
            startsAt: at(0).toISOString(),
            deadlineAt: at(24).toISOString(),
          },
          {
            name: 'South',
            selector: { all: true },
            startsAt: at(48).toISOString(),
            deadlineAt: at(72).toISOString(),
          },
        ],
      },
    });
    await expectCountsEqualRecount();
    await expectViewCounts(ctx, id);
    const skipped = await h.db
      .select()
      .from(rolloutTargets)
      .where(sql`${rolloutTargets.rolloutId} = ${id} and ${rolloutTargets.state} = 'skipped'`);
    expect(skipped).toHaveLength(2);

    // The scheduler opens the first wave; a ready bundle moves a target to bundled on the next pass.
    await runSchedulerPass(h.db, { now: at(0.1) });
    await h.db
      .insert(bundles)
      .values({ orgId: org.id, siteId: ids[9]!, releaseId: r2.id, state: 'ready', readyAt: at(0.1) });
    await runSchedulerPass(h.db, { now: at(0.2) });
    expect(
      (await h.db.select().from(rolloutTargets).where(eq(rolloutTargets.siteId, ids[9]!)))[0]!.state,
    ).toBe('bundled');
    await expectCountsEqualRecount();

    // Check-ins, several in one group: installing, healthy, degraded, failed; then the same again
    // (heartbeats that move nothing), and a site of the wave not yet open (moves nothing either).
    const checkin = (i: number, version: string, status: string) =>
      Promise.resolve(
        t.app.request('/api/v1/checkin', {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens[i]}`, 'content-type': 'application/json' },
          body: JSON.stringify({ version, status, idempotencyKey: `k-${i}-${crypto.randomUUID()}` }),
        }),
      ).then((r) => expect(r.status).toBe(200));
    const group = async () =>
      Promise.all([
        checkin(0, '1.0.0', 'installing'),
        checkin(1, '1.0.0', 'installing'),
        checkin(2, '2.0.0', 'healthy'),
        checkin(3, '2.0.0', 'healthy'),
        checkin(4, '2.0.0', 'degraded'),
        checkin(5, '2.0.0', 'failed'),
        checkin(6, '2.0.0', 'healthy'),
        checkin(20, '2.0.0', 'healthy'),
      ]);
    await group();
    await expectCountsEqualRecount();
    const before = rowsOf(
      await h.db.execute(sql`select ${KEY}, n from rollout_wave_state_counts order by ${KEY}`),
    );
    await group();
    expect(
      rowsOf(await h.db.execute(sql`select ${KEY}, n from rollout_wave_state_counts order by ${KEY}`)),
    ).toEqual(before);
    // A degraded site turns healthy (same state, other health); an installed one fails.
    await Promise.all([checkin(4, '2.0.0', 'healthy'), checkin(6, '2.0.0', 'failed')]);
    await expectCountsEqualRecount();
    await expectViewCounts(ctx, id);

    // Receipts recorded by hand: installed, rolled back, degraded.
    for (const [i, status] of [
      [0, 'installed'],
      [3, 'rolled_back'],
      [7, 'degraded'],
    ] as const) {
      const res = await operator(`/api/v1/sites/${ids[i]}/reports`, {
        method: 'POST',
        json: { version: '2.0.0', status, at: new Date().toISOString() },
      });
      expect(res.status, await res.clone().text()).toBe(201);
    }
    await expectCountsEqualRecount();
    await expectViewCounts(ctx, id);

    // The deadline passes: waiting sites go overdue (and the failed ones queue their webhooks).
    await runSchedulerPass(h.db, { now: at(25) });
    expect(
      (await h.db.select().from(rolloutTargets).where(eq(rolloutTargets.siteId, ids[8]!)))[0]!.state,
    ).toBe('overdue');
    await expectCountsEqualRecount();

    // People: retry two, retry all that are left, exclude one.
    const retried = await retryTargets({ ctx, input: { id, siteIds: [ids[5]!, ids[8]!] }, now: at(26) });
    expect(retried.retried).toBe(2);
    await expectCountsEqualRecount();
    await retryTargets({ ctx, input: { id }, now: at(26) });
    await expectCountsEqualRecount();
    await excludeSite({ ctx, input: { id, siteId: ids[9]! }, now: at(26) });
    await expectCountsEqualRecount();
    await expectViewCounts(ctx, id);

    // A site deleted takes its target with it.
    await h.db.delete(sites).where(inArray(sites.id, [ids[1]!, ids[25]!]));
    await expectCountsEqualRecount();
    await expectViewCounts(ctx, id);

    // Cancelled: every target leaves the live set (an update of 28 rows that changes no count).
    const kept = rowsOf(
      await h.db.execute(sql`select ${KEY}, n from rollout_wave_state_counts order by ${KEY}`),
    );
    await cancelRollout({ ctx, input: { id }, now: at(27) });
    expect(
      rowsOf(await h.db.execute(sql`select ${KEY}, n from rollout_wave_state_counts order by ${KEY}`)),
    ).toEqual(kept);

    // A draft over the same sites, then scheduled (its targets become live), then its wave opens.
    const draft = await createRollout({
      ctx,
      now: at(27),
      input: {
        name: 'Again',
        releaseId: r2.id,
        draft: true,
        policy,
        waves: [
          {
            name: 'All',
            selector: { all: true },
            startsAt: at(28).toISOString(),
            deadlineAt: at(90).toISOString(),
          },
        ],
      },
    });
    await expectCountsEqualRecount();
    await scheduleDraft({ ctx, input: { id: draft.id }, now: at(27) });
    await runSchedulerPass(h.db, { now: at(28) });
    await Promise.all([checkin(12, '2.0.0', 'healthy'), checkin(13, '1.0.0', 'installing')]);
    await expectCountsEqualRecount();
    await expectViewCounts(ctx, draft.id);

    // The first rollout deleted: its counts go with it, the other's stay.
    await h.db.delete(rollouts).where(eq(rollouts.id, id));
    expect(
      rowsOf<{ n: number }>(
        await h.db.execute(
          sql`select count(*)::int as n from rollout_wave_state_counts where rollout_id = ${id}`,
        ),
      )[0]!.n,
    ).toBe(0);
    await expectCountsEqualRecount();

    // The organisation deleted: rollouts and sites both cascade to the targets.
    await h.db.delete(organizations).where(eq(organizations.id, org.id));
    expect(
      rowsOf<{ n: number }>(
        await h.db.execute(
          sql`select count(*)::int as n from rollout_wave_state_counts where rollout_id = ${draft.id}`,
        ),
      )[0]!.n,
    ).toBe(0);
    await expectCountsEqualRecount();
  }, 120_000);

  // Any sequence of multi-row statements on the targets — moves between states, health and waves,
  // deletions, insertions, sites deleted — leaves the counts equal to a recount.
  it('should equal a recount after random sequences of multi-row inserts, updates and deletes', async () => {
    const org = await makeOrg(h.db);
    const ctx: ServiceCtx = {
      db: h.db,
      orgId: org.id,
      actor: { userId: null, tokenId: null, role: 'owner' },
    };
    const rel = await makeRelease(h.db, org.id, '3.0.0');
    const SITES = 12;
    const subset = fc.uniqueArray(fc.integer({ min: 0, max: SITES - 1 }), { minLength: 1, maxLength: SITES });
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('move' as const),
        on: subset,
        state: fc.constantFrom(...TARGET_STATES),
        healthy: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('wave' as const), on: subset, wave: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ kind: fc.constant('delete' as const), on: subset }),
      fc.record({ kind: fc.constant('insert' as const), on: subset, wave: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ kind: fc.constant('site' as const), on: subset }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), async (ops) => {
        run++;
        const siteIds = (
          await h.db
            .insert(sites)
            .values(
              Array.from({ length: SITES }, (_, i) => ({
                orgId: org.id,
                code: `P${run}-${i}`,
                name: `P ${i}`,
              })),
            )
            .returning({ id: sites.id })
        ).map((s) => s.id);
        const { id } = await createRollout({
          ctx,
          input: {
            name: `Property ${run}`,
            releaseId: rel.id,
            draft: true,
            policy: {
              successThreshold: 1,
              failureThreshold: 1,
              autoAdvance: false,
              soakMinutes: 0,
              bundleLeadHours: 0,
              buildBundles: false,
            },
            waves: [
              {
                name: 'A',
                selector: { siteCodes: [`P${run}-0`, `P${run}-1`, `P${run}-2`] },
                startsAt: new Date(Date.now() + HOUR).toISOString(),
                deadlineAt: new Date(Date.now() + 9 * HOUR).toISOString(),
              },
              {
                name: 'B',
                selector: { all: true },
                startsAt: new Date(Date.now() + 10 * HOUR).toISOString(),
                deadlineAt: new Date(Date.now() + 20 * HOUR).toISOString(),
              },
            ],
          },
        });
        const waveIds = (
          await h.db
            .select({ id: rolloutWaves.id })
            .from(rolloutWaves)
            .where(eq(rolloutWaves.rolloutId, id))
            .orderBy(rolloutWaves.position)
        ).map((w) => w.id);
        await expectCountsEqualRecount();
        for (const o of ops) {
          const on = o.on.map((i) => siteIds[i]!);
          const targetsOn = sql`${rolloutTargets.rolloutId} = ${id} and ${inArray(rolloutTargets.siteId, on)}`;
          if (o.kind === 'move')
            await h.db
              .update(rolloutTargets)
              .set({ state: o.state as TargetState, healthy: o.healthy })
              .where(targetsOn);
          else if (o.kind === 'wave')
            await h.db.update(rolloutTargets).set({ waveId: waveIds[o.wave]! }).where(targetsOn);
          else if (o.kind === 'delete') await h.db.delete(rolloutTargets).where(targetsOn);
          else if (o.kind === 'site') await h.db.delete(sites).where(inArray(sites.id, on));
          else
            await h.db.execute(sql`insert into rollout_targets (org_id, rollout_id, wave_id, site_id)
              select ${org.id}, ${id}, ${waveIds[o.wave]!}, sites.id from sites
              where ${inArray(sites.id, on)}
                and not exists (select 1 from rollout_targets t where t.rollout_id = ${id} and t.site_id = sites.id)`);
          await expectCountsEqualRecount();
        }
      }),
      { numRuns: 15 },
    );
  }, 120_000);
});
