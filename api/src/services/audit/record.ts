import { auditLog } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';

export interface AuditEntry {
  action: string;
  objectType: string;
  objectId?: string | null;
  /** Never put secrets here: tokens, passwords and hashes stay out of the audit log. */
  details?: Record<string, unknown>;
}

export async function recordAudit(ctx: ServiceCtx, entry: AuditEntry): Promise<void> {
  await ctx.db.insert(auditLog).values({
    orgId: ctx.orgId,
    actorUserId: ctx.actor.userId,
    actorTokenId: ctx.actor.tokenId,
    action: entry.action,
    objectType: entry.objectType,
    objectId: entry.objectId ?? null,
    details: entry.details ?? {},
    requestId: ctx.requestId ?? null,
  });
}
