import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { apiTokens, memberships, sessions, users, type Role } from '../../db/schema/index.ts';
import { sha256Hex } from '../../lib/crypto.ts';
import { UnauthenticatedError } from '../../lib/errors.ts';

export interface Principal {
  kind: 'session' | 'token';
  orgId: string;
  userId: string | null;
  tokenId: string | null;
  sessionId: string | null;
  role: Role;
}

export const API_TOKEN_PREFIX = 'opt_';

/** A session cookie: the session must be live, the user enabled and still a member of the org. */
export async function resolveSession(db: Db, token: string, now = new Date()): Promise<Principal | null> {
  const [row] = await db
    .select({
      id: sessions.id,
      userId: sessions.userId,
      orgId: sessions.orgId,
      expiresAt: sessions.expiresAt,
      revokedAt: sessions.revokedAt,
      role: memberships.role,
      disabledAt: users.disabledAt,
    })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .innerJoin(
      memberships,
      and(eq(memberships.userId, sessions.userId), eq(memberships.orgId, sessions.orgId)),
    )
    .where(eq(sessions.tokenHash, await sha256Hex(token)))
    .limit(1);
  if (!row || row.revokedAt || row.disabledAt || row.expiresAt <= now) return null;
  return {
    kind: 'session',
    orgId: row.orgId,
    userId: row.userId,
    tokenId: null,
    sessionId: row.id,
    role: row.role,
  };
}

/** A bearer API token; expired and revoked tokens are refused with a message that says which. */
export async function resolveApiToken(db: Db, token: string, now = new Date()): Promise<Principal> {
  if (!token.startsWith(API_TOKEN_PREFIX))
    throw new UnauthenticatedError('That is not an Outpost API token.', 'INVALID_TOKEN');
  const [row] = await db
    .select()
    .from(apiTokens)
    .where(eq(apiTokens.tokenHash, await sha256Hex(token)))
    .limit(1);
  if (!row) throw new UnauthenticatedError('The API token is not valid.', 'INVALID_TOKEN');
  if (row.revokedAt) throw new UnauthenticatedError('The API token has been revoked.', 'TOKEN_REVOKED');
  if (row.expiresAt && row.expiresAt <= now)
    throw new UnauthenticatedError('The API token has expired.', 'TOKEN_EXPIRED');
  // Touch at most once a minute so busy automation does not write on every request.
  await db
    .update(apiTokens)
    .set({ lastUsedAt: now })
    .where(
      and(
        eq(apiTokens.id, row.id),
        sql`(${apiTokens.lastUsedAt} is null or ${apiTokens.lastUsedAt} < ${new Date(now.getTime() - 60_000)})`,
      ),
    );
  return { kind: 'token', orgId: row.orgId, userId: null, tokenId: row.id, sessionId: null, role: row.role };
}

export async function endSession(db: Db, sessionId: string): Promise<void> {
  await db
    .update(sessions)
    .set({ revokedAt: new Date() })
    .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt)));
}
