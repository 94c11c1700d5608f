import { and, eq, isNull, ne } from 'drizzle-orm';
import { sessions, users } from '../../db/schema/index.ts';
import { AppError, ForbiddenError } from '../../lib/errors.ts';
import { hashPassword, verifyPassword } from '../../lib/password.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';

/**
 * A person changes their own password. Every other session of theirs ends (a stolen session
 * should not survive the change); the current one stays.
 */
export async function changePassword({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { currentSessionId: string | null; currentPassword: string; newPassword: string };
}) {
  if (!ctx.actor.userId) throw new ForbiddenError('An API token has no password; sign in as a person.');
  const [user] = await ctx.db.select().from(users).where(eq(users.id, ctx.actor.userId)).limit(1);
  if (!user || !(await verifyPassword(input.currentPassword, user.passwordHash))) {
    throw new AppError('invalid', 'VALIDATION_FAILED', 'The current password is wrong.', [
      { path: 'currentPassword', message: 'The current password is wrong.' },
    ]);
  }
  if (input.currentPassword === input.newPassword) {
    throw new AppError('invalid', 'VALIDATION_FAILED', 'Choose a password different from the current one.', [
      { path: 'newPassword', message: 'Choose a different password.' },
    ]);
  }
  const passwordHash = await hashPassword(input.newPassword);
  await inTransaction(ctx, async (ctx) => {
    await ctx.db.update(users).set({ passwordHash }).where(eq(users.id, user.id));
    await ctx.db
      .update(sessions)
      .set({ revokedAt: new Date() })
      .where(
        and(
          eq(sessions.userId, user.id),
          isNull(sessions.revokedAt),
          input.currentSessionId ? ne(sessions.id, input.currentSessionId) : undefined,
        ),
      );
    await recordAudit(ctx, { action: 'user.password', objectType: 'user', objectId: user.id });
  });
}
