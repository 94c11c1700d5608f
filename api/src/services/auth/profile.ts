import { eq } from 'drizzle-orm';
import { users } from '../../db/schema/index.ts';
import { ForbiddenError } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';

/** A person changes their own name or language (API tokens have no person to change). */
export async function updateProfile({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { name?: string; language?: 'en' | 'fr' | 'pt' };
}) {
  const userId = ctx.actor.userId;
  if (!userId) throw new ForbiddenError('An API token has no profile to change.');
  const set: Partial<typeof users.$inferInsert> = {};
  if (input.name !== undefined) set.name = input.name;
  if (input.language !== undefined) set.language = input.language;
  if (Object.keys(set).length === 0) return;
  await inTransaction(ctx, async (ctx) => {
    await ctx.db.update(users).set(set).where(eq(users.id, userId));
    await recordAudit(ctx, {
      action: 'user.profile',
      objectType: 'user',
      objectId: userId,
      details: { fields: Object.keys(set) },
    });
  });
}
