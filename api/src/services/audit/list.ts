import { and, desc, eq, lt, or } from 'drizzle-orm';
import { auditLog, users } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { decodeCursor, encodeCursor } from '../../lib/cursor.ts';

export async function listAudit({ ctx, input }: { ctx: ServiceCtx; input: { limit: number; cursor?: string } }) {
  const c = input.cursor ? decodeCursor(input.cursor) : null;
  const rows = await ctx.db
    .select({
      id: auditLog.id, action: auditLog.action, objectType: auditLog.objectType, objectId: auditLog.objectId,
      details: auditLog.details, at: auditLog.at, actorUserId: auditLog.actorUserId, actorTokenId: auditLog.actorTokenId,
      actorEmail: users.email, requestId: auditLog.requestId,
    })
    .from(auditLog)
    .leftJoin(users, eq(users.id, auditLog.actorUserId))
    .where(and(
      eq(auditLog.orgId, ctx.orgId),
      c ? or(lt(auditLog.at, new Date(c.t)), and(eq(auditLog.at, new Date(c.t)), lt(auditLog.id, c.id))) : undefined,
    ))
    .orderBy(desc(auditLog.at), desc(auditLog.id))
    .limit(input.limit + 1);
  const page = rows.slice(0, input.limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => ({ ...r, at: r.at.toISOString() })),
    nextCursor: rows.length > input.limit && last ? encodeCursor({ t: last.at.toISOString(), id: last.id }) : null,
  };
}
