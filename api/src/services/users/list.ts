import { and, asc, eq } from 'drizzle-orm';
import { memberships, users, type Role } from '../../db/schema/index.ts';
import { decodeCursor } from '../../lib/cursor.ts';
import type { ServiceCtx } from '../context.ts';
import { afterCursor, keysetPage, timeCursor } from '../keyset.ts';

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
  const { rows, nextCursor } = await keysetPage(
    input.limit,
    (take) =>
      ctx.db
        .select(userColumns)
        .from(memberships)
        .innerJoin(users, eq(users.id, memberships.userId))
        .where(and(eq(memberships.orgId, ctx.orgId), afterCursor(c, memberships.createdAt, users.id, 'asc')))
        .orderBy(asc(memberships.createdAt), asc(users.id))
        .limit(take),
    (last) => timeCursor(last.createdAt, last.id),
  );
  return { items: rows.map(toUserView), nextCursor };
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
