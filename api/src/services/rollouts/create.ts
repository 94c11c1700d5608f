import { sql, type SQL } from 'drizzle-orm';
import { rollouts, rolloutWaves } from '../../db/schema/index.ts';
import { AppError, ConflictError, isUniqueViolation } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import type { CreateRolloutInput } from './input.ts';
import { checkSchedule, loadRolloutRelease } from './plan.ts';
import { noJit, planSites, resolveWaves } from './resolve.ts';
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

/**
 * Writes the targets of a plan in one `insert … select` from the sites themselves (the wave of each
 * site is `waveOf`), so no row travels to Node and back. Sites already on the release are kept as
 * skipped and reserve nothing. Answers how many targets it wrote.
 */
export async function insertTargets(
  ctx: ServiceCtx,
  { rolloutId, releaseId, waveOf }: { rolloutId: string; releaseId: string; waveOf: SQL },
  active: boolean,
  at: Date,
) {
  const result = await ctx.db.execute(sql`
    with ins as (
      insert into rollout_targets (org_id, rollout_id, wave_id, site_id, state, active, from_release_id, reason, state_changed_at)
      select ${ctx.orgId}::uuid, ${rolloutId}::uuid, w.id, p.id,
        case when p.already then 'skipped' else 'pending' end, ${active} and not p.already, p.reported_release_id,
        case when p.already then 'already on the release' end, ${at.toISOString()}::timestamptz
      from (select s.id, s.reported_release_id, coalesce(s.reported_release_id = ${releaseId}::uuid, false) as already,
              ${waveOf} as wave
            from sites s where ${planSites(ctx)}) p
      join rollout_waves w on w.rollout_id = ${rolloutId}::uuid and w.position = p.wave
      returning 1
    )
    select count(*)::int as n from ins`);
  return (result as unknown as { rows: { n: number }[] }).rows[0]!.n;
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
    await noJit(ctx);
    const release = await loadRolloutRelease(ctx, input.releaseId);
    checkSchedule(input.waves, now);
    const seed = input.seed ?? crypto.randomUUID().slice(0, 8);
    const { waveOf, unknownCodes } = await resolveWaves(ctx, input.waves, seed);
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
    const counts = (
      (await ctx.db.execute(
        sql`select p.wave, count(*)::int as n from (select ${waveOf} as wave from sites s where ${planSites(ctx)}) p
          where p.wave is not null group by p.wave`,
      )) as unknown as { rows: { wave: number; n: number }[] }
    ).rows;
    const sizeOf = new Map(counts.map((c) => [c.wave, c.n]));
    const empty = input.waves
      .map((w, position) => ({ ...w, position }))
      .filter((w) => !sizeOf.get(w.position));
    if (empty.length) {
      throw new AppError(
        'unprocessable',
        'WAVE_EMPTY',
        `Wave "${empty[0]!.name}" selects no site: every site it matches is in an earlier wave, excluded, or none matches.`,
        empty.map((w) => ({ path: `waves.${w.position}.selector`, message: 'Selects no site' })),
      );
    }
    if (!input.draft) {
      // Sites already on the release are kept as skipped and reserve nothing.
      const conflicts = (
        (await ctx.db.execute(sql`
          select t.site_id as "siteId", s.code, r.name as "rolloutName"
          from sites s
          join rollout_targets t on t.site_id = s.id and t.active and t.org_id = ${ctx.orgId}
          join rollouts r on r.id = t.rollout_id
          where ${planSites(ctx)} and ${waveOf} is not null
            and s.reported_release_id is distinct from ${release.release.id}::uuid
          order by s.code`)) as unknown as { rows: { siteId: string; code: string; rolloutName: string }[] }
      ).rows;
      if (conflicts.length) {
        const codeOf = new Map(conflicts.map((c) => [c.siteId, c.code]));
        throw conflictError(conflicts, (id) => codeOf.get(id) ?? id);
      }
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
    await ctx.db.insert(rolloutWaves).values(
      input.waves.map((w, position) => ({
        orgId: ctx.orgId,
        rolloutId: rollout!.id,
        position,
        name: w.name,
        selector: w.selector,
        startsAt: new Date(w.startsAt),
        deadlineAt: new Date(w.deadlineAt),
      })),
    );
    let written: number;
    try {
      written = await insertTargets(
        ctx,
        { rolloutId: rollout!.id, releaseId: release.release.id, waveOf },
        !input.draft,
        now,
      );
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
        reason: `${release.release.version} to ${written} sites in ${input.waves.length} wave(s)`,
      },
      now,
    );
    return { id: rollout!.id, state, seed, sites: written };
  });
}
