import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../../test/db.ts';
import { makeTestApp } from '../../test/app.ts';
import { makeOrg, makeRelease, makeSite } from '../../test/factories.ts';
import type { DbHandle } from '../../db/types.ts';
import { bundleDownloads, bundles, rolloutTargets, webhookDeliveries } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { createRollout } from './create.ts';
import { runSchedulerPass } from './scheduler.ts';
import { createWebhook, deliverWebhooks, enqueueWebhooks, signPayload } from './webhooks.ts';
import { getRollout } from './view.ts';

describe.each(TEST_DRIVERS)('rollout scheduler and webhooks on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  const ctxOf = (orgId: string): ServiceCtx => ({
    db: h.db,
    orgId,
    actor: { userId: null, tokenId: null, role: 'owner' },
  });

  it('should move targets to bundled when their bundle is built and to downloaded when a download completes', async () => {
    const org = await makeOrg(h.db);
    await makeRelease(h.db, org.id, '1.0.0');
    const r2 = await makeRelease(h.db, org.id, '2.0.0');
    const [a, b, c] = [
      await makeSite(h.db, org.id, { region: 'X' }),
      await makeSite(h.db, org.id, { region: 'X' }),
      await makeSite(h.db, org.id, { region: 'X' }),
    ];
    const now = new Date();
    const { id } = await createRollout({
      ctx: ctxOf(org.id),
      now,
      input: {
        name: 'b',
        releaseId: r2.id,
        draft: false,
        policy: {
          successThreshold: 1,
          failureThreshold: 1,
          autoAdvance: true,
          soakMinutes: 0,
          bundleLeadHours: 0,
          buildBundles: false,
        },
        waves: [
          {
            name: 'W',
            selector: { regions: ['X'] },
            startsAt: now.toISOString(),
            deadlineAt: new Date(now.getTime() + 86_400_000).toISOString(),
          },
        ],
      },
    });
    const [ba] = await h.db
      .insert(bundles)
      .values({ orgId: org.id, siteId: a.id, releaseId: r2.id, state: 'ready' })
      .returning();
    const [bb] = await h.db
      .insert(bundles)
      .values({ orgId: org.id, siteId: b.id, releaseId: r2.id, state: 'ready' })
      .returning();
    await h.db.insert(bundles).values({ orgId: org.id, siteId: c.id, releaseId: r2.id, state: 'building' });
    await h.db
      .insert(bundleDownloads)
      .values({ orgId: org.id, bundleId: bb!.id, siteId: b.id, kind: 'stitched', bytes: 10, complete: true });
    // An unfinished download does not count.
    await h.db
      .insert(bundleDownloads)
      .values({ orgId: org.id, bundleId: ba!.id, siteId: a.id, kind: 'stitched', bytes: 5, complete: false });
    await runSchedulerPass(h.db, { now: new Date(now.getTime() + 1000) });
    const states = new Map(
      (await h.db.select().from(rolloutTargets).where(eq(rolloutTargets.rolloutId, id))).map((x) => [
        x.siteId,
        x.state,
      ]),
    );
    expect([states.get(a.id), states.get(b.id), states.get(c.id)]).toEqual([
      'bundled',
      'downloaded',
      'pending',
    ]);
    const v = await getRollout({ ctx: ctxOf(org.id), input: { id } });
    expect(v.waves[0]!.state).toBe('open');
  });

  it('should note on the wave when its release cannot be bundled, ahead of the start by the lead time', async () => {
    const org = await makeOrg(h.db);
    const r2 = await makeRelease(h.db, org.id, '2.0.0');
    await makeSite(h.db, org.id, { region: 'Y' });
    const now = new Date();
    const start = new Date(now.getTime() + 48 * 3_600_000);
    const { id } = await createRollout({
      ctx: ctxOf(org.id),
      now,
      input: {
        name: 'lead',
        releaseId: r2.id,
        draft: false,
        policy: {
          successThreshold: 1,
          failureThreshold: 1,
          autoAdvance: true,
          soakMinutes: 0,
          bundleLeadHours: 24,
          buildBundles: true,
        },
        waves: [
          {
            name: 'W',
            selector: { regions: ['Y'] },
            startsAt: start.toISOString(),
            deadlineAt: new Date(start.getTime() + 86_400_000).toISOString(),
          },
        ],
      },
    });
    await runSchedulerPass(h.db, { now: new Date(start.getTime() - 25 * 3_600_000) });
    expect((await getRollout({ ctx: ctxOf(org.id), input: { id } })).waves[0]!.state).toBe('pending');
    await runSchedulerPass(h.db, { now: new Date(start.getTime() - 23 * 3_600_000) });
    const w = (await getRollout({ ctx: ctxOf(org.id), input: { id } })).waves[0]!;
    expect(w.state).toBe('preparing');
    expect(w.bundleNote).toContain('nothing to bundle');
  });

  it('should sign webhook deliveries with a timestamped HMAC, retry with backoff, and give up after the last retry', async () => {
    const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    let answer = 500;
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.statusCode = answer;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const org = await makeOrg(h.db);
      const port = (server.address() as AddressInfo).port;
      const hook = await createWebhook({
        ctx: ctxOf(org.id),
        box: t.secretBox,
        allowHttp: true,
        input: { url: `http://127.0.0.1:${port}/hook`, events: ['wave.opened'] },
      });
      expect(hook.secret).toMatch(/^whsec_/);
      const now = new Date();
      await enqueueWebhooks(ctxOf(org.id), 'wave.opened', { wave: 'Pilot' }, now);
      await enqueueWebhooks(ctxOf(org.id), 'site.failed', { siteCode: 'X' }, now); // not subscribed: not queued
      const [d] = await h.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.webhookId, hook.id));
      expect(d).toBeDefined();

      expect(await deliverWebhooks(h.db, { box: t.secretBox, now })).toBe(1);
      const first = received[0]!;
      const sig = String(first.headers['x-outpost-signature']);
      const ts = Number(/t=(\d+)/.exec(sig)![1]);
      expect(sig).toBe(await signPayload(hook.secret, ts, first.body));
      expect(JSON.parse(first.body)).toMatchObject({
        id: d!.id,
        event: 'wave.opened',
        data: { wave: 'Pilot' },
      });
      let row = (await h.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, d!.id)))[0]!;
      expect(row).toMatchObject({ state: 'pending', attempts: 1, lastStatus: 500 });
      expect(row.nextAttemptAt.getTime() - now.getTime()).toBe(60_000);
      // Not due yet: nothing is sent.
      expect(await deliverWebhooks(h.db, { box: t.secretBox, now: new Date(now.getTime() + 30_000) })).toBe(
        0,
      );
      // Four more failures (1, 5, 30, 120 minutes later), then the sixth attempt fails for good.
      let when = now.getTime();
      for (const minutes of [1, 5, 30, 120, 720]) {
        when += minutes * 60_000;
        expect(await deliverWebhooks(h.db, { box: t.secretBox, now: new Date(when) })).toBe(1);
      }
      row = (await h.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, d!.id)))[0]!;
      expect(row).toMatchObject({ state: 'failed', attempts: 6 });

      // A receiver that answers 2xx gets it delivered on the first try.
      answer = 204;
      await enqueueWebhooks(ctxOf(org.id), 'wave.opened', { wave: 'North' }, new Date(when));
      expect(await deliverWebhooks(h.db, { box: t.secretBox, now: new Date(when) })).toBe(1);
      const rows = await h.db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.webhookId, hook.id));
      expect(rows.filter((x) => x.state === 'delivered')).toHaveLength(1);
      expect(received).toHaveLength(7);
      // The secret is never stored in clear.
      expect(JSON.stringify(rows)).not.toContain(hook.secret);
    } finally {
      server.close();
    }
  });
});
