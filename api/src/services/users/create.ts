import { and, eq } from 'drizzle-orm';
import { memberships, users, type Role } from '../../db/schema/index.ts';
import { AppError, ConflictError, ForbiddenError, fieldIssue } from '../../lib/errors.ts';
import { generatePassword, hashPassword } from '../../lib/password.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { canGrant } from '../auth/roles.ts';

export interface CreateUserInput {
  email: string;
  name?: string;
  role: Role;
  password?: string;
}

/**
 * Adds a person to the organisation. A new account gets the given password or a generated one,
 * returned once (so the admin can pass it on). An address that already has an account (in another
 * organisation) must be invited instead (services/invites).
 */
export async function createUser({ ctx, input }: { ctx: ServiceCtx; input: CreateUserInput }) {
  if (!canGrant(ctx.actor.role, input.role))
    throw new ForbiddenError(`Your role cannot give the ${input.role} role.`);
  const email = input.email.trim().toLowerCase();
  const generated = input.password ? null : generatePassword();
  const passwordHash = await hashPassword(input.password ?? generated!);
  return inTransaction(ctx, async (ctx) => {
    let [user] = await ctx.db.select().from(users).where(eq(users.email, email)).limit(1);
    let initialPassword: string | null;
    if (!user) {
      [user] = await ctx.db
        .insert(users)
        .values({ email, name: input.name ?? '', passwordHash })
        .returning();
      initialPassword = generated;
    } else {
      const [existing] = await ctx.db
        .select()
        .from(memberships)
        .where(and(eq(memberships.orgId, ctx.orgId), eq(memberships.userId, user.id)))
        .limit(1);
      if (existing) {
        const m = `${email} is already a member of this organisation.`;
        throw new ConflictError(m, fieldIssue('email', m));
      }
      // An account of another organisation is never added without the person's consent (nor is its
      // name shown): they are sent an invitation and accept it by signing in.
      const m =
        'This address cannot be added directly. Send an invitation instead: the person accepts it themselves.';
      throw new AppError('conflict', 'INVITE_REQUIRED', m, fieldIssue('email', m));
    }
    const [m] = await ctx.db
      .insert(memberships)
      .values({ orgId: ctx.orgId, userId: user!.id, role: input.role })
      .returning();
    await recordAudit(ctx, {
      action: 'user.add',
      objectType: 'user',
      objectId: user!.id,
      details: { email, role: input.role },
    });
    return {
      user: {
        id: user!.id,
        email: user!.email,
        name: user!.name,
        role: m!.role,
        createdAt: m!.createdAt.toISOString(),
      },
      initialPassword,
    };
  });
}
