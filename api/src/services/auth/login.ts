import { and, asc, eq, gt, count } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { loginAttempts, memberships, organizations, sessions, users, type Role } from '../../db/schema/index.ts';
import { DUMMY_HASH, verifyPassword } from '../../lib/password.ts';
import { randomToken, sha256Hex } from '../../lib/crypto.ts';
import { TooManyRequestsError, UnauthenticatedError } from '../../lib/errors.ts';
import { recordAudit } from '../audit/record.ts';

export const LOGIN_MAX_FAILURES = 10;
export const LOGIN_WINDOW_MS = 15 * 60_000;
export const SESSION_TTL_MS = 14 * 24 * 3600_000;

export interface LoginInput { email: string; password: string; org?: string }

/**
 * Checks the password and opens a session. Failures are counted per account (by email, so an
 * unknown account is throttled the same way and timing does not reveal which accounts exist).
 */
export async function login({ db, input, requestId, now = new Date() }: {
  db: Db; input: LoginInput; requestId?: string; now?: Date;
}) {
  const email = input.email.trim().toLowerCase();
  await assertNotThrottled(db, email, now);

  const [user] = await db.select().from(users).where(eq(users.email, email)).limit(1);
  const ok = await verifyPassword(input.password, user?.passwordHash ?? DUMMY_HASH);
  const membership = user && ok && !user.disabledAt
    ? (await db
      .select({ orgId: memberships.orgId, role: memberships.role, orgName: organizations.name, orgSlug: organizations.slug })
      .from(memberships)
      .innerJoin(organizations, eq(organizations.id, memberships.orgId))
      .where(and(eq(memberships.userId, user.id), input.org ? eq(organizations.slug, input.org) : undefined))
      .orderBy(asc(memberships.createdAt))
      .limit(1))[0]
    : undefined;

  if (!user || !membership) {
    await db.insert(loginAttempts).values({ email, succeeded: 0, at: now });
    throw new UnauthenticatedError('The email or password is wrong.', 'INVALID_CREDENTIALS');
  }

  return db.transaction(async (tx) => {
    await tx.insert(loginAttempts).values({ email, succeeded: 1, at: now });
    return openSession(tx as unknown as Db, { userId: user.id, orgId: membership.orgId, role: membership.role, requestId, now });
  });
}

/** Failed sign-ins for this e-mail within the window (also counted by invite acceptance, which checks a password). */
export async function assertNotThrottled(db: Db, email: string, now = new Date()) {
  const since = new Date(now.getTime() - LOGIN_WINDOW_MS);
  const [{ failures } = { failures: 0 }] = await db
    .select({ failures: count() })
    .from(loginAttempts)
    .where(and(eq(loginAttempts.email, email), eq(loginAttempts.succeeded, 0), gt(loginAttempts.at, since)));
  if (failures >= LOGIN_MAX_FAILURES) {
    throw new TooManyRequestsError('Too many failed sign-ins for this account. Wait 15 minutes and try again.', LOGIN_WINDOW_MS / 1000);
  }
}

/** Opens a session for a member (inside the caller's transaction) and audits the sign-in. */
export async function openSession(db: Db, { userId, orgId, role, requestId, now = new Date() }: {
  userId: string; orgId: string; role: Role; requestId?: string; now?: Date;
}) {
  const token = randomToken();
  const [session] = await db.insert(sessions).values({
    tokenHash: await sha256Hex(token), userId, orgId, expiresAt: new Date(now.getTime() + SESSION_TTL_MS),
  }).returning({ id: sessions.id, expiresAt: sessions.expiresAt });
  await recordAudit(
    { db, orgId, actor: { userId, tokenId: null, role }, requestId },
    { action: 'session.login', objectType: 'user', objectId: userId },
  );
  return { token, csrfToken: await csrfFor(token), expiresAt: session!.expiresAt, userId, orgId };
}

/** The CSRF token is derived from the session token, so it needs no storage and dies with the session. */
export async function csrfFor(sessionToken: string): Promise<string> {
  return (await sha256Hex(`csrf:${sessionToken}`)).slice(0, 43);
}
