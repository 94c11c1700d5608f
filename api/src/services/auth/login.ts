import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import {
  loginAttempts,
  loginThrottles,
  memberships,
  organizations,
  sessions,
  users,
  type Role,
} from '../../db/schema/index.ts';
import { DUMMY_HASH, verifyPassword } from '../../lib/password.ts';
import { randomToken, sha256Hex } from '../../lib/crypto.ts';
import { TooManyRequestsError, UnauthenticatedError } from '../../lib/errors.ts';
import { recordAudit } from '../audit/record.ts';

/** Failures per e-mail from one client address in the window; then that address is refused for the account. */
export const LOGIN_MAX_FAILURES = 10;
/** Failures from one client address across all accounts in the window (password spraying). */
export const LOGIN_MAX_FAILURES_PER_ADDRESS = 50;
/** Once an account had LOGIN_MAX_FAILURES from anywhere, one attempt per this many seconds, whoever asks. */
export const LOGIN_EMAIL_BACKOFF_SECONDS = 30;
export const LOGIN_WINDOW_MS = 15 * 60_000;
export const SESSION_TTL_MS = 14 * 24 * 3600_000;

export interface LoginInput {
  email: string;
  password: string;
  org?: string;
}

/**
 * Takes one attempt's slot under `key` atomically (one upsert, so 20 concurrent attempts cannot all
 * see 9 failures) and answers the count including it, or null when `backoff` refuses it: then the
 * key had `max` failures in the window and its latest attempt was less than `backoffMs` ago.
 */
async function takeSlot(
  db: Db,
  key: string,
  now: Date,
  backoff?: { max: number; ms: number },
): Promise<number | null> {
  const since = new Date(now.getTime() - LOGIN_WINDOW_MS);
  const expired = sql`${loginThrottles.windowStart} <= ${since.toISOString()}::timestamptz`;
  const rows = await db
    .insert(loginThrottles)
    .values({ key, failures: 1, windowStart: now, lastAt: now })
    .onConflictDoUpdate({
      target: loginThrottles.key,
      set: {
        failures: sql`case when ${expired} then 1 else ${loginThrottles.failures} + 1 end`,
        windowStart: sql`case when ${expired} then ${now.toISOString()}::timestamptz else ${loginThrottles.windowStart} end`,
        lastAt: now,
      },
      ...(backoff
        ? {
            setWhere: sql`${expired} or ${loginThrottles.failures} < ${backoff.max} or ${loginThrottles.lastAt} <= ${new Date(now.getTime() - backoff.ms).toISOString()}::timestamptz`,
          }
        : {}),
    })
    .returning({ failures: loginThrottles.failures });
  return rows[0]?.failures ?? null;
}

/** A successful sign-in gives back its slots; the account's own counters start again. */
async function releaseSlots(db: Db, keys: { reset: string[]; refund: string[] }): Promise<void> {
  if (keys.reset.length)
    await db.update(loginThrottles).set({ failures: 0 }).where(inArray(loginThrottles.key, keys.reset));
  if (keys.refund.length) {
    await db
      .update(loginThrottles)
      .set({ failures: sql`greatest(${loginThrottles.failures} - 1, 0)` })
      .where(inArray(loginThrottles.key, keys.refund));
  }
}

/** The slots one password check took; `passed()` gives them back once the password was right. */
export interface PasswordSlots {
  passed(): Promise<void>;
}

/**
 * Counts one password check before it is made, atomically, under three keys (an unknown account is
 * counted the same way, so timing and answers do not reveal which accounts exist), and refuses it
 * with a 429 when a limit is reached:
 * - the e-mail from this client address: 10 in 15 minutes, then refused for the window;
 * - the client address across accounts: 50 in 15 minutes (password spraying);
 * - the e-mail from anywhere: after 10, one attempt per 30 s — so failures from an attacker's
 *   addresses hold the owner, at another address, back by at most the back-off, never 15 minutes.
 * Every place that checks a password (sign-in, accepting an invitation with an existing account)
 * goes through it, so no door has a weaker limit than the others.
 */
export async function takePasswordSlots(
  db: Db,
  email: string,
  clientAddress: string,
  now: Date,
): Promise<PasswordSlots> {
  const pairKey = `pair:${email}|${clientAddress}`;
  const addressKey = `address:${clientAddress}`;
  const emailKey = `email:${email}`;
  const pair = await takeSlot(db, pairKey, now);
  const address = await takeSlot(db, addressKey, now);
  if (pair! > LOGIN_MAX_FAILURES) {
    throw new TooManyRequestsError(
      'Too many failed sign-ins for this account. Wait 15 minutes and try again.',
      LOGIN_WINDOW_MS / 1000,
    );
  }
  if (address! > LOGIN_MAX_FAILURES_PER_ADDRESS) {
    throw new TooManyRequestsError(
      'Too many failed sign-ins from this address. Wait 15 minutes and try again.',
      LOGIN_WINDOW_MS / 1000,
    );
  }
  const backoffMs = LOGIN_EMAIL_BACKOFF_SECONDS * 1000;
  if ((await takeSlot(db, emailKey, now, { max: LOGIN_MAX_FAILURES, ms: backoffMs })) === null) {
    await releaseSlots(db, { reset: [], refund: [pairKey, addressKey] });
    throw new TooManyRequestsError(
      `Too many failed sign-ins for this account. Wait ${LOGIN_EMAIL_BACKOFF_SECONDS} seconds and try again.`,
      LOGIN_EMAIL_BACKOFF_SECONDS,
    );
  }
  return { passed: () => releaseSlots(db, { reset: [pairKey, emailKey], refund: [addressKey] }) };
}

/** Checks the password (throttled by `takePasswordSlots`) and opens a session. */
export async function login({
  db,
  input,
  requestId,
  clientAddress = 'unknown',
  now = new Date(),
}: {
  db: Db;
  input: LoginInput;
  requestId?: string;
  clientAddress?: string;
  now?: Date;
}) {
  const email = input.email.trim().toLowerCase();
  const slots = await takePasswordSlots(db, email, clientAddress, now);

  const [user] = await db.select().from(users).where(eq(users.email, email)).limit(1);
  const ok = await verifyPassword(input.password, user?.passwordHash ?? DUMMY_HASH);
  const membership =
    user && ok && !user.disabledAt
      ? (
          await db
            .select({
              orgId: memberships.orgId,
              role: memberships.role,
              orgName: organizations.name,
              orgSlug: organizations.slug,
            })
            .from(memberships)
            .innerJoin(organizations, eq(organizations.id, memberships.orgId))
            .where(
              and(eq(memberships.userId, user.id), input.org ? eq(organizations.slug, input.org) : undefined),
            )
            .orderBy(asc(memberships.createdAt))
            .limit(1)
        )[0]
      : undefined;

  if (!user || !membership) {
    await db.insert(loginAttempts).values({ email, succeeded: 0, at: now });
    throw new UnauthenticatedError('The email or password is wrong.', 'INVALID_CREDENTIALS');
  }

  await slots.passed();
  return db.transaction(async (tx) => {
    await tx.insert(loginAttempts).values({ email, succeeded: 1, at: now });
    return openSession(tx as unknown as Db, {
      userId: user.id,
      orgId: membership.orgId,
      role: membership.role,
      requestId,
      now,
    });
  });
}

/** Opens a session for a member (inside the caller's transaction) and audits the sign-in. */
export async function openSession(
  db: Db,
  {
    userId,
    orgId,
    role,
    requestId,
    now = new Date(),
  }: {
    userId: string;
    orgId: string;
    role: Role;
    requestId?: string;
    now?: Date;
  },
) {
  const token = randomToken();
  const [session] = await db
    .insert(sessions)
    .values({
      tokenHash: await sha256Hex(token),
      userId,
      orgId,
      expiresAt: new Date(now.getTime() + SESSION_TTL_MS),
    })
    .returning({ id: sessions.id, expiresAt: sessions.expiresAt });
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
