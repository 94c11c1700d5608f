import { sql } from 'drizzle-orm';
import { rollouts, rolloutWaves } from '../../db/schema/index.ts';
import { AppError, ConflictError, isUniqueViolation } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import type { CreateRolloutInput } from './input.ts';
import { activeConflicts, assignWaves, checkSchedule, loadPlanSites, loadRolloutRelease } from './plan.ts';
import { recordRolloutEvent } from './events.ts';

export function conflictError(
  conflicts: { siteId: string; rolloutName: string }[],
  codeOf: (id: string) => string,
) {
  return new ConflictError(
    `${conflicts.length === 1 ? `Site ${codeOf(conflicts[0]!.siteId)} is` : `${conflicts.length} sites are`} already in another rollout that is scheduled, running or paused; a site is in one rollout at a time. Exclude ${conflicts.length === 1 ? 'it' : 'them'}, or finish or cancel the other rollout first.`,
    conflicts
      .slice(0, 100)
      .map((c) => ({ path: 'waves', siteCode: codeOf(c.siteId), message: `In rollout "${c.rolloutName}"` })),
  );
}

/** Writes the targets of a plan: one statement, the rows travelling as one JSON parameter. */
export async function insertTargets(
  ctx: ServiceCtx,
  rolloutId: string,
  rows: {
    waveId: string;
    siteId: string;
    state: string;
    fromReleaseId: string | null;
    reason: string | null;
  }[],
  active: boolean,
  at: Date,
) {
  for (let i = 0; i < rows.length; i += 20_000) {
    const part = JSON.stringify(
      rows
        .slice(i, i + 20_000)
        .map((r) => ({ w: r.waveId, s: r.siteId, st: r.state, f: r.fromReleaseId, r: r.reason })),
    );
    await ctx.db.execute(sql`
      insert into rollout_targets (org_id, rollout_id, wave_id, site_id, state, active, from_release_id, reason, state_changed_at)
      select ${ctx.orgId}::uuid, ${rolloutId}::uuid, x.w, x.s, x.st, ${active} and x.st <> 'skipped', x.f, x.r, ${at.toISOString()}::timestamptz
      from json_to_recordset(${part}::json) as x(w uuid, s uuid, st text, f uuid, r text)`);
  }
}

/**
 * Creates a rollout from a plan and, unless it is a draft, schedules it: its sites are reserved
 * (a site is in at most one scheduled, running or paused rollout — a unique index holds that even
 * against a concurrent create) and the scheduler opens the waves when they are due. All or nothing.
 */
export async function createRollout({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: CreateRolloutInput;
  now?: Date;
}) {
  return inTransaction(ctx, async (ctx) => {
    const release = await loadRolloutRelease(ctx, input.releaseId);
    checkSchedule(input.waves, now);
    const seed = input.seed ?? crypto.randomUUID().slice(0, 8);
    const all = await loadPlanSites(ctx);
    const { waves, unknownCodes } = assignWaves(all, input.waves, seed);
    if (unknownCodes.length) {
      throw new AppError(
        'unprocessable',
        'UNKNOWN_SITES',
        `No site with code ${unknownCodes.slice(0, 5).join(', ')}${unknownCodes.length > 5 ? ` and ${unknownCodes.length - 5} more` : ''} in this organisation.`,
        unknownCodes
          .slice(0, 100)
          .map((c) => ({ path: 'waves.selector.siteCodes', message: `Unknown site ${c}` })),
      );
    }
    const empty = waves.filter((w) => w.sites.length === 0);
    if (empty.length) {
      throw new AppError(
        'unprocessable',
        'WAVE_EMPTY',
        `Wave "${empty[0]!.name}" selects no site: every site it matches is in an earlier wave, excluded, or none matches.`,
        empty.map((w) => ({ path: `waves.${w.position}.selector`, message: 'Selects no site' })),
      );
    }
    const codeOf = new Map(all.map((s) => [s.id, s.code]));
    // Sites already on the release are kept as skipped and reserve nothing.
    const siteIds = waves.flatMap((w) =>
      w.sites.filter((s) => s.reportedReleaseId !== release.release.id).map((s) => s.id),
    );
    if (!input.draft) {
      const conflicts = await activeConflicts(ctx, siteIds);
      if (conflicts.length) throw conflictError(conflicts, (id) => codeOf.get(id) ?? id);
    }
    const state = input.draft ? ('draft' as const) : ('scheduled' as const);
    const [rollout] = await ctx.db
      .insert(rollouts)
      .values({
        orgId: ctx.orgId,
        name: input.name,
        releaseId: release.release.id,
        state,
        policy: input.policy,
        seed,
        createdBy: ctx.actor.userId,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    const waveRows = await ctx.db
      .insert(rolloutWaves)
      .values(
        waves.map((w) => ({
          orgId: ctx.orgId,
          rolloutId: rollout!.id,
          position: w.position,
          name: w.name,
          selector: w.selector,
          startsAt: w.startsAt,
          deadlineAt: w.deadlineAt,
        })),
      )
      .returning({ id: rolloutWaves.id, position: rolloutWaves.position });
    const waveId = new Map(waveRows.map((w) => [w.position, w.id]));
    const rows = waves.flatMap((w) =>
      w.sites.map((s) => {
        const already = s.reportedReleaseId === release.release.id;
        return {
          waveId: waveId.get(w.position)!,
          siteId: s.id,
          state: already ? 'skipped' : 'pending',
          fromReleaseId: s.reportedReleaseId,
          reason: already ? 'already on the release' : null,
        };
      }),
    );
    try {
      await insertTargets(ctx, rollout!.id, rows, !input.draft, now);
    } catch (e) {
      // Another rollout reserved one of these sites between our check and our write.
      if (isUniqueViolation(e))
        throw new ConflictError('Some of these sites were just reserved by another rollout. Preview again.');
      throw e;
    }
    await recordRolloutEvent(
      ctx,
      {
        rolloutId: rollout!.id,
        kind: 'created',
        to: state,
        reason: `${release.release.version} to ${rows.length} sites in ${waves.length} wave(s)`,
      },
      now,
    );
    return { id: rollout!.id, state, seed, sites: rows.length };
  });
}
