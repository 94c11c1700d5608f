import { eq } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { invites, organizations } from '../../db/schema/index.ts';
import { AppError } from '../../lib/errors.ts';
import { sha256Hex } from '../../lib/crypto.ts';

export type InviteRow = typeof invites.$inferSelect;

/** Days an invite stays usable unless the admin says otherwise. */
export const DEFAULT_INVITE_DAYS = 7;

/** The path of the join page; the token travels in the fragment, so it never reaches a server log or a Referer. */
export function inviteLink(base: string, token: string): string {
  return `${base.replace(/\/+$/, '')}/join#${token}`;
}

/**
 * The invite a link's token opens, if it can still be used. A token that matches nothing is a 404;
 * one that was used, withdrawn or expired is 410 with a code saying which, so the join page says so plainly.
 */
export async function usableInvite(db: Db, token: string, now = new Date()) {
  const [row] = await db
    .select({ invite: invites, orgName: organizations.name })
    .from(invites)
    .innerJoin(organizations, eq(organizations.id, invites.orgId))
    .where(eq(invites.tokenHash, await sha256Hex(token)))
    .limit(1);
  if (!row)
    throw new AppError(
      'not-found',
      'INVITE_NOT_FOUND',
      'This invitation link is not valid. Check that it was copied whole, or ask for a new one.',
    );
  const { invite } = row;
  if (invite.acceptedAt)
    throw new AppError(
      'gone',
      'INVITE_USED',
      'This invitation has already been used. Sign in instead, or ask for a new one.',
    );
  if (invite.revokedAt)
    throw new AppError(
      'gone',
      'INVITE_REVOKED',
      'This invitation was withdrawn. Ask the person who sent it for a new one.',
    );
  if (invite.expiresAt.getTime() <= now.getTime())
    throw new AppError(
      'gone',
      'INVITE_EXPIRED',
      'This invitation has expired. Ask the person who sent it for a new one.',
    );
  return row;
}

export function inviteStatus(i: InviteRow, now = new Date()): 'pending' | 'accepted' | 'revoked' | 'expired' {
  if (i.acceptedAt) return 'accepted';
  if (i.revokedAt) return 'revoked';
  return i.expiresAt.getTime() <= now.getTime() ? 'expired' : 'pending';
}

export function toInviteView(i: InviteRow, now = new Date()) {
  return {
    id: i.id,
    email: i.email,
    name: i.name,
    role: i.role,
    siteIds: i.siteIds,
    language: i.language,
    status: inviteStatus(i, now),
    createdAt: i.createdAt.toISOString(),
    expiresAt: i.expiresAt.toISOString(),
    acceptedAt: i.acceptedAt?.toISOString() ?? null,
  };
}
