import { and, eq } from 'drizzle-orm';
import { coordinatorSites, memberships, users } from '../../db/schema/index.ts';
import { NotFoundError, ValidationError } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { loadSite } from './scope.ts';

export async function listCoordinators({ ctx, input }: { ctx: ServiceCtx; input: { siteId: string } }) {
  await loadSite(ctx, input.siteId);
  return ctx.db
    .select({ id: users.id, email: users.email, name: users.name })
    .from(coordinatorSites)
    .innerJoin(users, eq(users.id, coordinatorSites.userId))
    .where(and(eq(coordinatorSites.orgId, ctx.orgId), eq(coordinatorSites.siteId, input.siteId)));
}

/** Gives a coordinator (a member with the coordinator role) one more site to look after. */
export async function assignCoordinator({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { siteId: string; userId: string; assigned: boolean };
}) {
  return inTransaction(ctx, async (ctx) => {
    const { site } = await loadSite(ctx, input.siteId);
    const [m] = await ctx.db
      .select({ role: memberships.role })
      .from(memberships)
      .where(and(eq(memberships.orgId, ctx.orgId), eq(memberships.userId, input.userId)))
      .limit(1);
    if (!m) throw new NotFoundError('user', input.userId);
    if (input.assigned && m.role !== 'coordinator')
      throw new ValidationError('Only people with the coordinator role can be assigned to sites.');
    if (input.assigned) {
      await ctx.db
        .insert(coordinatorSites)
        .values({ orgId: ctx.orgId, userId: input.userId, siteId: site.id })
        .onConflictDoNothing();
    } else {
      await ctx.db
        .delete(coordinatorSites)
        .where(and(eq(coordinatorSites.siteId, site.id), eq(coordinatorSites.userId, input.userId)));
    }
    await recordAudit(ctx, {
      action: input.assigned ? 'site.coordinator.assign' : 'site.coordinator.unassign',
      objectType: 'site',
      objectId: site.id,
      details: { userId: input.userId },
    });
  });
}
