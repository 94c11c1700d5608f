import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, eq, sql } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeOrg, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { auditLog, loginAttempts, sessions } from '../db/schema/index.ts';
import { LOGIN_MAX_FAILURES } from '../services/auth/login.ts';

describe.each(TEST_DRIVERS)('auth on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    t.app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  describe('happy', () => {
    it('should sign in, set an HttpOnly SameSite=Lax cookie and describe the caller', async () => {
      const org = await makeOrg(h.db, 'Ministry of Health');
      const u = await makeUser(h.db, org.id, 'admin');
      const res = await post('/api/v1/auth/login', { email: u.email.toUpperCase(), password: u.password });
      expect(res.status).toBe(200);
      const cookie = res.headers.get('set-cookie')!;
      expect(cookie).toMatch(/outpost_session=/);
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Lax/);
      expect(cookie).not.toMatch(/Secure/); // plain http in tests
      const me = await res.json();
      expect(me.user.email).toBe(u.email);
      expect(me.organization.name).toBe('Ministry of Health');
      expect(me.role).toBe('admin');
      expect(me.csrfToken).toMatch(/^[0-9a-f]{43}$/);
    });

    it('should mark the cookie Secure when served over https', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'viewer');
      const res = await t.app.request('https://outpost.example/api/v1/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: u.email, password: u.password }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('set-cookie')).toMatch(/Secure/);
    });

    it('should answer /me for the session and end it on logout', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'viewer');
      const s = await signIn(t.app, u.email, u.password);
      expect((await s.request('/api/v1/me')).status).toBe(200);
      const out = await s.request('/api/v1/auth/logout', { method: 'POST' });
      expect(out.status).toBe(200);
      await expectEnvelope(await s.request('/api/v1/me'), 401, 'UNAUTHENTICATED');
    });

    it('should record sign-in and sign-out in the audit log', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'operator');
      const s = await signIn(t.app, u.email, u.password);
      await s.request('/api/v1/auth/logout', { method: 'POST' });
      const rows = await h.db.select().from(auditLog).where(eq(auditLog.orgId, org.id));
      expect(rows.map((r) => r.action).sort()).toEqual(['session.login', 'session.logout']);
      expect(rows.every((r) => r.actorUserId === u.id)).toBe(true);
    });

    it('should change the password, keep this session and end the others', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'viewer');
      const phone = await signIn(t.app, u.email, u.password);
      const laptop = await signIn(t.app, u.email, u.password);
      await expectEnvelope(
        await laptop.request('/api/v1/me/password', {
          method: 'POST',
          json: { currentPassword: 'not it', newPassword: 'a new password 1' },
        }),
        400,
        'VALIDATION_FAILED',
      );
      const res = await laptop.request('/api/v1/me/password', {
        method: 'POST',
        json: { currentPassword: u.password, newPassword: 'a new password 1' },
      });
      expect(res.status).toBe(200);
      expect((await laptop.request('/api/v1/me')).status).toBe(200);
      await expectEnvelope(await phone.request('/api/v1/me'), 401);
      await signIn(t.app, u.email, 'a new password 1');
      await expectEnvelope(await post('/api/v1/auth/login', { email: u.email, password: u.password }), 401);
      expect(JSON.stringify(t.logs)).not.toContain('a new password 1');
    });

    it('should report health of the database and the object store', async () => {
      const res = await t.app.request('/api/health');
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok', database: 'ok', objectStore: 'ok' });
    });

    it('should publish an OpenAPI document generated from the route schemas', async () => {
      const doc = await (await t.app.request('/api/openapi.json')).json();
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining(['/api/v1/auth/login', '/api/v1/users', '/api/v1/tokens/{id}', '/api/health']),
      );
      expect(doc.components.schemas.Error).toBeDefined();
      expect((await t.app.request('/api/docs')).status).toBe(200);
    });
  });

  describe('error', () => {
    it('should refuse a wrong password with 401 and open no session', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'admin');
      const before = await h.db.select({ n: count() }).from(sessions);
      const e = await expectEnvelope(
        await post('/api/v1/auth/login', { email: u.email, password: 'wrong password' }),
        401,
        'INVALID_CREDENTIALS',
      );
      expect(e.message).toBe('The email or password is wrong.');
      const after = await h.db.select({ n: count() }).from(sessions);
      expect(after[0]!.n).toBe(before[0]!.n);
    });

    it('should give the same answer for an unknown account as for a wrong password', async () => {
      const e = await expectEnvelope(
        await post('/api/v1/auth/login', { email: 'nobody@example.org', password: 'whatever1234' }),
        401,
        'INVALID_CREDENTIALS',
      );
      expect(e.message).toBe('The email or password is wrong.');
    });

    it('should throttle an account after 10 failures in 15 minutes, even with the right password', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'admin');
      for (let i = 0; i < LOGIN_MAX_FAILURES; i++) {
        await expectEnvelope(await post('/api/v1/auth/login', { email: u.email, password: `bad-${i}` }), 401);
      }
      const res = await post('/api/v1/auth/login', { email: u.email, password: u.password });
      await expectEnvelope(res, 429, 'TOO_MANY_REQUESTS');
      expect(res.headers.get('retry-after')).toBe('900');
      // Another account is not affected.
      const other = await makeUser(h.db, org.id, 'viewer');
      expect(
        (await post('/api/v1/auth/login', { email: other.email, password: other.password })).status,
      ).toBe(200);
    });

    it('should reject malformed JSON, wrong types and unknown fields with 400', async () => {
      const raw = await t.app.request('/api/v1/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"email":',
      });
      await expectEnvelope(raw, 400, 'MALFORMED_JSON');
      const types = await expectEnvelope(
        await post('/api/v1/auth/login', { email: 42, password: true }),
        400,
        'VALIDATION_FAILED',
      );
      expect(JSON.stringify(types)).toMatch(/email/);
      const unknown = await post('/api/v1/auth/login', { email: 'a@b.org', password: 'x', admin: true });
      const body = await unknown.json();
      expect(unknown.status).toBe(400);
      expect(JSON.stringify(body.error.details)).toMatch(/Unknown field\(s\): admin/);
    });

    it('should name a broken size limit with what was measured and the bound, for any language to say it', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'viewer');
      const me = await signIn(t.app, u.email, u.password);
      const tooShort = await me.request('/api/v1/me/password', {
        method: 'POST',
        json: { currentPassword: u.password, newPassword: 'short' },
      });
      expect(tooShort.status).toBe(400);
      const short = (await tooShort.json()) as { error: { details: Record<string, unknown>[] } };
      expect(short.error.details).toEqual([
        {
          path: 'newPassword',
          code: 'too_small',
          message: 'Use at least 10 characters.',
          origin: 'string',
          minimum: 10,
          inclusive: true,
        },
      ]);
      const tooLong = await me.request('/api/v1/me/password', {
        method: 'POST',
        json: { currentPassword: u.password, newPassword: 'x'.repeat(257) },
      });
      const long = (await tooLong.json()) as { error: { details: Record<string, unknown>[] } };
      expect(long.error.details).toMatchObject([
        { path: 'newPassword', code: 'too_big', origin: 'string', maximum: 256, inclusive: true },
      ]);
      // A type mismatch keeps its code, with no bound.
      const wrongType = await me.request('/api/v1/me/password', {
        method: 'POST',
        json: { currentPassword: u.password, newPassword: 12 },
      });
      const wrong = (await wrongType.json()) as { error: { details: Record<string, unknown>[] } };
      expect(wrong.error.details).toEqual([
        expect.objectContaining({ path: 'newPassword', code: 'invalid_type' }),
      ]);
      expect(wrong.error.details[0]).not.toHaveProperty('minimum');
    });

    it('should name the format a value is not in (an e-mail address) for any language to say it', async () => {
      const org = await makeOrg(h.db);
      const admin = await makeUser(h.db, org.id, 'admin');
      const as = await signIn(t.app, admin.email, admin.password);
      const res = await as.request('/api/v1/users', {
        method: 'POST',
        json: { email: 'not-an-address', name: 'Someone', role: 'viewer' },
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { details: Record<string, unknown>[] } };
      expect(body.error.details).toEqual([
        expect.objectContaining({ path: 'email', code: 'invalid_format', format: 'email' }),
      ]);
    });

    it('should reject a body sent without a JSON content type with 415', async () => {
      const res = await t.app.request('/api/v1/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'hello',
      });
      await expectEnvelope(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('should answer unknown API paths with a 404 envelope', async () => {
      await expectEnvelope(await t.app.request('/api/v1/nothing-here'), 404, 'NOT_FOUND');
    });
  });

  describe('security', () => {
    it('should refuse cookie-authenticated writes without the CSRF token', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'admin');
      const s = await signIn(t.app, u.email, u.password);
      const res = await t.app.request('/api/v1/tokens', {
        method: 'POST',
        headers: { cookie: s.cookie, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x', role: 'viewer' }),
      });
      await expectEnvelope(res, 403, 'CSRF_FAILED');
      const wrong = await t.app.request('/api/v1/tokens', {
        method: 'POST',
        headers: { cookie: s.cookie, 'content-type': 'application/json', 'x-csrf-token': 'a'.repeat(43) },
        body: JSON.stringify({ name: 'x', role: 'viewer' }),
      });
      await expectEnvelope(wrong, 403, 'CSRF_FAILED');
    });

    it('should refuse a cross-site login post', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'viewer');
      const res = await t.app.request('http://outpost.local/api/v1/auth/login', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          origin: 'https://evil.example',
          host: 'outpost.local',
        },
        body: JSON.stringify({ email: u.email, password: u.password }),
      });
      await expectEnvelope(res, 403, 'CSRF_FAILED');
    });

    it('should refuse a forged or expired session cookie', async () => {
      await expectEnvelope(
        await t.app.request('/api/v1/me', { headers: { cookie: 'outpost_session=forged' } }),
        401,
      );
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'viewer');
      const s = await signIn(t.app, u.email, u.password);
      await h.db
        .update(sessions)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(eq(sessions.userId, u.id));
      await expectEnvelope(await s.request('/api/v1/me'), 401);
    });

    it('should keep login attempts for throttling without storing the password', async () => {
      const org = await makeOrg(h.db);
      const u = await makeUser(h.db, org.id, 'viewer');
      const wrong = `not-the-password-${u.id}`;
      await expectEnvelope(await post('/api/v1/auth/login', { email: u.email, password: wrong }), 401);
      expect((await post('/api/v1/auth/login', { email: u.email, password: u.password })).status).toBe(200);

      const rows = await h.db
        .select()
        .from(loginAttempts)
        .where(eq(loginAttempts.email, u.email))
        .orderBy(loginAttempts.at, loginAttempts.succeeded);
      // One row per attempt, in order: the failure (what throttling counts), then the success.
      expect(rows.map((r) => r.succeeded)).toEqual([0, 1]);
      // A row is the e-mail, the outcome and the time: the table has no column a password could be kept in.
      const columns = await h.db.execute(
        sql`select column_name from information_schema.columns where table_name = 'login_attempts'`,
      );
      const names = (columns as unknown as { rows: { column_name: string }[] }).rows.map(
        (c) => c.column_name,
      );
      expect(names.sort()).toEqual(['at', 'email', 'id', 'succeeded']);
      expect(JSON.stringify(rows)).not.toContain(wrong);
      expect(JSON.stringify(rows)).not.toContain(u.password);
    });
  });
});
