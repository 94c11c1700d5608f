import { and, asc, eq } from 'drizzle-orm';
import { blackoutDates } from '../../db/schema/index.ts';
import { NotFoundError } from '../../lib/errors.ts';
import { recordAudit } from '../audit/record.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';

const view = (b: typeof blackoutDates.$inferSelect) => ({
  id: b.id,
  startsOn: b.startsOn,
  endsOn: b.endsOn,
  reason: b.reason,
  createdAt: b.createdAt.toISOString(),
});

export async function listBlackouts({ ctx }: { ctx: ServiceCtx }) {
  return (
    await ctx.db
      .select()
      .from(blackoutDates)
      .where(eq(blackoutDates.orgId, ctx.orgId))
      .orderBy(asc(blackoutDates.startsOn))
  ).map(view);
}

export async function addBlackout({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { startsOn: string; endsOn: string; reason: string };
}) {
  return inTransaction(ctx, async (ctx) => {
    const [b] = await ctx.db
      .insert(blackoutDates)
      .values({ orgId: ctx.orgId, ...input, createdBy: ctx.actor.userId })
      .returning();
    await recordAudit(ctx, {
      action: 'blackout.add',
      objectType: 'blackout_date',
      objectId: b!.id,
      details: input,
    });
    return view(b!);
  });
}

export async function deleteBlackout({ ctx, input }: { ctx: ServiceCtx; input: { id: string } }) {
  return inTransaction(ctx, async (ctx) => {
    const gone = await ctx.db
      .delete(blackoutDates)
      .where(and(eq(blackoutDates.orgId, ctx.orgId), eq(blackoutDates.id, input.id)))
      .returning();
    if (!gone.length) throw new NotFoundError('blackout date', input.id);
    await recordAudit(ctx, {
      action: 'blackout.delete',
      objectType: 'blackout_date',
      objectId: input.id,
      details: { startsOn: gone[0]!.startsOn, endsOn: gone[0]!.endsOn },
    });
  });
}
