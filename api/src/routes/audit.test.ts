import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeOrg, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';

describe.each(TEST_DRIVERS)('audit log filters on %s', (driver) => {
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
    const admin = await makeUser(h.db, org.id, 'admin');
    const op = await makeUser(h.db, org.id, 'operator');
    const a = await signIn(t.app, admin.email, admin.password);
    const o = await signIn(t.app, op.email, op.password);
    const site = await (
      await o.request('/api/v1/sites', { method: 'POST', json: { code: 'KE-1', name: 'Kisumu Clinic' } })
    ).json();
    await a.request('/api/v1/invites', {
      method: 'POST',
      json: { email: 'n@clinic.org', role: 'coordinator' },
    });
    return { org, admin, op, a, o, site };
  }

  it('should filter by person, by kind and by date, and name the objects in words', async () => {
    const { a, op, site } = await setup();
    const byOp = await (await a.request(`/api/v1/audit?actor=${op.id}`)).json();
    expect(byOp.items.map((e: { action: string }) => e.action).sort()).toEqual([
      'session.login',
      'site.create',
    ]);
    const sites = await (await a.request('/api/v1/audit?kind=site')).json();
    expect(sites.items).toHaveLength(1);
    expect(sites.items[0]).toMatchObject({
      action: 'site.create',
      objectId: site.id,
      objectLabel: 'KE-1 · Kisumu Clinic',
      actorEmail: op.email,
    });
    const invites = await (await a.request('/api/v1/audit?kind=invite.create')).json();
    expect(invites.items[0].objectLabel).toBe('n@clinic.org');
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect(
      (await (await a.request(`/api/v1/audit?from=${encodeURIComponent(future)}`)).json()).items,
    ).toHaveLength(0);
    const past = new Date(Date.now() - 3600_000).toISOString();
    expect(
      (await (await a.request(`/api/v1/audit?to=${encodeURIComponent(past)}`)).json()).items,
    ).toHaveLength(0);
    const actors = await (await a.request('/api/v1/audit/actors')).json();
    expect(actors.items.map((x: { email: string }) => x.email)).toContain(op.email);
    const token = await (
      await a.request('/api/v1/tokens', { method: 'POST', json: { name: 'CI pipeline', role: 'viewer' } })
    ).json();
    expect(
      (await a.request(`/api/v1/tokens/${token.token?.id ?? token.id}`, { method: 'DELETE' })).status,
    ).toBe(200);
    const tokens = await (await a.request('/api/v1/audit?kind=token')).json();
    expect(
      tokens.items.map((e: { action: string; objectLabel: string }) => `${e.action} ${e.objectLabel}`),
    ).toEqual(['token.revoke CI pipeline', 'token.create CI pipeline']);
  });

  it('should refuse a malformed filter', async () => {
    const { a } = await setup();
    await expectEnvelope(await a.request('/api/v1/audit?kind=SITE%25'), 400, 'VALIDATION_FAILED');
    await expectEnvelope(await a.request('/api/v1/audit?from=yesterday'), 400, 'VALIDATION_FAILED');
    await expectEnvelope(await a.request('/api/v1/audit?actor=not-a-uuid'), 400, 'VALIDATION_FAILED');
  });

  it("should not show another organisation's entries or people, and keep operators out", async () => {
    const one = await setup();
    const two = await setup();
    const seen = await (await two.a.request(`/api/v1/audit?actor=${one.op.id}`)).json();
    expect(seen.items).toHaveLength(0);
    const actors = await (await two.a.request('/api/v1/audit/actors')).json();
    expect(actors.items.map((x: { email: string }) => x.email)).not.toContain(one.op.email);
    await expectEnvelope(await one.o.request('/api/v1/audit/actors'), 403, 'FORBIDDEN');
  });
});
