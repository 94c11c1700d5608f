import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { and, eq } from 'drizzle-orm';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeOrg, makeSite, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { auditLog, coordinatorSites, invites, memberships, users } from '../db/schema/index.ts';
import { smtpMailer } from '../lib/mailer.ts';
import { LOGIN_MAX_FAILURES } from '../services/auth/login.ts';

type App = Awaited<ReturnType<typeof makeTestApp>>['app'];

function post(app: App, path: string, json: unknown, headers: Record<string, string> = {}) {
  return app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(json),
  });
}

const tokenOf = (link: string) => link.split('#')[1]!;

describe.each(TEST_DRIVERS)('invites on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  async function adminSession() {
    const org = await makeOrg(h.db);
    const admin = await makeUser(h.db, org.id, 'admin');
    return { org, admin, s: await signIn(t.app, admin.email, admin.password) };
  }

  async function invite(s: Awaited<ReturnType<typeof signIn>>, json: Record<string, unknown>) {
    const res = await s.request('/api/v1/invites', { method: 'POST', json });
    expect(res.status).toBe(201);
    return res.json() as Promise<{ invite: { id: string; status: string }; link: string; emailed: boolean }>;
  }

  describe('happy', () => {
    it('should invite a coordinator with sites, and let them join with a password and language, signed in at once', async () => {
      const { org, s } = await adminSession();
      const a = await makeSite(h.db, org.id);
      const b = await makeSite(h.db, org.id);
      const inv = await invite(s, {
        email: 'Awa@Clinic.org',
        name: 'Awa',
        role: 'coordinator',
        siteIds: [a.id, b.id],
        language: 'fr',
      });
      expect(inv.link).toMatch(/^http:\/\/localhost\/join#inv_[\w-]{43}$/);
      expect(inv.emailed).toBe(false);
      expect(inv.invite.status).toBe('pending');

      const look = await post(t.app, '/api/v1/invites/lookup', { token: tokenOf(inv.link) });
      expect(look.status).toBe(200);
      expect(await look.json()).toMatchObject({
        email: 'awa@clinic.org',
        role: 'coordinator',
        sites: 2,
        language: 'fr',
        hasAccount: false,
        organization: { name: org.name },
      });

      const acc = await post(t.app, '/api/v1/invites/accept', {
        token: tokenOf(inv.link),
        password: 'a-long-password',
        language: 'fr',
      });
      expect(acc.status).toBe(200);
      const me = await acc.json();
      expect(me).toMatchObject({
        role: 'coordinator',
        user: { email: 'awa@clinic.org', name: 'Awa', language: 'fr' },
        organization: { id: org.id },
      });
      expect(acc.headers.get('set-cookie')).toMatch(/outpost_session=/);

      const sites = await h.db.select().from(coordinatorSites).where(eq(coordinatorSites.userId, me.user.id));
      expect(sites.map((x) => x.siteId).sort()).toEqual([a.id, b.id].sort());
      const c = await signIn(t.app, 'awa@clinic.org', 'a-long-password');
      const listed = await (await c.request('/api/v1/sites')).json();
      expect(listed.items.map((x: { id: string }) => x.id).sort()).toEqual([a.id, b.id].sort());
      const list = await (await s.request('/api/v1/invites')).json();
      expect(list.items[0]).toMatchObject({ id: inv.invite.id, status: 'accepted' });
      const audit = await h.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.orgId, org.id), eq(auditLog.action, 'invite.accept')));
      expect(audit).toHaveLength(1);
      expect(JSON.stringify(audit)).not.toContain('a-long-password');
    });

    it("should let a person with an account elsewhere join by giving that account's password, which stays unchanged", async () => {
      const other = await makeOrg(h.db);
      const existing = await makeUser(h.db, other.id, 'viewer');
      const { org, s } = await adminSession();
      const inv = await invite(s, { email: existing.email, role: 'operator' });
      const look = await (await post(t.app, '/api/v1/invites/lookup', { token: tokenOf(inv.link) })).json();
      expect(look.hasAccount).toBe(true);
      expect(look.name).toBe('');
      const acc = await post(t.app, '/api/v1/invites/accept', {
        token: tokenOf(inv.link),
        password: existing.password,
      });
      expect(acc.status).toBe(200);
      const login = await signIn(t.app, existing.email, existing.password);
      const me = await (await login.request('/api/v1/me')).json();
      expect(me.organizations.map((o: { id: string }) => o.id).sort()).toEqual([other.id, org.id].sort());
    });

    it('should save the language a person picks on /me', async () => {
      const { s } = await adminSession();
      expect((await (await s.request('/api/v1/me')).json()).user.language).toBeNull();
      const res = await s.request('/api/v1/me', { method: 'PATCH', json: { language: 'pt' } });
      expect(res.status).toBe(200);
      expect((await res.json()).user.language).toBe('pt');
      expect((await (await s.request('/api/v1/me')).json()).user.language).toBe('pt');
    });

    it('should send the link by e-mail in the chosen language when SMTP is configured', async () => {
      const received: string[] = [];
      const smtp = new SMTPServer({
        authOptional: true,
        disabledCommands: ['STARTTLS'],
        logger: false,
        onData(stream, _session, cb) {
          let d = '';
          stream.on('data', (c: Buffer) => {
            d += c.toString();
          });
          stream.on('end', () => {
            received.push(d);
            cb();
          });
        },
      });
      await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
      try {
        const port = (smtp.server.address() as AddressInfo).port;
        const withMail = (
          await makeTestApp(h, {
            mailer: smtpMailer(`smtp://127.0.0.1:${port}`, 'Outpost <outpost@example.org>'),
          })
        ).app;
        const org = await makeOrg(h.db);
        const admin = await makeUser(h.db, org.id, 'admin');
        const s = await signIn(withMail, admin.email, admin.password);
        const res = await s.request('/api/v1/invites', {
          method: 'POST',
          json: { email: 'mail@clinic.org', role: 'coordinator', language: 'fr' },
        });
        const body = await res.json();
        expect(body.emailed).toBe(true);
        expect(received).toHaveLength(1);
        expect(received[0]).toContain('To: mail@clinic.org');
        expect(received[0]!.replace(/=\r?\n/g, '')).toContain(tokenOf(body.link));
        expect(received[0]).toMatch(/Subject: =\?UTF-8\?|Subject: Vous/);
      } finally {
        await new Promise<void>((r) => smtp.close(() => r()));
      }
    });
  });

  describe('error', () => {
    it('should refuse a used invite, plainly, and not let it be used twice at once', async () => {
      const { s } = await adminSession();
      const inv = await invite(s, { email: `twice-${Date.now()}@clinic.org`, role: 'coordinator' });
      const token = tokenOf(inv.link);
      const both = await Promise.all(
        [1, 2].map(() => post(t.app, '/api/v1/invites/accept', { token, password: 'a-long-password' })),
      );
      expect(both.map((r) => r.status).sort()).toEqual([200, 410]);
      const again = await post(t.app, '/api/v1/invites/accept', { token, password: 'a-long-password' });
      const err = await expectEnvelope(again, 410, 'INVITE_USED');
      expect(err.message).toMatch(/already been used/);
      await expectEnvelope(await post(t.app, '/api/v1/invites/lookup', { token }), 410, 'INVITE_USED');
    });

    it('should refuse an expired invite and a withdrawn one', async () => {
      const { org, s } = await adminSession();
      const inv = await invite(s, { email: 'late@clinic.org', role: 'coordinator' });
      await h.db
        .update(invites)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(eq(invites.id, inv.invite.id));
      await expectEnvelope(
        await post(t.app, '/api/v1/invites/accept', {
          token: tokenOf(inv.link),
          password: 'a-long-password',
        }),
        410,
        'INVITE_EXPIRED',
      );
      expect(await h.db.select().from(users).where(eq(users.email, 'late@clinic.org'))).toHaveLength(0);

      const inv2 = await invite(s, { email: 'gone@clinic.org', role: 'coordinator' });
      expect((await s.request(`/api/v1/invites/${inv2.invite.id}`, { method: 'DELETE' })).status).toBe(200);
      await expectEnvelope(
        await post(t.app, '/api/v1/invites/lookup', { token: tokenOf(inv2.link) }),
        410,
        'INVITE_REVOKED',
      );
      const list = await (await s.request('/api/v1/invites')).json();
      expect(list.items.map((i: { status: string }) => i.status).sort()).toEqual(['expired', 'revoked']);
      expect(list.items.every((i: { email: string }) => i.email.endsWith('@clinic.org'))).toBe(true);
      void org;
    });

    it('should refuse an unknown token, a short password, a wrong existing password, a member, and sites for other roles', async () => {
      const { org, s, admin } = await adminSession();
      await expectEnvelope(
        await post(t.app, '/api/v1/invites/lookup', { token: 'inv_' + 'x'.repeat(43) }),
        404,
        'INVITE_NOT_FOUND',
      );
      await expectEnvelope(
        await post(t.app, '/api/v1/invites/lookup', { token: 'not a token!' }),
        400,
        'VALIDATION_FAILED',
      );
      const inv = await invite(s, { email: `short-${Date.now()}@clinic.org`, role: 'coordinator' });
      await expectEnvelope(
        await post(t.app, '/api/v1/invites/accept', { token: tokenOf(inv.link), password: 'short' }),
        400,
        'VALIDATION_FAILED',
      );
      const other = await makeUser(h.db, (await makeOrg(h.db)).id, 'viewer');
      const inv2 = await invite(s, { email: other.email, role: 'viewer' });
      await expectEnvelope(
        await post(t.app, '/api/v1/invites/accept', {
          token: tokenOf(inv2.link),
          password: 'not-their-password',
        }),
        401,
        'INVALID_CREDENTIALS',
      );
      expect(
        await h.db
          .select()
          .from(memberships)
          .where(and(eq(memberships.userId, other.id), eq(memberships.orgId, org.id))),
      ).toHaveLength(0);
      await expectEnvelope(
        await s.request('/api/v1/invites', { method: 'POST', json: { email: admin.email, role: 'viewer' } }),
        409,
        'CONFLICT',
      );
      const site = await makeSite(h.db, org.id);
      await expectEnvelope(
        await s.request('/api/v1/invites', {
          method: 'POST',
          json: { email: 'x@y.org', role: 'viewer', siteIds: [site.id] },
        }),
        400,
        'VALIDATION_FAILED',
      );
      await expectEnvelope(
        await s.request('/api/v1/invites', {
          method: 'POST',
          json: { email: 'x@y.org', role: 'viewer', language: 'de' },
        }),
        400,
        'VALIDATION_FAILED',
      );
    });
  });

  describe('security', () => {
    it("should count password guesses through an invitation with the sign-in page's, per address, and refuse past the limit", async () => {
      const { s } = await adminSession();
      const other = await makeUser(h.db, (await makeOrg(h.db)).id, 'viewer');
      const inv = await invite(s, { email: other.email, role: 'viewer' });
      const from = { 'x-test-client-address': '203.0.113.77' };
      // Twenty guesses at once: the count is taken atomically, so exactly the limit gets a 401.
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          post(t.app, '/api/v1/invites/accept', { token: tokenOf(inv.link), password: `guess-${i}` }, from),
        ),
      );
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses.filter((x) => x === 401)).toHaveLength(LOGIN_MAX_FAILURES);
      expect(statuses.filter((x) => x === 429)).toHaveLength(20 - LOGIN_MAX_FAILURES);
      await expectEnvelope(
        answers.find((r) => r.status === 429)!,
        429,
        'TOO_MANY_REQUESTS',
      );
      // The same count holds the sign-in page shut for that address, even with the right password…
      const login = await post(
        t.app,
        '/api/v1/auth/login',
        { email: other.email, password: other.password },
        from,
      );
      expect(login.status).toBe(429);
      // …and the invitation too: a right password from that address waits for the window.
      const right = await post(
        t.app,
        '/api/v1/invites/accept',
        { token: tokenOf(inv.link), password: other.password },
        from,
      );
      expect(right.status).toBe(429);
      expect(await h.db.select().from(memberships).where(eq(memberships.userId, other.id))).toHaveLength(1);
    });

    it("should not assign another organisation's sites, nor let another organisation see or withdraw the invite", async () => {
      const a = await adminSession();
      const b = await adminSession();
      const theirs = await makeSite(h.db, b.org.id);
      await expectEnvelope(
        await a.s.request('/api/v1/invites', {
          method: 'POST',
          json: { email: 'c@clinic.org', role: 'coordinator', siteIds: [theirs.id] },
        }),
        400,
        'VALIDATION_FAILED',
      );
      const inv = await invite(a.s, { email: 'c@clinic.org', role: 'coordinator' });
      await expectEnvelope(
        await b.s.request(`/api/v1/invites/${inv.invite.id}`, { method: 'DELETE' }),
        404,
        'NOT_FOUND',
      );
      const list = await (await b.s.request('/api/v1/invites')).json();
      expect(list.items).toHaveLength(0);
    });

    it('should let only admins invite, and never to a role above their own; never store the token', async () => {
      const { org, s } = await adminSession();
      const op = await makeUser(h.db, org.id, 'operator');
      const co = await makeUser(h.db, org.id, 'coordinator');
      for (const who of [op, co]) {
        const ss = await signIn(t.app, who.email, who.password);
        await expectEnvelope(
          await ss.request('/api/v1/invites', {
            method: 'POST',
            json: { email: 'z@clinic.org', role: 'viewer' },
          }),
          403,
          'FORBIDDEN',
        );
        await expectEnvelope(await ss.request('/api/v1/invites'), 403, 'FORBIDDEN');
      }
      await expectEnvelope(
        await s.request('/api/v1/invites', {
          method: 'POST',
          json: { email: 'z@clinic.org', role: 'owner' },
        }),
        403,
        'FORBIDDEN',
      );
      const inv = await invite(s, { email: 'z@clinic.org', role: 'viewer' });
      const rows = await h.db.select().from(invites).where(eq(invites.id, inv.invite.id));
      expect(JSON.stringify(rows)).not.toContain(tokenOf(inv.link));
      expect(JSON.stringify(t.logs)).not.toContain(tokenOf(inv.link));
      await expectEnvelope(await t.app.request('/api/v1/invites'), 401);
    });

    it('should not add an account of another organisation directly, nor show its name', async () => {
      const other = await makeOrg(h.db);
      const existing = await makeUser(h.db, other.id, 'viewer');
      const { s } = await adminSession();
      const res = await s.request('/api/v1/users', {
        method: 'POST',
        json: { email: existing.email, role: 'operator' },
      });
      const err = await expectEnvelope(res, 409, 'INVITE_REQUIRED');
      expect(JSON.stringify(err)).not.toContain(existing.name);
    });
  });
});
