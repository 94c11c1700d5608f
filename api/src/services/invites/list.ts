import { and, desc, eq, isNull } from 'drizzle-orm';
import { invites } from '../../db/schema/index.ts';
import { NotFoundError } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { toInviteView } from './token.ts';

/** The organisation's invitations, newest first (the last 200: older ones are history). */
export async function listInvites({ ctx, now = new Date() }: { ctx: ServiceCtx; now?: Date }) {
  const rows = await ctx.db
    .select()
    .from(invites)
    .where(eq(invites.orgId, ctx.orgId))
    .orderBy(desc(invites.createdAt))
    .limit(200);
  return { items: rows.map((r) => toInviteView(r, now)) };
}

/** Withdraws an invitation that was not used yet; its link stops working. */
export async function revokeInvite({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: { id: string };
  now?: Date;
}) {
  return inTransaction(ctx, async (ctx) => {
    const [row] = await ctx.db
      .update(invites)
      .set({ revokedAt: now })
      .where(
        and(
          eq(invites.orgId, ctx.orgId),
          eq(invites.id, input.id),
          isNull(invites.acceptedAt),
          isNull(invites.revokedAt),
        ),
      )
      .returning();
    if (!row) {
      const [exists] = await ctx.db
        .select({ id: invites.id })
        .from(invites)
        .where(and(eq(invites.orgId, ctx.orgId), eq(invites.id, input.id)));
      if (!exists) throw new NotFoundError('invite', input.id);
      return;
    }
    await recordAudit(ctx, {
      action: 'invite.revoke',
      objectType: 'invite',
      objectId: row.id,
      details: { email: row.email },
    });
  });
}
