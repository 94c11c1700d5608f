import { and, eq, inArray, isNull } from 'drizzle-orm';
import { invites, memberships, sites, users, type Role } from '../../db/schema/index.ts';
import { ConflictError, ForbiddenError, ValidationError, fieldIssue } from '../../lib/errors.ts';
import { randomToken, sha256Hex } from '../../lib/crypto.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { canGrant } from '../auth/roles.ts';
import { DEFAULT_INVITE_DAYS, toInviteView } from './token.ts';

export interface CreateInviteInput {
  email: string;
  name?: string;
  role: Role;
  siteIds?: string[];
  language?: 'en' | 'fr' | 'pt' | null;
  expiresInDays?: number;
}

/**
 * Invites a person by e-mail. Returns the raw token once (only its hash is kept) so the caller can
 * build the link to copy or send. Someone who already belongs to the organisation needs no invite;
 * someone with an account elsewhere gets one like anybody else and accepts it by signing in — the
 * answer never says whether an account exists.
 */
export async function createInvite({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: CreateInviteInput;
  now?: Date;
}) {
  if (!canGrant(ctx.actor.role, input.role))
    throw new ForbiddenError(`Your role cannot give the ${input.role} role.`);
  const email = input.email.trim().toLowerCase();
  const siteIds = [...new Set(input.siteIds ?? [])];
  if (siteIds.length > 0 && input.role !== 'coordinator') {
    throw new ValidationError(
      'Only coordinators are given sites.',
      fieldIssue('siteIds', 'Only coordinators are given sites.'),
    );
  }
  return inTransaction(ctx, async (ctx) => {
    if (siteIds.length > 0) {
      const found = await ctx.db
        .select({ id: sites.id })
        .from(sites)
        .where(and(eq(sites.orgId, ctx.orgId), inArray(sites.id, siteIds), isNull(sites.archivedAt)));
      if (found.length !== siteIds.length) {
        const missing = siteIds.filter((id) => !found.some((f) => f.id === id));
        throw new ValidationError(
          'Some of the chosen sites do not exist.',
          fieldIssue('siteIds', `No site with id ${missing.join(', ')}.`),
        );
      }
    }
    const [member] = await ctx.db
      .select({ id: users.id })
      .from(users)
      .innerJoin(memberships, and(eq(memberships.userId, users.id), eq(memberships.orgId, ctx.orgId)))
      .where(eq(users.email, email))
      .limit(1);
    if (member) {
      const m = `${email} is already a member of this organisation.`;
      throw new ConflictError(m, fieldIssue('email', m));
    }
    const token = randomToken('inv_');
    const days = input.expiresInDays ?? DEFAULT_INVITE_DAYS;
    const [row] = await ctx.db
      .insert(invites)
      .values({
        orgId: ctx.orgId,
        email,
        name: input.name?.trim() ?? '',
        role: input.role,
        siteIds,
        language: input.language ?? null,
        tokenHash: await sha256Hex(token),
        createdBy: ctx.actor.userId,
        expiresAt: new Date(now.getTime() + days * 86_400_000),
      })
      .returning();
    await recordAudit(ctx, {
      action: 'invite.create',
      objectType: 'invite',
      objectId: row!.id,
      details: { email, role: input.role, sites: siteIds.length },
    });
    return { invite: toInviteView(row!, now), token };
  });
}
