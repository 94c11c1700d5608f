import { and, eq, ne, count } from 'drizzle-orm';
import { memberships, users, type Role } from '../../db/schema/index.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { canGrant } from '../auth/roles.ts';
import { userColumns, toUserView } from './list.ts';

async function membershipOf(ctx: ServiceCtx, userId: string) {
  const [row] = await ctx.db
    .select(userColumns)
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.orgId, ctx.orgId), eq(memberships.userId, userId)))
    .limit(1);
  // Another organisation's user is indistinguishable from no user at all.
  if (!row) throw new NotFoundError('user', userId);
  return row;
}

async function assertNotLastOwner(ctx: ServiceCtx, userId: string) {
  const [{ n } = { n: 0 }] = await ctx.db
    .select({ n: count() })
    .from(memberships)
    .where(
      and(eq(memberships.orgId, ctx.orgId), eq(memberships.role, 'owner'), ne(memberships.userId, userId)),
    );
  if (n === 0) throw new ConflictError('An organisation needs at least one owner.');
}

export async function updateUserRole({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { userId: string; role: Role };
}) {
  return inTransaction(ctx, async (ctx) => {
    const current = await membershipOf(ctx, input.userId);
    if (!canGrant(ctx.actor.role, input.role) || (current.role === 'owner' && ctx.actor.role !== 'owner')) {
      throw new ForbiddenError('Your role cannot make this change.');
    }
    if (current.role === 'owner' && input.role !== 'owner') await assertNotLastOwner(ctx, input.userId);
    await ctx.db
      .update(memberships)
      .set({ role: input.role })
      .where(and(eq(memberships.orgId, ctx.orgId), eq(memberships.userId, input.userId)));
    await recordAudit(ctx, {
      action: 'user.role',
      objectType: 'user',
      objectId: input.userId,
      details: { from: current.role, to: input.role },
    });
    return toUserView({ ...current, role: input.role });
  });
}

export async function removeUser({ ctx, input }: { ctx: ServiceCtx; input: { userId: string } }) {
  return inTransaction(ctx, async (ctx) => {
    const current = await membershipOf(ctx, input.userId);
    if (current.role === 'owner' && ctx.actor.role !== 'owner')
      throw new ForbiddenError('Only an owner can remove an owner.');
    if (current.role === 'owner') await assertNotLastOwner(ctx, input.userId);
    await ctx.db
      .delete(memberships)
      .where(and(eq(memberships.orgId, ctx.orgId), eq(memberships.userId, input.userId)));
    await recordAudit(ctx, {
      action: 'user.remove',
      objectType: 'user',
      objectId: input.userId,
      details: { email: current.email },
    });
  });
}
