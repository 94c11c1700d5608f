import { and, desc, eq, gte, like, lt, or, sql } from 'drizzle-orm';
import { auditLog, users } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { decodeCursor } from '../../lib/cursor.ts';
import { afterCursor, keysetPage, timeCursor } from '../keyset.ts';

export interface AuditQuery {
  limit: number;
  cursor?: string;
  /** Only what this person did (a user id). */
  actor?: string;
  /** Only this kind of change: the part of the action before the first dot ("site", "release", …). */
  kind?: string;
  /** From this instant (inclusive) … */
  from?: string;
  /** … to this instant (exclusive). */
  to?: string;
}

// A readable name for the object: the site's code, the release's version, the person's e-mail.
// object_id is text (some objects have no uuid), hence the casts.
const objectLabel = sql<string | null>`case ${auditLog.objectType}
  when 'site' then (select s.code || ' · ' || s.name from sites s where s.id::text = ${auditLog.objectId} and s.org_id = ${auditLog.orgId})
  when 'release' then (select r.version from releases r where r.id::text = ${auditLog.objectId} and r.org_id = ${auditLog.orgId})
  when 'user' then (select u.email from users u where u.id::text = ${auditLog.objectId})
  when 'invite' then (select i.email from invites i where i.id::text = ${auditLog.objectId} and i.org_id = ${auditLog.orgId})
  when 'api_token' then (select t.name from api_tokens t where t.id::text = ${auditLog.objectId} and t.org_id = ${auditLog.orgId})
  else null end`;

export async function listAudit({ ctx, input }: { ctx: ServiceCtx; input: AuditQuery }) {
  const c = input.cursor ? decodeCursor(input.cursor) : null;
  const { rows, nextCursor } = await keysetPage(
    input.limit,
    (take) =>
      ctx.db
        .select({
          id: auditLog.id,
          action: auditLog.action,
          objectType: auditLog.objectType,
          objectId: auditLog.objectId,
          details: auditLog.details,
          at: auditLog.at,
          actorUserId: auditLog.actorUserId,
          actorTokenId: auditLog.actorTokenId,
          actorEmail: users.email,
          actorName: users.name,
          requestId: auditLog.requestId,
          objectLabel,
        })
        .from(auditLog)
        .leftJoin(users, eq(users.id, auditLog.actorUserId))
        .where(
          and(
            eq(auditLog.orgId, ctx.orgId),
            input.actor ? eq(auditLog.actorUserId, input.actor) : undefined,
            input.kind
              ? or(
                  eq(auditLog.action, input.kind),
                  like(auditLog.action, `${input.kind.replace(/[\\%_]/g, '\\$&')}.%`),
                )
              : undefined,
            input.from ? gte(auditLog.at, new Date(input.from)) : undefined,
            input.to ? lt(auditLog.at, new Date(input.to)) : undefined,
            afterCursor(c, auditLog.at, auditLog.id, 'desc'),
          ),
        )
        .orderBy(desc(auditLog.at), desc(auditLog.id))
        .limit(take),
    (last) => timeCursor(last.at, last.id),
  );
  return { items: rows.map((r) => ({ ...r, at: r.at.toISOString() })), nextCursor };
}

/** The people who appear in the organisation's audit log, for the "who" filter. */
export async function auditActors({ ctx }: { ctx: ServiceCtx }) {
  const rows = await ctx.db
    .selectDistinct({ id: users.id, email: users.email, name: users.name })
    .from(auditLog)
    .innerJoin(users, eq(users.id, auditLog.actorUserId))
    .where(eq(auditLog.orgId, ctx.orgId))
    .orderBy(users.email)
    .limit(500);
  return { items: rows };
}
