import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { and, count, eq, inArray } from 'drizzle-orm';
import { createTestDb } from '../../test/db.ts';
import { makeTestApp } from '../../test/app.ts';
import { makeApiToken, makeOrg, makeRelease } from '../../test/factories.ts';
import { withToken } from '../../test/http.ts';
import type { DbHandle } from '../../db/types.ts';
import { rolloutEvents, rolloutTargets, sites, webhookDeliveries } from '../../db/schema/index.ts';
import { sha256Hex } from '../../lib/crypto.ts';
import { encodeReceiptCode } from '../receipts/code.ts';
import { runSchedulerPass, type PassResult } from './scheduler.ts';
import { createWebhook } from './webhooks.ts';

/**
 * A 1,000-site fleet rolled out in three waves through the real API on PostgreSQL, driven by
 * simulated check-ins and receipt codes. The scheduler's clock is injected (no sleeps), and every
 * tick runs two scheduler passes at once, as two servers would.
 */
describe('a simulated 1,000-site rollout on PostgreSQL', () => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb('pg');
    t = await makeTestApp(h, { checkinsPerMinute: 1000 });
  });
  afterAll(async () => {
    await h.close();
  });

  const N = 1000;
  const code = (i: number) => `S${String(i).padStart(4, '0')}`;
  // Pilot S0000–S0019 (tag), North S0020–S0419, South the rest; every 8th southern site is offline and stays silent.
  const region = (i: number) => (i < 420 ? 'North' : 'South');
  const silentSouth = (i: number) => i >= 420 && i % 8 === 0;

  it('should advance on a healthy pilot, pause on failures, hold silent sites until their deadline, honour blackouts and windows, and roll back exactly the installed sites', async () => {
    const org = await makeOrg(h.db);
    const api = withToken(t.app, (await makeApiToken(h.db, org.id, 'operator')).token);
    const r1 = await makeRelease(h.db, org.id, '1.0.0');
    const r2 = await makeRelease(h.db, org.id, '2.0.0');
    const real = new Date();
    const hourNow = real.getUTCHours();
    const pad = (n: number) => String(n).padStart(2, '0');
    // S0001's window is now; S0002's is twelve hours away (it is not asked to install yet).
    const windowOf = (i: number) =>
      i === 1
        ? `daily ${pad(hourNow)}:00-${pad((hourNow + 1) % 24)}:00`
        : i === 2
          ? `daily ${pad((hourNow + 12) % 24)}:00-${pad((hourNow + 13) % 24)}:00`
          : null;
    const tokens: string[] = [];
    const rows = [];
    for (let i = 0; i < N; i++) {
      tokens.push(`opd_sim_${i}_${crypto.randomUUID()}`);
      rows.push({
        orgId: org.id,
        code: code(i),
        name: `Clinic ${i}`,
        region: region(i),
        tags: i < 20 ? ['pilot'] : [],
        connectivity: (silentSouth(i) || i === 19 ? 'offline' : 'online') as 'offline' | 'online',
        bandwidthKbps: 512,
        maintenanceWindow: windowOf(i),
        timezone: 'UTC',
        reportedVersion: '1.0.0',
        reportedReleaseId: r1.id,
        reportedAt: new Date(real.getTime() - 3_600_000),
        deviceTokenHash: await sha256Hex(tokens[i]!),
      });
    }
    const inserted = await h.db.insert(sites).values(rows).returning({ id: sites.id, code: sites.code });
    const siteId = new Map(inserted.map((s) => [s.code, s.id]));
    // S0018 confirms by receipt code: its device token is issued through the API, which creates its receipt key.
    const issued = await (
      await api(`/api/v1/sites/${siteId.get(code(18))}/device-token`, { method: 'POST' })
    ).json();
    tokens[18] = issued.token;
    const hook = await createWebhook({
      ctx: { db: h.db, orgId: org.id, actor: { userId: null, tokenId: null, role: 'owner' } },
      box: t.secretBox,
      allowHttp: true,
      input: {
        url: 'http://127.0.0.1:9/hook',
        events: [
          'wave.opened',
          'wave.succeeded',
          'wave.failed',
          'site.failed',
          'rollout.paused',
          'rollout.completed',
        ],
      },
    });

    const T0 = new Date(Math.ceil((real.getTime() + 3_600_000) / 60_000) * 60_000);
    const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);
    const created = await api('/api/v1/rollouts', {
      method: 'POST',
      json: {
        name: 'Country-wide 2.0.0',
        releaseId: r2.id,
        seed: 'sim',
        policy: {
          successThreshold: 0.9,
          failureThreshold: 0.2,
          autoAdvance: true,
          soakMinutes: 30,
          bundleLeadHours: 0,
          buildBundles: false,
        },
        waves: [
          {
            name: 'Pilot',
            selector: { tags: ['pilot'] },
            startsAt: at(0).toISOString(),
            deadlineAt: at(24 * 60).toISOString(),
          },
          {
            name: 'North',
            selector: { regions: ['North'] },
            startsAt: at(30).toISOString(),
            deadlineAt: at(2 * 24 * 60).toISOString(),
          },
          {
            name: 'Rest of the country',
            selector: { all: true },
            startsAt: at(120).toISOString(),
            deadlineAt: at(3 * 24 * 60).toISOString(),
          },
        ],
      },
    });
    expect(created.status).toBe(201);
    const { id } = await created.json();

    const ticks: PassResult[][] = [];
    /** Two schedulers at once, at the same instant. */
    const tick = async (when: Date) => {
      const both = await Promise.all([
        runSchedulerPass(h.db, { now: when }),
        runSchedulerPass(h.db, { now: when }),
      ]);
      ticks.push(both);
      return both;
    };
    const view = async () => (await api(`/api/v1/rollouts/${id}`)).json();
    const checkin = (i: number, version: string, status: string) =>
      Promise.resolve(
        t.app.request('/api/v1/checkin', {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens[i]}`, 'content-type': 'application/json' },
          body: JSON.stringify({ version, status, idempotencyKey: `sim-${i}-${crypto.randomUUID()}` }),
        }),
      ).then(async (r) => {
        expect(r.status).toBe(200);
        return r.json();
      });
    const many = async (ids: number[], version: string, status: string) => {
      for (let k = 0; k < ids.length; k += 100)
        await Promise.all(ids.slice(k, k + 100).map((i) => checkin(i, version, status)));
    };
    const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => a + k);

    // Before the start nothing opens, and no site is asked to install.
    await tick(at(-1));
    expect((await view()).waves[0].state).toBe('pending');
    expect((await checkin(0, '1.0.0', 'healthy')).targetVersion).toBeNull();

    // The pilot opens on time; its sites are asked (in their maintenance window), the others are not.
    const [a, b] = await tick(at(0));
    expect([...a!.transitions, ...b!.transitions].filter((x) => x.kind === 'wave.opened')).toHaveLength(1);
    expect(await checkin(0, '1.0.0', 'healthy')).toMatchObject({ targetVersion: '2.0.0', installHold: null });
    expect(await checkin(1, '1.0.0', 'healthy')).toMatchObject({ targetVersion: '2.0.0', installHold: null });
    expect(await checkin(2, '1.0.0', 'healthy')).toMatchObject({
      targetVersion: null,
      installHold: 'maintenance_window',
    });
    expect((await checkin(20, '1.0.0', 'healthy')).targetVersion).toBeNull();

    // 18 pilot sites install and report healthy; S0018 confirms by receipt code; S0019 (offline) stays silent.
    await checkin(3, '1.0.0', 'installing');
    await many(range(0, 18), '2.0.0', 'healthy');
    const row = await h.db
      .select({ sealed: sites.receiptKeySealed })
      .from(sites)
      .where(eq(sites.id, siteId.get(code(18))!));
    const key = await t.secretBox.open(row[0]!.sealed!, `receipt:${siteId.get(code(18))}`);
    const receipt = await encodeReceiptCode({
      key,
      siteId: siteId.get(code(18))!,
      version: '2.0.0',
      outcome: 'installed',
      at: new Date(),
    });
    expect(
      (
        await api('/api/v1/receipts', {
          method: 'POST',
          json: { siteId: siteId.get(code(18)), code: receipt },
        })
      ).status,
    ).toBe(201);
    let v = await view();
    expect(v.waves[0].counts).toMatchObject({ installed: 19, healthy: 19, pending: 1 });

    // 95 % healthy, but the soak time (30 min) has not passed: the pilot waits.
    await tick(at(10));
    expect((await view()).waves[0].state).toBe('open');

    // A blackout today: the pilot succeeds, but the next wave does not open, and waiting sites are not asked.
    const today = real.toISOString().slice(0, 10);
    const blackout = await (
      await api('/api/v1/blackout-dates', {
        method: 'POST',
        json: { startsOn: today, endsOn: at(40).toISOString().slice(0, 10), reason: 'National holiday' },
      })
    ).json();
    await tick(at(31));
    v = await view();
    expect(v.waves.map((w: { state: string }) => w.state)).toEqual(['succeeded', 'pending', 'pending']);
    expect(await checkin(19, '1.0.0', 'healthy')).toMatchObject({
      targetVersion: null,
      installHold: 'blackout',
    });
    expect((await api(`/api/v1/blackout-dates/${blackout.id}`, { method: 'DELETE' })).status).toBe(204);
    await tick(at(32));
    expect((await view()).waves[1].state).toBe('open');

    // North: 285 healthy, 95 failed (23.75 % ≥ 20 %), 20 not yet reported: the wave fails and the rollout pauses by itself.
    await many(range(20, 305), '2.0.0', 'healthy');
    await many(range(305, 400), '2.0.0', 'failed');
    await tick(at(40));
    v = await view();
    expect(v.state).toBe('paused');
    expect(v.waves[1]).toMatchObject({
      state: 'failed',
      counts: { installed: 285, failed: 95, pending: 20 },
    });
    expect(v.pausedReason).toContain('failure threshold');
    // Paused: a site that has not started is not asked; a failed one waits for a retry.
    expect(await checkin(410, '1.0.0', 'healthy')).toMatchObject({
      targetVersion: null,
      installHold: 'rollout_paused',
    });
    expect(await checkin(310, '1.0.0', 'healthy')).toMatchObject({
      targetVersion: null,
      installHold: 'awaiting_retry',
    });
    // The pause holds: a later tick does not move anything.
    await tick(at(45));
    expect((await view()).waves[2].state).toBe('pending');

    // Someone retries the failed sites and resumes; they install; the soak passes; North succeeds.
    const retried = await (await api(`/api/v1/rollouts/${id}/retry`, { method: 'POST' })).json();
    expect(retried.retried).toBe(95);
    expect((await api(`/api/v1/rollouts/${id}/resume`, { method: 'POST' })).status).toBe(200);
    await many(range(305, 400), '2.0.0', 'healthy');
    await tick(at(70));
    v = await view();
    expect(v.waves.map((w: { state: string }) => w.state)).toEqual(['succeeded', 'succeeded', 'pending']);

    // The last wave opens at its start; online sites install; offline ones stay silent: pending, not failed, until the deadline.
    await tick(at(120));
    const south = range(420, N);
    await many(
      south.filter((i) => !silentSouth(i)),
      '2.0.0',
      'healthy',
    );
    const silent = south.filter(silentSouth);
    await tick(at(24 * 60));
    v = await view();
    expect(v.waves[2]).toMatchObject({
      state: 'open',
      counts: { installed: 580 - silent.length, pending: silent.length, overdue: 0 },
    });
    const attention = await (await api(`/api/v1/rollouts/${id}/attention?limit=500`)).json();
    // Silent means no report for 3 days; these reported at the start, so only the pilot's silent site is listed as overdue later.
    expect(attention.items.every((x: { kind: string }) => x.kind !== 'failed')).toBe(true);

    // Past the deadline: the silent sites are overdue, the wave fails and the rollout pauses.
    await tick(at(3 * 24 * 60 + 1));
    v = await view();
    expect(v.state).toBe('paused');
    expect(v.waves[2]).toMatchObject({ state: 'failed', counts: { overdue: silent.length } });
    const csv = await (await api(`/api/v1/rollouts/${id}/attention.csv`)).text();
    expect(csv.trim().split('\r\n')).toHaveLength(1 + silent.length);
    expect(csv).toContain(`${code(silent[0]!)},Clinic ${silent[0]},South`);

    // A silent site reports late (it installed from a USB stick): overdue → installed.
    await checkin(silent[0]!, '2.0.0', 'healthy');
    expect((await view()).waves[2].counts.overdue).toBe(silent.length - 1);

    // The team decides the rest is good enough: advance now completes the rollout and frees every site.
    expect((await (await api(`/api/v1/rollouts/${id}/advance`, { method: 'POST' })).json()).state).toBe(
      'completed',
    );
    expect(
      (
        await h.db
          .select({ n: count() })
          .from(rolloutTargets)
          .where(and(eq(rolloutTargets.rolloutId, id), eq(rolloutTargets.active, true)))
      )[0]!.n,
    ).toBe(0);

    // Roll back: a new rollout of 1.0.0 to exactly the sites that installed 2.0.0.
    const installed = (
      await h.db
        .select({ siteId: rolloutTargets.siteId })
        .from(rolloutTargets)
        .where(and(eq(rolloutTargets.rolloutId, id), eq(rolloutTargets.state, 'installed')))
    )
      .map((x) => x.siteId)
      .sort();
    expect(installed).toHaveLength(19 + 380 + (580 - silent.length) + 1);
    const rb = await api(`/api/v1/rollouts/${id}/rollback`, { method: 'POST' });
    expect(rb.status).toBe(201);
    const back = await rb.json();
    expect(back).toMatchObject({ releaseId: r1.id, rollbackOf: id, sites: installed.length });
    const targeted = (
      await h.db
        .select({ siteId: rolloutTargets.siteId })
        .from(rolloutTargets)
        .where(eq(rolloutTargets.rolloutId, back.id))
    )
      .map((x) => x.siteId)
      .sort();
    expect(targeted).toEqual(installed);
    await tick(new Date(Date.now() + 60_000));
    const moved = await h.db
      .select({ n: count() })
      .from(sites)
      .where(and(inArray(sites.id, installed.slice(0, 500)), eq(sites.targetReleaseId, r1.id)));
    expect(moved[0]!.n).toBe(500);

    // Two schedulers ran at every tick: no wave was opened or closed twice.
    const events = await h.db.select().from(rolloutEvents).where(eq(rolloutEvents.rolloutId, id));
    const opened = events.filter((e) => e.kind === 'wave.opened').map((e) => e.waveId);
    expect(opened).toHaveLength(3);
    expect(new Set(opened).size).toBe(3);
    expect(events.filter((e) => e.kind === 'wave.succeeded')).toHaveLength(3);
    expect(events.filter((e) => e.kind === 'wave.failed')).toHaveLength(2);
    expect(events.filter((e) => e.kind === 'completed')).toHaveLength(1);
    for (const [x, y] of ticks) {
      const kinds = [...x!.transitions, ...y!.transitions].map((tr) => `${tr.kind}:${tr.waveId ?? ''}`);
      expect(new Set(kinds).size).toBe(kinds.length);
    }

    // Webhooks were queued for each wave opening and closing, the pauses, the completion, and each failed site once.
    const deliveries = await h.db
      .select({ event: webhookDeliveries.event })
      .from(webhookDeliveries)
      .where(eq(webhookDeliveries.webhookId, hook.id));
    const tally = (e: string) => deliveries.filter((d) => d.event === e).length;
    expect(tally('wave.opened')).toBe(4); // three waves, and the rollback's one
    expect(tally('wave.failed')).toBe(2);
    expect(tally('site.failed')).toBe(95);
    expect(tally('rollout.completed')).toBe(1);
  }, 180_000);
});
