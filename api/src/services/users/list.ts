import { and, asc, eq, gt, or } from 'drizzle-orm';
import { memberships, users, type Role } from '../../db/schema/index.ts';
import { decodeCursor, encodeCursor } from '../../lib/cursor.ts';
import type { ServiceCtx } from '../context.ts';

export const userColumns = {
  id: users.id,
  email: users.email,
  name: users.name,
  role: memberships.role,
  createdAt: memberships.createdAt,
  disabled: users.disabledAt,
};

export async function listUsers({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { limit: number; cursor?: string };
}) {
  const c = input.cursor ? decodeCursor(input.cursor) : null;
  const rows = await ctx.db
    .select(userColumns)
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(
      and(
        eq(memberships.orgId, ctx.orgId),
        c
          ? or(
              gt(memberships.createdAt, new Date(c.t)),
              and(eq(memberships.createdAt, new Date(c.t)), gt(users.id, c.id)),
            )
          : undefined,
      ),
    )
    .orderBy(asc(memberships.createdAt), asc(users.id))
    .limit(input.limit + 1);
  const page = rows.slice(0, input.limit);
  const last = page.at(-1);
  return {
    items: page.map(toUserView),
    nextCursor:
      rows.length > input.limit && last
        ? encodeCursor({ t: last.createdAt.toISOString(), id: last.id })
        : null,
  };
}

export function toUserView(r: {
  id: string;
  email: string;
  name: string;
  role: Role;
  createdAt: Date;
  disabled: Date | null;
}) {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    role: r.role,
    createdAt: r.createdAt.toISOString(),
    disabled: r.disabled !== null,
  };
}
