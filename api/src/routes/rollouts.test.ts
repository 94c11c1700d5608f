import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeRelease, makeSite, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import {
  auditLog,
  coordinatorSites,
  releases,
  rollouts,
  rolloutTargets,
  rolloutWaves,
} from '../db/schema/index.ts';

const hours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();

describe.each(TEST_DRIVERS)('rollout plans on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  /** An organisation with 40 sites over two regions (every fourth site offline), 1.0.0 reported everywhere and 2.0.0 published. */
  async function fleet() {
    const org = await makeOrg(h.db);
    const api = withToken(t.app, (await makeApiToken(h.db, org.id, 'operator')).token);
    const r1 = await makeRelease(h.db, org.id, '1.0.0');
    const r2 = await makeRelease(h.db, org.id, '2.0.0');
    const list = [];
    for (let i = 0; i < 40; i++) {
      list.push(
        await makeSite(h.db, org.id, {
          code: `S${String(i).padStart(3, '0')}`,
          region: i < 20 ? 'North' : 'South',
          district: i % 2 ? 'Odd' : 'Even',
          tags: i < 4 ? ['pilot'] : [],
          connectivity: i % 4 === 3 ? 'offline' : 'online',
          bandwidthKbps: 1000,
          reportedReleaseId: i === 39 ? r2.id : r1.id,
          reportedVersion: i === 39 ? '2.0.0' : '1.0.0',
        }),
      );
    }
    return { org, api, r1, r2, sites: list };
  }

  const plan = (releaseId: string, over: Record<string, unknown> = {}) => ({
    name: 'Spring update',
    releaseId,
    seed: 'fixed',
    policy: {
      successThreshold: 0.9,
      failureThreshold: 0.2,
      autoAdvance: true,
      soakMinutes: 0,
      bundleLeadHours: 0,
      buildBundles: false,
    },
    waves: [
      { name: 'Pilot', selector: { tags: ['pilot'] }, startsAt: hours(1), deadlineAt: hours(48) },
      {
        name: 'North',
        selector: { regions: ['North'], share: 50 },
        startsAt: hours(2),
        deadlineAt: hours(72),
      },
      { name: 'Everyone else', selector: { all: true }, startsAt: hours(3), deadlineAt: hours(96) },
    ],
    ...over,
  });

  describe('happy', () => {
    it("should list coordinators' open problems at the rollout's sites first, in the CSV too, until resolved", async () => {
      const { org, r2, sites } = await fleet();
      const admin = withToken(t.app, (await makeApiToken(h.db, org.id, 'admin')).token);
      const created = await admin('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) });
      expect(created.status).toBe(201);
      const { id } = await created.json();
      const report = async (siteId: string, description: string) => {
        const res = await admin(`/api/v1/sites/${siteId}/problems`, {
          method: 'POST',
          json: { description, errorText: 'install: the disk is full' },
        });
        expect(res.status).toBe(201);
        return (await res.json()).id as string;
      };
      const problemId = await report(sites[0]!.id, 'The install stopped half way');
      // A site of another organisation's making is not in this rollout: its problem is not listed.
      const stranger = await makeOrg(h.db);
      const strangerSite = await makeSite(h.db, stranger.id, { code: 'S000' });
      const strangerApi = withToken(t.app, (await makeApiToken(h.db, stranger.id, 'admin')).token);
      expect(
        (
          await strangerApi(`/api/v1/sites/${strangerSite.id}/problems`, {
            method: 'POST',
            json: { description: 'Elsewhere' },
          })
        ).status,
      ).toBe(201);

      const list = await (await admin(`/api/v1/rollouts/${id}/attention?limit=50`)).json();
      const problems = list.items.filter((i: { kind: string }) => i.kind === 'problem_report');
      expect(
        problems.map((i: { code: string; reason: string; wave: string }) => [i.code, i.reason, i.wave]),
      ).toEqual([['S000', 'The install stopped half way — install: the disk is full', 'Pilot']]);
      expect(list.items[0].kind).toBe('problem_report');
      const csv = await (await admin(`/api/v1/rollouts/${id}/attention.csv`)).text();
      expect(csv.split('\r\n').filter((l) => l.includes('problem_report'))).toHaveLength(1);
      expect(csv).toContain('The install stopped half way — install: the disk is full');

      expect(
        (await admin(`/api/v1/sites/${sites[0]!.id}/problems/${problemId}/resolve`, { method: 'POST' }))
          .status,
      ).toBe(200);
      const after = await (await admin(`/api/v1/rollouts/${id}/attention?limit=50`)).json();
      expect(after.items.filter((i: { kind: string }) => i.kind === 'problem_report')).toEqual([]);
    });

    it('should preview sites per wave, bytes, sneakernet sites and sites already on the release, writing nothing', async () => {
      const { api, r2, org } = await fleet();
      const res = await api('/api/v1/rollouts/preview', { method: 'POST', json: plan(r2.id) });
      expect(res.status).toBe(200);
      const p = await res.json();
      expect(p.seed).toBe('fixed');
      expect(p.waves.map((w: { sites: number }) => w.sites)).toEqual([4, 8, 28]);
      expect(p.unassigned).toBe(0);
      // S003 is offline in the pilot; S039 already runs 2.0.0 and falls in the last wave.
      expect(p.waves[0].sneakernet).toBe(1);
      expect(p.waves[2].alreadyOnRelease).toBe(1);
      expect(p.waves[0].sample.map((s: { code: string }) => s.code)).toEqual([
        'S000',
        'S001',
        'S002',
        'S003',
      ]);
      expect((await h.db.select({ n: count() }).from(rollouts).where(eq(rollouts.orgId, org.id)))[0]!.n).toBe(
        0,
      );
    });

    it('should pick the same share of sites for the same seed, in preview and create alike', async () => {
      const { api, r2 } = await fleet();
      const a = await (await api('/api/v1/rollouts/preview', { method: 'POST', json: plan(r2.id) })).json();
      const b = await (await api('/api/v1/rollouts/preview', { method: 'POST', json: plan(r2.id) })).json();
      expect(a.waves[1].sample).toEqual(b.waves[1].sample);
      const other = await (
        await api('/api/v1/rollouts/preview', { method: 'POST', json: plan(r2.id, { seed: 'another' }) })
      ).json();
      expect(other.waves[1].sample.map((s: { code: string }) => s.code)).not.toEqual(
        a.waves[1].sample.map((s: { code: string }) => s.code),
      );
      const created = await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) });
      expect(created.status).toBe(201);
      const { id } = await created.json();
      const [north] = await h.db
        .select()
        .from(rolloutWaves)
        .where(eq(rolloutWaves.rolloutId, id))
        .orderBy(rolloutWaves.position)
        .offset(1)
        .limit(1);
      const codes = (
        await h.db
          .select({ siteId: rolloutTargets.siteId })
          .from(rolloutTargets)
          .where(eq(rolloutTargets.waveId, north!.id))
      ).length;
      expect(codes).toBe(a.waves[1].sites);
    });

    it('should create and schedule a rollout, reserve its sites, audit it, and show it with counts', async () => {
      const { api, r2 } = await fleet();
      const res = await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) });
      expect(res.status).toBe(201);
      const created = await res.json();
      expect(created).toMatchObject({ state: 'scheduled', sites: 40, seed: 'fixed' });
      const view = await (await api(`/api/v1/rollouts/${created.id}`)).json();
      expect(view.waves.map((w: { state: string; total: number }) => [w.state, w.total])).toEqual([
        ['pending', 4],
        ['pending', 8],
        ['pending', 28],
      ]);
      expect(view.totals).toMatchObject({ pending: 39, skipped: 1 });
      expect(view.timeline[0]).toMatchObject({ kind: 'created', to: 'scheduled', actor: 'token' });
      const active = await h.db
        .select({ n: count() })
        .from(rolloutTargets)
        .where(eq(rolloutTargets.rolloutId, created.id));
      expect(active[0]!.n).toBe(40);
      const audit = await h.db.select().from(auditLog).where(eq(auditLog.objectId, created.id));
      expect(audit.map((a) => a.action)).toContain('rollout.created');
      const list = await (await api('/api/v1/rollouts')).json();
      expect(list.items[0]).toMatchObject({
        id: created.id,
        total: 40,
        waves: 3,
        release: { version: '2.0.0' },
      });
    });

    it('should save a draft that reserves nothing, and schedule it later', async () => {
      const { api, r2 } = await fleet();
      const d = await (
        await api('/api/v1/rollouts', { method: 'POST', json: { ...plan(r2.id), draft: true } })
      ).json();
      expect(d.state).toBe('draft');
      // The same sites can be planned again while the first is only a draft.
      const other = await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) });
      expect(other.status).toBe(201);
      await expectEnvelope(
        await api(`/api/v1/rollouts/${d.id}/schedule`, { method: 'POST' }),
        409,
        'CONFLICT',
      );
      await api(`/api/v1/rollouts/${(await other.json()).id}/cancel`, { method: 'POST' });
      const s = await api(`/api/v1/rollouts/${d.id}/schedule`, { method: 'POST' });
      expect(s.status).toBe(200);
      expect((await s.json()).state).toBe('scheduled');
    });
  });

  describe('error', () => {
    async function expectNothingWritten() {
      expect((await h.db.select({ n: count() }).from(rollouts))[0]!.n).toBe(before);
    }
    let before = 0;
    const snapshot = async () => {
      before = (await h.db.select({ n: count() }).from(rollouts))[0]!.n;
    };

    it('should refuse a site that another live rollout holds, naming it, and write nothing', async () => {
      const { api, r2 } = await fleet();
      expect(
        (
          await api('/api/v1/rollouts', {
            method: 'POST',
            json: plan(r2.id, { waves: [plan(r2.id).waves[0]] }),
          })
        ).status,
      ).toBe(201);
      await snapshot();
      const e = await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) }),
        409,
        'CONFLICT',
      );
      expect(e.details).toHaveLength(4);
      expect((e.details as { siteCode: string }[]).map((d) => d.siteCode).sort()).toEqual([
        'S000',
        'S001',
        'S002',
        'S003',
      ]);
      await expectNothingWritten();
      const p = await (await api('/api/v1/rollouts/preview', { method: 'POST', json: plan(r2.id) })).json();
      expect(p.conflictCount).toBe(4);
    });

    it('should refuse a wave with an empty selector', async () => {
      const { api, r2 } = await fleet();
      await snapshot();
      const body = plan(r2.id, {
        waves: [{ name: 'Nothing', selector: {}, startsAt: hours(1), deadlineAt: hours(5) }],
      });
      const e = await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: body }),
        400,
        'VALIDATION_FAILED',
      );
      expect(JSON.stringify(e.details)).toContain('A wave needs a selector');
      await expectNothingWritten();
    });

    it('should refuse a wave whose selector matches no remaining site', async () => {
      const { api, r2 } = await fleet();
      await snapshot();
      const body = plan(r2.id, {
        waves: [
          { name: 'All', selector: { all: true }, startsAt: hours(1), deadlineAt: hours(5) },
          { name: 'Nobody left', selector: { regions: ['North'] }, startsAt: hours(2), deadlineAt: hours(9) },
        ],
      });
      const e = await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: body }),
        422,
        'WAVE_EMPTY',
      );
      expect(e.message).toContain('Nobody left');
      await expectNothingWritten();
    });

    it('should refuse a start in the past, a deadline before the start, and waves out of order', async () => {
      const { api, r2 } = await fleet();
      await snapshot();
      const past = plan(r2.id, {
        waves: [{ name: 'Late', selector: { all: true }, startsAt: hours(-2), deadlineAt: hours(5) }],
      });
      const e = await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: past }),
        400,
        'VALIDATION_FAILED',
      );
      expect(e.details).toEqual([{ path: 'waves.0.startsAt', message: 'The start is in the past.' }]);
      const backwards = plan(r2.id, {
        waves: [{ name: 'X', selector: { all: true }, startsAt: hours(5), deadlineAt: hours(1) }],
      });
      await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: backwards }),
        400,
        'VALIDATION_FAILED',
      );
      const order = plan(r2.id, {
        waves: [
          { name: 'A', selector: { tags: ['pilot'] }, startsAt: hours(5), deadlineAt: hours(9) },
          { name: 'B', selector: { all: true }, startsAt: hours(1), deadlineAt: hours(9) },
        ],
      });
      await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: order }),
        400,
        'VALIDATION_FAILED',
      );
      await expectNothingWritten();
    });

    it('should refuse an unpublished or revoked release', async () => {
      const { org, api } = await fleet();
      await snapshot();
      const draft = await makeRelease(h.db, org.id, '3.0.0', 'draft');
      await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: plan(draft.id) }),
        409,
        'RELEASE_NOT_PUBLISHED',
      );
      const revoked = await makeRelease(h.db, org.id, '3.1.0');
      await h.db
        .update(releases)
        .set({ state: 'revoked', revokedAt: new Date() })
        .where(eq(releases.id, revoked.id));
      await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: plan(revoked.id) }),
        409,
        'RELEASE_REVOKED',
      );
      await expectEnvelope(
        await api('/api/v1/rollouts/preview', { method: 'POST', json: plan(revoked.id) }),
        409,
        'RELEASE_REVOKED',
      );
      await expectNothingWritten();
    });

    it('should refuse thresholds out of range, a share above 100 % and unknown fields', async () => {
      const { api, r2 } = await fleet();
      await snapshot();
      for (const policy of [
        { successThreshold: 1.5 },
        { successThreshold: 0 },
        { failureThreshold: -0.1 },
        { soakMinutes: -1 },
      ]) {
        const e = await expectEnvelope(
          await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id, { policy }) }),
          400,
          'VALIDATION_FAILED',
        );
        expect((e.details as { path: string }[])[0]!.path).toMatch(/^policy\./);
      }
      const share = plan(r2.id, {
        waves: [{ name: 'A', selector: { all: true, share: 150 }, startsAt: hours(1), deadlineAt: hours(9) }],
      });
      await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: share }),
        400,
        'VALIDATION_FAILED',
      );
      await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: { ...plan(r2.id), bogus: 1 } }),
        400,
        'VALIDATION_FAILED',
      );
      await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id, { waves: [] }) }),
        400,
        'VALIDATION_FAILED',
      );
      await expectNothingWritten();
    });

    it('should refuse unknown site codes by name', async () => {
      const { api, r2 } = await fleet();
      const body = plan(r2.id, {
        waves: [
          {
            name: 'A',
            selector: { siteCodes: ['S000', 'NOPE-1'] },
            startsAt: hours(1),
            deadlineAt: hours(9),
          },
        ],
      });
      const e = await expectEnvelope(
        await api('/api/v1/rollouts', { method: 'POST', json: body }),
        422,
        'UNKNOWN_SITES',
      );
      expect(e.message).toContain('NOPE-1');
    });

    it('should refuse a control that does not fit the state', async () => {
      const { api, r2 } = await fleet();
      const { id } = await (await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) })).json();
      await expectEnvelope(
        await api(`/api/v1/rollouts/${id}/resume`, { method: 'POST' }),
        409,
        'INVALID_STATE',
      );
      expect((await api(`/api/v1/rollouts/${id}/cancel`, { method: 'POST' })).status).toBe(200);
      await expectEnvelope(
        await api(`/api/v1/rollouts/${id}/pause`, { method: 'POST' }),
        409,
        'INVALID_STATE',
      );
      await expectEnvelope(
        await api(`/api/v1/rollouts/${id}/pause`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"reason": 5}',
        }),
        400,
        'VALIDATION_FAILED',
      );
    });
  });

  describe('security', () => {
    it("should answer 404 for another organisation's rollout, release and webhook, and never leak its sites", async () => {
      const mine = await fleet();
      const theirs = await fleet();
      const { id } = await (
        await theirs.api('/api/v1/rollouts', { method: 'POST', json: plan(theirs.r2.id) })
      ).json();
      for (const path of [
        `/api/v1/rollouts/${id}`,
        `/api/v1/rollouts/${id}/attention`,
        `/api/v1/rollouts/${id}/attention.csv`,
      ]) {
        await expectEnvelope(await mine.api(path), 404, 'NOT_FOUND');
      }
      for (const ctl of ['pause', 'resume', 'advance', 'cancel', 'retry', 'rollback']) {
        await expectEnvelope(
          await mine.api(`/api/v1/rollouts/${id}/${ctl}`, { method: 'POST' }),
          404,
          'NOT_FOUND',
        );
      }
      await expectEnvelope(
        await mine.api(`/api/v1/rollouts/${id}/exclude`, {
          method: 'POST',
          json: { siteId: theirs.sites[0]!.id },
        }),
        404,
        'NOT_FOUND',
      );
      // Planning with their release is a 404, and their site codes are unknown here.
      await expectEnvelope(
        await mine.api('/api/v1/rollouts/preview', { method: 'POST', json: plan(theirs.r2.id) }),
        404,
        'NOT_FOUND',
      );
      expect((await (await mine.api('/api/v1/rollouts')).json()).items).toEqual([]);
      const st = (await h.db.select().from(rollouts).where(eq(rollouts.id, id)))[0]!.state;
      expect(st).toBe('scheduled');
    });

    it('should let viewers read but not plan or control, and keep coordinators out', async () => {
      const { org, r2, api } = await fleet();
      const { id } = await (await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) })).json();
      const viewer = withToken(t.app, (await makeApiToken(h.db, org.id, 'viewer')).token);
      expect((await viewer(`/api/v1/rollouts/${id}`)).status).toBe(200);
      await expectEnvelope(
        await viewer('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) }),
        403,
        'FORBIDDEN',
      );
      await expectEnvelope(
        await viewer('/api/v1/rollouts/preview', { method: 'POST', json: plan(r2.id) }),
        403,
        'FORBIDDEN',
      );
      await expectEnvelope(
        await viewer(`/api/v1/rollouts/${id}/pause`, { method: 'POST' }),
        403,
        'FORBIDDEN',
      );
      const coord = await makeUser(h.db, org.id, 'coordinator');
      const browser = await signIn(t.app, coord.email, coord.password);
      await expectEnvelope(await browser.request(`/api/v1/rollouts/${id}`), 403, 'FORBIDDEN');
      await expectEnvelope(await viewer('/api/v1/webhooks'), 403, 'FORBIDDEN');
      await expectEnvelope(await api('/api/v1/webhooks'), 403, 'FORBIDDEN');
      await expectEnvelope(await t.app.request(`/api/v1/rollouts/${id}`), 401, 'UNAUTHENTICATED');
    });

    it("should tell anyone who sees a site its live rollout's wave and deadline, coordinators of that site only", async () => {
      const { org, r2, api, sites } = await fleet();
      const { id } = await (await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) })).json();
      const [pilot] = await h.db
        .select()
        .from(rolloutWaves)
        .where(eq(rolloutWaves.rolloutId, id))
        .orderBy(rolloutWaves.position)
        .limit(1);
      const coord = await makeUser(h.db, org.id, 'coordinator');
      await h.db.insert(coordinatorSites).values({ orgId: org.id, userId: coord.id, siteId: sites[0]!.id });
      const browser = await signIn(t.app, coord.email, coord.password);
      const mine = await browser.request(`/api/v1/sites/${sites[0]!.id}/rollout`);
      expect(mine.status).toBe(200);
      expect((await mine.json()).rollout).toEqual({
        name: 'Spring update',
        state: 'scheduled',
        version: '2.0.0',
        wave: 'Pilot',
        waveState: 'pending',
        startsAt: pilot!.startsAt.toISOString(),
        deadlineAt: pilot!.deadlineAt.toISOString(),
        targetState: 'pending',
      });
      // Not the coordinator's site, another organisation's site: not found, whatever it is in.
      await expectEnvelope(await browser.request(`/api/v1/sites/${sites[1]!.id}/rollout`), 404, 'NOT_FOUND');
      const other = await makeOrg(h.db);
      const otherApi = withToken(t.app, (await makeApiToken(h.db, other.id, 'admin')).token);
      await expectEnvelope(await otherApi(`/api/v1/sites/${sites[0]!.id}/rollout`), 404, 'NOT_FOUND');
      await expectEnvelope(
        await t.app.request(`/api/v1/sites/${sites[0]!.id}/rollout`),
        401,
        'UNAUTHENTICATED',
      );
      await expectEnvelope(await api('/api/v1/sites/not-a-uuid/rollout'), 400, 'VALIDATION_FAILED');
      // A site in no live rollout: null. Cancelled, the rollout no longer holds its sites.
      const lone = await makeSite(h.db, org.id, { code: 'LONE' });
      expect((await (await api(`/api/v1/sites/${lone.id}/rollout`)).json()).rollout).toBeNull();
      expect((await api(`/api/v1/rollouts/${id}/cancel`, { method: 'POST' })).status).toBe(200);
      expect(
        (await (await browser.request(`/api/v1/sites/${sites[0]!.id}/rollout`)).json()).rollout,
      ).toBeNull();
    });

    it('should keep webhooks and blackout dates to their organisation, and refuse bad ones', async () => {
      const a = await makeOrg(h.db);
      const b = await makeOrg(h.db);
      const adminA = withToken(t.app, (await makeApiToken(h.db, a.id, 'admin')).token);
      const adminB = withToken(t.app, (await makeApiToken(h.db, b.id, 'admin')).token);
      const created = await adminA('/api/v1/webhooks', {
        method: 'POST',
        json: { url: 'https://hooks.example.org/outpost', events: ['wave.failed'] },
      });
      expect(created.status).toBe(201);
      const hook = await created.json();
      expect(hook.secret).toMatch(/^whsec_/);
      expect(JSON.stringify(await (await adminA('/api/v1/webhooks')).json())).not.toContain(hook.secret);
      await expectEnvelope(await adminB(`/api/v1/webhooks/${hook.id}/deliveries`), 404, 'NOT_FOUND');
      await expectEnvelope(
        await adminB(`/api/v1/webhooks/${hook.id}`, { method: 'DELETE' }),
        404,
        'NOT_FOUND',
      );
      expect((await (await adminB('/api/v1/webhooks')).json()).items).toEqual([]);
      await expectEnvelope(
        await adminA('/api/v1/webhooks', {
          method: 'POST',
          json: { url: 'http://plain.example.org/', events: ['wave.failed'] },
        }),
        400,
        'VALIDATION_FAILED',
      );
      await expectEnvelope(
        await adminA('/api/v1/webhooks', {
          method: 'POST',
          json: { url: 'https://user:pw@example.org/', events: ['wave.failed'] },
        }),
        400,
        'VALIDATION_FAILED',
      );
      await expectEnvelope(
        await adminA('/api/v1/webhooks', {
          method: 'POST',
          json: { url: 'https://example.org/', events: [] },
        }),
        400,
        'VALIDATION_FAILED',
      );
      for (const url of [
        'https://169.254.169.254/latest',
        'https://127.0.0.1:8787/',
        'https://10.1.2.3/',
        'https://localhost/',
      ]) {
        await expectEnvelope(
          await adminA('/api/v1/webhooks', { method: 'POST', json: { url, events: ['wave.failed'] } }),
          400,
          'VALIDATION_FAILED',
        );
      }
      await expectEnvelope(
        await adminA('/api/v1/webhooks', {
          method: 'POST',
          json: { url: 'https://example.org/', events: ['nope'] },
        }),
        400,
        'VALIDATION_FAILED',
      );

      const day = await adminA('/api/v1/blackout-dates', {
        method: 'POST',
        json: { startsOn: '2027-01-01', endsOn: '2027-01-02', reason: 'New year' },
      });
      expect(day.status).toBe(201);
      const { id: dayId } = await day.json();
      await expectEnvelope(
        await adminB(`/api/v1/blackout-dates/${dayId}`, { method: 'DELETE' }),
        404,
        'NOT_FOUND',
      );
      expect((await (await adminB('/api/v1/blackout-dates')).json()).items).toEqual([]);
      await expectEnvelope(
        await adminA('/api/v1/blackout-dates', {
          method: 'POST',
          json: { startsOn: '2027-01-05', endsOn: '2027-01-01' },
        }),
        400,
        'VALIDATION_FAILED',
      );
      await expectEnvelope(
        await adminA('/api/v1/blackout-dates', {
          method: 'POST',
          json: { startsOn: 'tomorrow', endsOn: '2027-01-01' },
        }),
        400,
        'VALIDATION_FAILED',
      );
      expect((await adminA(`/api/v1/blackout-dates/${dayId}`, { method: 'DELETE' })).status).toBe(204);
    });

    it('should demand the CSRF token of a signed-in person on a control', async () => {
      const { org, r2, api } = await fleet();
      const { id } = await (await api('/api/v1/rollouts', { method: 'POST', json: plan(r2.id) })).json();
      const admin = await makeUser(h.db, org.id, 'admin');
      const browser = await signIn(t.app, admin.email, admin.password);
      await expectEnvelope(
        await t.app.request(`/api/v1/rollouts/${id}/pause`, {
          method: 'POST',
          headers: { cookie: browser.cookie },
        }),
        403,
        'CSRF_FAILED',
      );
      expect((await browser.request(`/api/v1/rollouts/${id}/pause`, { method: 'POST' })).status).toBe(200);
    });
  });
});
