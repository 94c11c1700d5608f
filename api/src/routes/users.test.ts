import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { and, count, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { makeOrg, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import { auditLog, memberships, users } from '../db/schema/index.ts';

describe.each(TEST_DRIVERS)('users on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  async function adminSession(role: 'owner' | 'admin' = 'admin') {
    const org = await makeOrg(h.db);
    const admin = await makeUser(h.db, org.id, role);
    return { org, admin, s: await signIn(t.app, admin.email, admin.password) };
  }

  describe('happy', () => {
    it('should let an admin create a viewer who can then sign in with the given password', async () => {
      const { org, s } = await adminSession();
      const res = await s.request('/api/v1/users', {
        method: 'POST',
        json: { email: 'Nurse@Clinic.org', name: 'Nurse', role: 'viewer', password: 'long-enough-pw' },
      });
      expect(res.status).toBe(201);
      const body = await res.json();
      expect(body.user).toMatchObject({ email: 'nurse@clinic.org', role: 'viewer' });
      expect(body.initialPassword).toBeNull();
      const v = await signIn(t.app, 'nurse@clinic.org', 'long-enough-pw');
      const me = await (await v.request('/api/v1/me')).json();
      expect(me).toMatchObject({ role: 'viewer', organization: { id: org.id } });
      const audit = await h.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.orgId, org.id), eq(auditLog.action, 'user.add')));
      expect(audit).toHaveLength(1);
      expect(JSON.stringify(audit[0]!.details)).not.toMatch(/long-enough-pw/);
    });

    it('should generate a password, return it once, and let the person sign in with it', async () => {
      const { s } = await adminSession();
      const res = await s.request('/api/v1/users', {
        method: 'POST',
        json: { email: 'gen@example.org', role: 'operator' },
      });
      const body = await res.json();
      expect(body.initialPassword).toMatch(/^[\w]{5}(-[\w]{5}){3}$/);
      await signIn(t.app, 'gen@example.org', body.initialPassword);
      const list = await (await s.request('/api/v1/users')).json();
      expect(JSON.stringify(list)).not.toContain(body.initialPassword);
    });

    it('should refuse to add an existing account from another organisation directly (an invitation is needed)', async () => {
      const other = await makeOrg(h.db);
      const existing = await makeUser(h.db, other.id, 'viewer');
      const { org, s } = await adminSession();
      const res = await s.request('/api/v1/users', {
        method: 'POST',
        json: { email: existing.email, role: 'operator' },
      });
      const err = await expectEnvelope(res, 409, 'INVITE_REQUIRED');
      expect(JSON.stringify(err)).not.toContain(existing.name);
      const rows = await h.db
        .select()
        .from(memberships)
        .where(and(eq(memberships.orgId, org.id), eq(memberships.userId, existing.id)));
      expect(rows).toHaveLength(0);
    });

    it('should page through users with a cursor', async () => {
      const { org, s } = await adminSession();
      for (let i = 0; i < 4; i++) await makeUser(h.db, org.id, 'viewer');
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: { id: string }[]; nextCursor: string | null } = await (
          await s.request(`/api/v1/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        ).json();
        seen.push(...page.items.map((u) => u.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toHaveLength(5);
      expect(new Set(seen).size).toBe(5);
    });

    it('should change a role and remove a member', async () => {
      const { org, s } = await adminSession();
      const v = await makeUser(h.db, org.id, 'viewer');
      const patched = await s.request(`/api/v1/users/${v.id}`, {
        method: 'PATCH',
        json: { role: 'operator' },
      });
      expect(patched.status).toBe(200);
      expect((await patched.json()).role).toBe('operator');
      expect((await s.request(`/api/v1/users/${v.id}`, { method: 'DELETE' })).status).toBe(200);
      const left = await h.db
        .select()
        .from(memberships)
        .where(and(eq(memberships.orgId, org.id), eq(memberships.userId, v.id)));
      expect(left).toHaveLength(0);
    });
  });

  describe('error', () => {
    it('should refuse a duplicate member with 409 and write nothing', async () => {
      const { org, admin, s } = await adminSession();
      const before = await h.db.select({ n: count() }).from(auditLog).where(eq(auditLog.orgId, org.id));
      await expectEnvelope(
        await s.request('/api/v1/users', { method: 'POST', json: { email: admin.email, role: 'viewer' } }),
        409,
        'CONFLICT',
      );
      const after = await h.db.select({ n: count() }).from(auditLog).where(eq(auditLog.orgId, org.id));
      expect(after[0]!.n).toBe(before[0]!.n);
    });

    it('should reject bad roles, short passwords, bad emails and unknown fields', async () => {
      const { s } = await adminSession();
      for (const json of [
        { email: 'a@b.org', role: 'superuser' },
        { email: 'a@b.org', role: 'viewer', password: 'short' },
        { email: 'not-an-email', role: 'viewer' },
        { email: 'a@b.org', role: 'viewer', isAdmin: true },
      ]) {
        await expectEnvelope(
          await s.request('/api/v1/users', { method: 'POST', json }),
          400,
          'VALIDATION_FAILED',
        );
      }
      const [{ n }] = (await h.db.select({ n: count() }).from(users).where(eq(users.email, 'a@b.org'))) as [
        { n: number },
      ];
      expect(n).toBe(0);
    });

    it('should not let the last owner be demoted or removed', async () => {
      const { admin, s } = await adminSession('owner');
      await expectEnvelope(
        await s.request(`/api/v1/users/${admin.id}`, { method: 'PATCH', json: { role: 'admin' } }),
        409,
      );
      await expectEnvelope(await s.request(`/api/v1/users/${admin.id}`, { method: 'DELETE' }), 409);
    });

    it('should reject a malformed id with 400', async () => {
      const { s } = await adminSession();
      await expectEnvelope(
        await s.request('/api/v1/users/not-a-uuid', { method: 'PATCH', json: { role: 'viewer' } }),
        400,
      );
    });
  });

  describe('security', () => {
    it('should forbid viewers, operators and coordinators from managing users', async () => {
      const org = await makeOrg(h.db);
      for (const role of ['viewer', 'operator', 'coordinator'] as const) {
        const u = await makeUser(h.db, org.id, role);
        const s = await signIn(t.app, u.email, u.password);
        await expectEnvelope(
          await s.request('/api/v1/users', {
            method: 'POST',
            json: { email: `x-${role}@b.org`, role: 'viewer' },
          }),
          403,
          'FORBIDDEN',
        );
        await expectEnvelope(await s.request('/api/v1/users'), 403, 'FORBIDDEN');
      }
      const [{ n }] = (await h.db
        .select({ n: count() })
        .from(users)
        .where(eq(users.email, 'x-viewer@b.org'))) as [{ n: number }];
      expect(n).toBe(0);
    });

    it('should not let an admin create an owner or demote one', async () => {
      const { org, s } = await adminSession('admin');
      await expectEnvelope(
        await s.request('/api/v1/users', { method: 'POST', json: { email: 'boss@b.org', role: 'owner' } }),
        403,
      );
      const owner = await makeUser(h.db, org.id, 'owner');
      await expectEnvelope(
        await s.request(`/api/v1/users/${owner.id}`, { method: 'PATCH', json: { role: 'viewer' } }),
        403,
      );
    });

    it("should answer 404 for another organisation's user, and change nothing", async () => {
      const other = await makeOrg(h.db);
      const victim = await makeUser(h.db, other.id, 'admin');
      const { s } = await adminSession();
      await expectEnvelope(
        await s.request(`/api/v1/users/${victim.id}`, { method: 'PATCH', json: { role: 'viewer' } }),
        404,
        'NOT_FOUND',
      );
      await expectEnvelope(
        await s.request(`/api/v1/users/${victim.id}`, { method: 'DELETE' }),
        404,
        'NOT_FOUND',
      );
      const list = await (await s.request('/api/v1/users')).json();
      expect(list.items.map((u: { id: string }) => u.id)).not.toContain(victim.id);
      const [m] = await h.db.select().from(memberships).where(eq(memberships.userId, victim.id));
      expect(m!.role).toBe('admin');
    });

    it('should never return or log a password hash', async () => {
      const { s } = await adminSession();
      await s.request('/api/v1/users', {
        method: 'POST',
        json: { email: 'h@b.org', role: 'viewer', password: 'secret-password-1' },
      });
      const list = await (await s.request('/api/v1/users')).text();
      expect(list).not.toMatch(/pbkdf2|passwordHash|secret-password-1/);
      expect(JSON.stringify(t.logs)).not.toMatch(/pbkdf2|secret-password-1/);
    });
  });
});
