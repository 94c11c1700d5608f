import { rolloutEvents } from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import { recordAudit } from '../audit/record.ts';
import type { ServiceCtx } from '../context.ts';

export interface RolloutEventInput {
  rolloutId: string;
  waveId?: string | null;
  siteId?: string | null;
  kind: string;
  from?: string | null;
  to?: string | null;
  reason?: string | null;
}

/**
 * A transition of a rollout or a wave: on the rollout's timeline and in the audit log, with who
 * (a person, a token, or the scheduler) and why. Target transitions are many and come from site
 * reports, which are themselves kept (site_reports); they carry their reason on the target row.
 */
export async function recordRolloutEvent(ctx: ServiceCtx, e: RolloutEventInput, at: Date) {
  const actor = ctx.actor.userId ? 'user' : ctx.actor.tokenId ? 'token' : 'scheduler';
  await ctx.db.insert(rolloutEvents).values({
    orgId: ctx.orgId,
    rolloutId: e.rolloutId,
    waveId: e.waveId ?? null,
    siteId: e.siteId ?? null,
    kind: e.kind,
    from: e.from ?? null,
    to: e.to ?? null,
    reason: e.reason ?? null,
    actorUserId: ctx.actor.userId,
    actor,
    at,
  });
  await recordAudit(ctx, {
    action: `rollout.${e.kind}`,
    objectType: e.waveId ? 'rollout_wave' : 'rollout',
    objectId: e.waveId ?? e.rolloutId,
    details: {
      rolloutId: e.rolloutId,
      from: e.from ?? null,
      to: e.to ?? null,
      reason: e.reason ?? null,
      ...(e.siteId ? { siteId: e.siteId } : {}),
    },
  });
}

/** The scheduler acts as nobody in particular: its context names no user and no token. */
export function schedulerCtx(db: Db, orgId: string): ServiceCtx {
  return { db, orgId, actor: { userId: null, tokenId: null, role: 'owner' } };
}
