import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { count, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeApiToken, makeOrg, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { apiTokens, auditLog, users } from '../db/schema/index.ts';
import { sha256Hex } from '../lib/crypto.ts';

describe.each(TEST_DRIVERS)('API tokens on %s', (driver) => {
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

  describe('happy', () => {
    it('should create a token shown once, stored only as a hash, usable as a bearer token with its role', async () => {
      const { org, s } = await adminSession();
      const res = await s.request('/api/v1/tokens', {
        method: 'POST',
        json: { name: 'ci', role: 'viewer', expiresInDays: 30 },
      });
      expect(res.status).toBe(201);
      const created = await res.json();
      expect(created.token).toMatch(/^opt_[\w-]{43}$/);
      expect(created.prefix).toBe(created.token.slice(0, 10));
      const [row] = await h.db.select().from(apiTokens).where(eq(apiTokens.id, created.id));
      expect(row!.tokenHash).toBe(await sha256Hex(created.token));
      expect(JSON.stringify(row)).not.toContain(created.token);

      const me = await (await withToken(t.app, created.token)('/api/v1/me')).json();
      expect(me).toMatchObject({
        role: 'viewer',
        user: null,
        token: { id: created.id },
        organization: { id: org.id },
      });
      const list = await (await s.request('/api/v1/tokens')).text();
      expect(list).toContain(created.id);
      expect(list).not.toContain(created.token);
      expect(JSON.stringify(t.logs)).not.toContain(created.token);
    });

    it('should let an admin token manage users without a CSRF token (it is not a cookie)', async () => {
      const org = await makeOrg(h.db);
      const tok = await makeApiToken(h.db, org.id, 'admin');
      const res = await withToken(t.app, tok.token)('/api/v1/users', {
        method: 'POST',
        json: { email: 'auto@b.org', role: 'viewer' },
      });
      expect(res.status).toBe(201);
      const [entry] = await h.db
        .select()
        .from(auditLog)
        .where(eq(auditLog.action, 'user.add'))
        .orderBy(auditLog.at);
      expect(entry).toBeDefined();
      const mine = await h.db.select().from(auditLog).where(eq(auditLog.actorTokenId, tok.id));
      expect(mine.map((a) => a.action)).toEqual(['user.add']);
    });

    it('should revoke a token so that it stops working at once', async () => {
      const { org, s } = await adminSession();
      const tok = await makeApiToken(h.db, org.id, 'operator');
      expect((await withToken(t.app, tok.token)('/api/v1/me')).status).toBe(200);
      const res = await s.request(`/api/v1/tokens/${tok.id}`, { method: 'DELETE' });
      expect(res.status).toBe(200);
      expect((await res.json()).revokedAt).not.toBeNull();
      await expectEnvelope(await withToken(t.app, tok.token)('/api/v1/me'), 401, 'TOKEN_REVOKED');
      const active = await (await s.request('/api/v1/tokens')).json();
      expect(active.items.map((x: { id: string }) => x.id)).not.toContain(tok.id);
      const all = await (await s.request('/api/v1/tokens?includeRevoked=true')).json();
      expect(all.items.map((x: { id: string }) => x.id)).toContain(tok.id);
    });
  });

  describe('error', () => {
    it('should refuse an expired token with 401 TOKEN_EXPIRED', async () => {
      const org = await makeOrg(h.db);
      const tok = await makeApiToken(h.db, org.id, 'admin', { expiresInDays: 1 });
      await h.db
        .update(apiTokens)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(eq(apiTokens.id, tok.id));
      await expectEnvelope(await withToken(t.app, tok.token)('/api/v1/me'), 401, 'TOKEN_EXPIRED');
    });

    it('should refuse unknown and malformed tokens and Authorization headers', async () => {
      await expectEnvelope(await withToken(t.app, 'opt_doesnotexist')('/api/v1/me'), 401, 'INVALID_TOKEN');
      await expectEnvelope(await withToken(t.app, 'garbage')('/api/v1/me'), 401, 'INVALID_TOKEN');
      await expectEnvelope(
        await t.app.request('/api/v1/me', { headers: { authorization: 'Basic abc' } }),
        401,
        'INVALID_TOKEN',
      );
      await expectEnvelope(await t.app.request('/api/v1/me'), 401, 'UNAUTHENTICATED');
    });

    it('should reject invalid token requests with 400 and create nothing', async () => {
      const { org, s } = await adminSession();
      for (const json of [
        { name: '', role: 'viewer' },
        { name: 'x', role: 'god' },
        { name: 'x', role: 'viewer', expiresInDays: 0 },
        { name: 'x', role: 'viewer', extra: 1 },
      ]) {
        await expectEnvelope(
          await s.request('/api/v1/tokens', { method: 'POST', json }),
          400,
          'VALIDATION_FAILED',
        );
      }
      const [{ n }] = (await h.db
        .select({ n: count() })
        .from(apiTokens)
        .where(eq(apiTokens.orgId, org.id))) as [{ n: number }];
      expect(n).toBe(0);
    });

    it('should refuse an oversized body with 413 and write nothing', async () => {
      const small = await makeTestApp(h, { maxBodyBytes: 1024 });
      const org = await makeOrg(h.db);
      const tok = await makeApiToken(h.db, org.id, 'admin');
      const res = await withToken(small.app, tok.token)('/api/v1/users', {
        method: 'POST',
        json: { email: 'big@b.org', role: 'viewer', name: 'x'.repeat(5000) },
      });
      await expectEnvelope(res, 413, 'BODY_TOO_LARGE');
      expect(await h.db.select().from(users).where(eq(users.email, 'big@b.org'))).toHaveLength(0);
    });
  });

  describe('security', () => {
    it('should forbid a viewer token from creating tokens or users, and an admin from minting an owner token', async () => {
      const org = await makeOrg(h.db);
      const viewer = await makeApiToken(h.db, org.id, 'viewer');
      await expectEnvelope(
        await withToken(t.app, viewer.token)('/api/v1/tokens', {
          method: 'POST',
          json: { name: 'x', role: 'viewer' },
        }),
        403,
      );
      await expectEnvelope(
        await withToken(t.app, viewer.token)('/api/v1/users', {
          method: 'POST',
          json: { email: 'v@b.org', role: 'viewer' },
        }),
        403,
      );
      const admin = await makeApiToken(h.db, org.id, 'admin');
      await expectEnvelope(
        await withToken(t.app, admin.token)('/api/v1/tokens', {
          method: 'POST',
          json: { name: 'x', role: 'owner' },
        }),
        403,
      );
    });

    it("should answer 404 when revoking another organisation's token, and leave it working", async () => {
      const other = await makeOrg(h.db);
      const theirs = await makeApiToken(h.db, other.id, 'admin');
      const { s } = await adminSession();
      await expectEnvelope(
        await s.request(`/api/v1/tokens/${theirs.id}`, { method: 'DELETE' }),
        404,
        'NOT_FOUND',
      );
      expect((await withToken(t.app, theirs.token)('/api/v1/me')).status).toBe(200);
      const mine = await (await s.request('/api/v1/tokens?includeRevoked=true')).json();
      expect(mine.items.map((x: { id: string }) => x.id)).not.toContain(theirs.id);
    });

    it("should keep each organisation's audit log to itself", async () => {
      const a = await adminSession();
      const b = await adminSession();
      await a.s.request('/api/v1/tokens', { method: 'POST', json: { name: 'only-in-a', role: 'viewer' } });
      const logB = await (await b.s.request('/api/v1/audit')).json();
      expect(JSON.stringify(logB)).not.toContain('only-in-a');
      const logA = await (await a.s.request('/api/v1/audit')).json();
      expect(JSON.stringify(logA)).toContain('only-in-a');
    });
  });
});
