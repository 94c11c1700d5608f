import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeOrg, makeSite, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { coordinatorSites } from '../db/schema/index.ts';

describe.each(TEST_DRIVERS)('site problems on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  async function setup() {
    const org = await makeOrg(h.db);
    const site = await makeSite(h.db, org.id, { reportedVersion: '1.2.0' });
    const other = await makeSite(h.db, org.id);
    const coord = await makeUser(h.db, org.id, 'coordinator');
    await h.db.insert(coordinatorSites).values({ orgId: org.id, userId: coord.id, siteId: site.id });
    const op = await makeUser(h.db, org.id, 'operator');
    return {
      org,
      site,
      other,
      c: await signIn(t.app, coord.email, coord.password),
      o: await signIn(t.app, op.email, op.password),
      coord,
    };
  }

  it('should let a coordinator report a problem that the ministry sees on the site, and resolve', async () => {
    const { site, c, o, coord } = await setup();
    const res = await c.request(`/api/v1/sites/${site.id}/problems`, {
      method: 'POST',
      json: { description: 'Install stopped at step 4', errorText: 'disk full' },
    });
    expect(res.status).toBe(201);
    const p = await res.json();
    expect(p).toMatchObject({
      description: 'Install stopped at step 4',
      errorText: 'disk full',
      version: '1.2.0',
      reportedBy: { email: coord.email },
      resolvedAt: null,
    });
    const seen = await (await o.request(`/api/v1/sites/${site.id}/problems?open=true`)).json();
    expect(seen.items.map((x: { id: string }) => x.id)).toEqual([p.id]);
    const r = await o.request(`/api/v1/sites/${site.id}/problems/${p.id}/resolve`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(
      (await (await o.request(`/api/v1/sites/${site.id}/problems?open=true`)).json()).items,
    ).toHaveLength(0);
    expect(
      (await (await o.request(`/api/v1/sites/${site.id}/problems`)).json()).items[0].resolvedAt,
    ).not.toBeNull();
  });

  it('should refuse an empty description, control characters and unknown fields', async () => {
    const { site, c } = await setup();
    for (const json of [
      { description: '  ' },
      { description: 'x\u001b[31m' },
      { description: 'x', extra: 1 },
      { description: 'x'.repeat(4001) },
    ]) {
      await expectEnvelope(
        await c.request(`/api/v1/sites/${site.id}/problems`, { method: 'POST', json }),
        400,
        'VALIDATION_FAILED',
      );
    }
  });

  it("should hide other sites and other organisations' sites (404), and not let a coordinator resolve", async () => {
    const { site, other, c } = await setup();
    await expectEnvelope(
      await c.request(`/api/v1/sites/${other.id}/problems`, { method: 'POST', json: { description: 'x' } }),
      404,
      'NOT_FOUND',
    );
    await expectEnvelope(await c.request(`/api/v1/sites/${other.id}/problems`), 404, 'NOT_FOUND');
    const stranger = await setup();
    await expectEnvelope(await stranger.o.request(`/api/v1/sites/${site.id}/problems`), 404, 'NOT_FOUND');
    const p = await (
      await c.request(`/api/v1/sites/${site.id}/problems`, { method: 'POST', json: { description: 'x' } })
    ).json();
    await expectEnvelope(
      await c.request(`/api/v1/sites/${site.id}/problems/${p.id}/resolve`, { method: 'POST' }),
      403,
      'FORBIDDEN',
    );
    await expectEnvelope(
      await stranger.o.request(`/api/v1/sites/${site.id}/problems/${p.id}/resolve`, { method: 'POST' }),
      404,
      'NOT_FOUND',
    );
    await expectEnvelope(await t.app.request(`/api/v1/sites/${site.id}/problems`), 401);
  });
});
