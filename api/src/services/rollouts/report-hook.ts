import { and, eq, sql } from 'drizzle-orm';
import { releases, rollouts, rolloutTargets, rolloutWaves } from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import { signalOfReport, targetNext } from './machine.ts';

/**
 * A receipt (code, file or manual report) moves the site's target in its live rollout, in the
 * caller's transaction. Heartbeats do the same inside the grouped check-in statement
 * (services/sites/checkin.ts), with the same rules written in SQL.
 */
export async function applyReportToTarget(
  db: Db,
  r: { siteId: string; source: string; version: string | null; status: string; at: Date },
) {
  const [t] = await db
    .select({
      id: rolloutTargets.id,
      state: rolloutTargets.state,
      healthy: rolloutTargets.healthy,
      version: releases.version,
    })
    .from(rolloutTargets)
    .innerJoin(rolloutWaves, eq(rolloutWaves.id, rolloutTargets.waveId))
    .innerJoin(rollouts, eq(rollouts.id, rolloutTargets.rolloutId))
    .innerJoin(releases, eq(releases.id, rollouts.releaseId))
    .where(
      and(
        eq(rolloutTargets.siteId, r.siteId),
        eq(rolloutTargets.active, true),
        sql`${rolloutWaves.state} not in ('pending', 'preparing', 'cancelled')`,
      ),
    )
    .limit(1);
  if (!t) return null;
  const signal = signalOfReport(r, t.version);
  if (!signal) return null;
  const next = targetNext(t.state, signal);
  // A receipt "installed" means the installer's self-check passed: healthy.
  const healthy =
    next === 'installed' || (next === null && t.state === 'installed') ? r.status !== 'degraded' : false;
  if (!next && healthy === t.healthy) return null;
  await db
    .update(rolloutTargets)
    .set({
      state: next ?? t.state,
      healthy,
      reason: `${r.source.replace('_', ' ')}: ${r.status}`,
      stateChangedAt: r.at,
    })
    .where(eq(rolloutTargets.id, t.id));
  return next ?? t.state;
}
