import { and, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import {
  coordinatorSites,
  invites,
  loginAttempts,
  memberships,
  sites,
  users,
} from '../../db/schema/index.ts';
import { AppError, UnauthenticatedError, ValidationError, fieldIssue } from '../../lib/errors.ts';
import { hashPassword, verifyPassword } from '../../lib/password.ts';
import { recordAudit } from '../audit/record.ts';
import { openSession, takePasswordSlots } from '../auth/login.ts';
import { usableInvite } from './token.ts';

/** What the join page shows before the person chooses a password. */
export async function describeInvite({ db, token, now = new Date() }: { db: Db; token: string; now?: Date }) {
  const { invite, orgName } = await usableInvite(db, token, now);
  const [account] = await db
    .select({ id: users.id })
    .from(users)
    .where(eq(users.email, invite.email))
    .limit(1);
  // The person holding the link is the one invited: telling them they already have an account
  // (so they type their password rather than choose one) reveals nothing to anybody else.
  return {
    email: invite.email,
    name: invite.name,
    role: invite.role,
    organization: { name: orgName },
    sites: invite.siteIds.length,
    language: invite.language,
    expiresAt: invite.expiresAt.toISOString(),
    hasAccount: !!account,
  };
}

export interface AcceptInviteInput {
  token: string;
  password: string;
  name?: string;
  language?: 'en' | 'fr' | 'pt';
}

/**
 * Uses an invitation: a new person sets a password (and language); a person with an account
 * elsewhere proves it is them with their password. They become a member with the invited role,
 * their sites are assigned, the invite is spent, and a session is opened — all in one transaction,
 * and the invite row is locked so two clicks cannot both use it.
 */
export async function acceptInvite({
  db,
  input,
  requestId,
  clientAddress = 'unknown',
  now = new Date(),
}: {
  db: Db;
  input: AcceptInviteInput;
  requestId?: string;
  clientAddress?: string;
  now?: Date;
}) {
  const { invite } = await usableInvite(db, input.token, now);
  const [existing] = await db.select().from(users).where(eq(users.email, invite.email)).limit(1);
  if (existing) {
    // The same limits as the sign-in page: an invitation must not be a second door for guessing.
    const slots = await takePasswordSlots(db, invite.email, clientAddress, now);
    if (existing.disabledAt || !(await verifyPassword(input.password, existing.passwordHash))) {
      await db.insert(loginAttempts).values({ email: invite.email, succeeded: 0, at: now });
      throw new UnauthenticatedError(
        'That is not the password of your Outpost account. Use the password you sign in with elsewhere.',
        'INVALID_CREDENTIALS',
      );
    }
    await slots.passed();
  } else if (input.password.length < 10) {
    throw new ValidationError(
      'Use at least 10 characters.',
      fieldIssue('password', 'Use at least 10 characters.'),
    );
  }
  const passwordHash = existing ? null : await hashPassword(input.password);

  return db.transaction(async (txRaw) => {
    const tx = txRaw as unknown as Db;
    // Locks the invite: a second acceptance racing this one waits, then finds it spent.
    const [locked] = await tx.select().from(invites).where(eq(invites.id, invite.id)).for('update');
    if (!locked || locked.acceptedAt || locked.revokedAt)
      throw new AppError(
        'gone',
        'INVITE_USED',
        'This invitation has already been used. Sign in instead, or ask for a new one.',
      );
    let userId = existing?.id;
    if (!userId) {
      const [created] = await tx
        .insert(users)
        .values({
          email: invite.email,
          name: (input.name ?? invite.name).trim(),
          passwordHash: passwordHash!,
          language: input.language ?? invite.language,
        })
        .returning({ id: users.id });
      userId = created!.id;
    } else if (input.language) {
      await tx.update(users).set({ language: input.language }).where(eq(users.id, userId));
    }
    const inserted = await tx
      .insert(memberships)
      .values({ orgId: invite.orgId, userId, role: invite.role })
      .onConflictDoNothing()
      .returning();
    if (inserted.length === 0)
      throw new AppError(
        'conflict',
        'ALREADY_MEMBER',
        'You are already a member of this organisation. Sign in instead.',
      );
    if (invite.siteIds.length > 0) {
      // Sites archived or deleted since the invite was sent are skipped.
      const live = await tx
        .select({ id: sites.id })
        .from(sites)
        .where(
          and(eq(sites.orgId, invite.orgId), inArray(sites.id, invite.siteIds), isNull(sites.archivedAt)),
        );
      if (live.length > 0) {
        await tx
          .insert(coordinatorSites)
          .values(live.map((s) => ({ orgId: invite.orgId, userId: userId!, siteId: s.id })))
          .onConflictDoNothing();
      }
    }
    await tx.update(invites).set({ acceptedAt: now, acceptedBy: userId }).where(eq(invites.id, invite.id));
    const ctx = {
      db: tx,
      orgId: invite.orgId,
      actor: { userId, tokenId: null, role: invite.role },
      requestId,
    };
    await recordAudit(ctx, {
      action: 'invite.accept',
      objectType: 'invite',
      objectId: invite.id,
      details: { email: invite.email, role: invite.role, newAccount: !existing },
    });
    await tx.insert(loginAttempts).values({ email: invite.email, succeeded: 1, at: now });
    return openSession(tx, { userId, orgId: invite.orgId, role: invite.role, requestId, now });
  });
}
