import { and, eq } from 'drizzle-orm';
import { releases, rollouts, rolloutTargets, rolloutWaves } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { loadSite } from '../sites/scope.ts';

/**
 * The live rollout a site is part of, as the people at the site need it: which release, its wave's
 * start and deadline, and where the site stands. Readable by anyone who sees the site (coordinators
 * included, who do not see rollouts themselves), so it names no rollout id and no other site.
 */
export async function siteRollout({ ctx, input }: { ctx: ServiceCtx; input: { siteId: string } }) {
  const { site } = await loadSite(ctx, input.siteId);
  const [row] = await ctx.db
    .select({
      name: rollouts.name,
      state: rollouts.state,
      version: releases.version,
      wave: rolloutWaves.name,
      waveState: rolloutWaves.state,
      startsAt: rolloutWaves.startsAt,
      deadlineAt: rolloutWaves.deadlineAt,
      targetState: rolloutTargets.state,
    })
    .from(rolloutTargets)
    .innerJoin(rollouts, eq(rollouts.id, rolloutTargets.rolloutId))
    .innerJoin(rolloutWaves, eq(rolloutWaves.id, rolloutTargets.waveId))
    .innerJoin(releases, eq(releases.id, rollouts.releaseId))
    .where(
      and(
        eq(rolloutTargets.siteId, site.id),
        eq(rolloutTargets.orgId, ctx.orgId),
        eq(rolloutTargets.active, true),
      ),
    )
    .limit(1);
  return {
    rollout: row
      ? {
          name: row.name,
          state: row.state,
          version: row.version,
          wave: row.wave,
          waveState: row.waveState,
          startsAt: row.startsAt.toISOString(),
          deadlineAt: row.deadlineAt.toISOString(),
          targetState: row.targetState,
        }
      : null,
  };
}
