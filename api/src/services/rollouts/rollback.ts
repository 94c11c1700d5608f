import { and, eq, sql } from 'drizzle-orm';
import { releases, rollouts, rolloutTargets, sites } from '../../db/schema/index.ts';
import { AppError } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { cancelLocked } from './controls.ts';
import { createRollout } from './create.ts';
import { recordRolloutEvent } from './events.ts';
import { loadRollout } from './view.ts';

/**
 * Roll back: a new rollout of the previous release to exactly the sites that installed this one.
 * The previous release is the one most of those sites ran before (recorded when they were planned),
 * unless one is given. The rollout being undone is cancelled first if it is still live, so its
 * sites are free. One wave, starting now, with the original's policy.
 */
export async function rollbackRollout({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: { id: string; releaseId?: string; deadlineHours?: number };
  now?: Date;
}) {
  return inTransaction(ctx, async (ctx) => {
    await loadRollout(ctx, input.id);
    const [r] = await ctx.db
      .select()
      .from(rollouts)
      .where(and(eq(rollouts.orgId, ctx.orgId), eq(rollouts.id, input.id)))
      .for('update');
    const installed = await ctx.db
      .select({ siteId: rolloutTargets.siteId, code: sites.code, from: rolloutTargets.fromReleaseId })
      .from(rolloutTargets)
      .innerJoin(sites, eq(sites.id, rolloutTargets.siteId))
      .where(and(eq(rolloutTargets.rolloutId, r!.id), eq(rolloutTargets.state, 'installed')));
    if (!installed.length)
      throw new AppError(
        'unprocessable',
        'NOTHING_TO_ROLL_BACK',
        "No site installed this rollout's release, so there is nothing to roll back.",
      );
    let releaseId = input.releaseId;
    if (!releaseId) {
      const tally = new Map<string, number>();
      for (const t of installed)
        if (t.from && t.from !== r!.releaseId) tally.set(t.from, (tally.get(t.from) ?? 0) + 1);
      releaseId = [...tally.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
      if (!releaseId)
        throw new AppError(
          'unprocessable',
          'NO_PREVIOUS_RELEASE',
          'The sites reported no earlier release when they were planned; name the release to roll back to.',
        );
    }
    if (releaseId === r!.releaseId)
      throw new AppError(
        'unprocessable',
        'SAME_RELEASE',
        'Roll back to another release than the one being undone.',
      );
    if (['scheduled', 'running', 'paused', 'draft'].includes(r!.state))
      await cancelLocked(ctx, r!, 'cancelled to roll back', now);
    const [prev] = await ctx.db
      .select({ version: releases.version })
      .from(releases)
      .where(and(eq(releases.orgId, ctx.orgId), eq(releases.id, releaseId)))
      .limit(1);
    const hours = input.deadlineHours ?? 72;
    const created = await createRollout({
      ctx,
      now,
      input: {
        name: `Roll back "${r!.name}" to ${prev?.version ?? 'the previous release'}`.slice(0, 200),
        releaseId,
        draft: false,
        policy: { ...r!.policy, autoAdvance: true },
        waves: [
          {
            name: 'Roll back',
            selector: { siteCodes: installed.map((t) => t.code) },
            startsAt: now.toISOString(),
            deadlineAt: new Date(now.getTime() + hours * 3_600_000).toISOString(),
          },
        ],
      },
    });
    await ctx.db.update(rollouts).set({ rollbackOf: r!.id }).where(eq(rollouts.id, created.id));
    await recordRolloutEvent(
      ctx,
      {
        rolloutId: r!.id,
        kind: 'rolled_back',
        reason: `rollback rollout ${created.id} for ${installed.length} site(s)`,
      },
      now,
    );
    void sql;
    return { ...created, rollbackOf: r!.id, releaseId };
  });
}
