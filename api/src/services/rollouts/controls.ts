import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import {
  rollouts,
  rolloutTargets,
  rolloutWaves,
  sites,
  type RolloutState,
  type WaveState,
} from '../../db/schema/index.ts';
import { AppError, NotFoundError } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordRolloutEvent } from './events.ts';
import { rolloutNext, targetNext, type RolloutEvent } from './machine.ts';
import { completeRollout, openWaveTargets } from './scheduler.ts';
import { enqueueWebhooks } from './webhooks.ts';
import { activeConflicts } from './plan.ts';
import { conflictError } from './create.ts';

function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

/** The rollout under its row lock (a scheduler pass waits, or skips it), or 404. */
async function lockRollout(ctx: ServiceCtx, id: string) {
  const [r] = await ctx.db
    .select()
    .from(rollouts)
    .where(and(eq(rollouts.orgId, ctx.orgId), eq(rollouts.id, id)))
    .for('update');
  if (!r) throw new NotFoundError('rollout', id);
  return r;
}

/**
 * A control verb, `verb({ ctx, input, now })`: one transaction, on the rollout under its row lock
 * (404 when it is not the organisation's).
 */
function control<I extends { id: string }, T>(
  act: (ctx: ServiceCtx, r: typeof rollouts.$inferSelect, input: I, now: Date) => Promise<T>,
) {
  return ({ ctx, input, now = new Date() }: { ctx: ServiceCtx; input: I; now?: Date }) =>
    inTransaction(ctx, async (ctx) => act(ctx, await lockRollout(ctx, input.id), input, now));
}

function illegal(state: RolloutState, what: string): never {
  throw new AppError('conflict', 'INVALID_STATE', `This rollout is ${state}; it cannot ${what}.`);
}

async function moveRollout(
  ctx: ServiceCtx,
  r: { id: string; state: RolloutState },
  event: RolloutEvent,
  reason: string,
  now: Date,
  extra: Partial<typeof rollouts.$inferInsert> = {},
) {
  const to = rolloutNext(r.state, event);
  if (!to) illegal(r.state, event);
  await ctx.db
    .update(rollouts)
    .set({ state: to, updatedAt: now, ...extra })
    .where(eq(rollouts.id, r.id));
  await recordRolloutEvent(
    ctx,
    {
      rolloutId: r.id,
      kind:
        event === 'pause'
          ? 'paused'
          : event === 'resume'
            ? 'resumed'
            : event === 'cancel'
              ? 'cancelled'
              : event,
      from: r.state,
      to,
      reason,
    },
    now,
  );
  return to;
}

/** One wave moved by a person's control, and the move on the rollout's timeline. */
async function moveWave(
  ctx: ServiceCtx,
  move: {
    rolloutId: string;
    wave: { id: string; state: WaveState };
    to: WaveState;
    kind: string;
    reason: string;
  },
  set: Partial<typeof rolloutWaves.$inferInsert>,
  now: Date,
) {
  const { rolloutId, wave, to, kind, reason } = move;
  await ctx.db
    .update(rolloutWaves)
    .set({ state: to, reason, ...set })
    .where(eq(rolloutWaves.id, wave.id));
  await recordRolloutEvent(ctx, { rolloutId, waveId: wave.id, kind, from: wave.state, to, reason }, now);
}

const who = (ctx: ServiceCtx) => (ctx.actor.userId ? 'a person' : 'an API token');

export const pauseRollout = control(async (ctx, r, input: { id: string; reason?: string }, now) => {
  const reason = input.reason?.trim() || `paused by ${who(ctx)}`;
  await moveRollout(ctx, r, 'pause', reason, now, { pausedReason: reason });
  const open = await ctx.db
    .update(rolloutWaves)
    .set({ state: 'paused', reason })
    .where(and(eq(rolloutWaves.rolloutId, r.id), eq(rolloutWaves.state, 'open')))
    .returning();
  for (const w of open) {
    await recordRolloutEvent(
      ctx,
      { rolloutId: r.id, waveId: w.id, kind: 'wave.paused', from: 'open', to: 'paused', reason },
      now,
    );
    await enqueueWebhooks(
      ctx,
      'wave.paused',
      { rolloutId: r.id, rolloutName: r.name, waveId: w.id, wave: w.name, reason },
      now,
    );
  }
  await enqueueWebhooks(ctx, 'rollout.paused', { rolloutId: r.id, rolloutName: r.name, reason }, now);
  return { id: r.id, state: 'paused' as const };
});

/** Resumes: paused and failed waves open again (a new deadline may be given for them); the scheduler judges them afresh. */
export const resumeRollout = control(async (ctx, r, input: { id: string; deadlineAt?: string }, now) => {
  if (input.deadlineAt && Date.parse(input.deadlineAt) <= now.getTime()) {
    throw new AppError('invalid', 'VALIDATION_FAILED', 'The new deadline must be in the future.', [
      { path: 'deadlineAt', message: 'In the past' },
    ]);
  }
  await moveRollout(ctx, r, 'resume', `resumed by ${who(ctx)}`, now, { pausedReason: null });
  const reopened = await ctx.db
    .update(rolloutWaves)
    .set({
      state: 'open',
      reason: 'resumed',
      closedAt: null,
      ...(input.deadlineAt ? { deadlineAt: new Date(input.deadlineAt) } : {}),
    })
    .where(and(eq(rolloutWaves.rolloutId, r.id), inArray(rolloutWaves.state, ['paused', 'failed'])))
    .returning();
  for (const w of reopened) {
    await recordRolloutEvent(
      ctx,
      {
        rolloutId: r.id,
        waveId: w.id,
        kind: 'wave.resumed',
        to: 'open',
        reason: input.deadlineAt ? `new deadline ${input.deadlineAt}` : 'resumed',
      },
      now,
    );
  }
  return { id: r.id, state: 'running' as const };
});

/**
 * Advance now: the current wave counts as succeeded (the person's decision, on the timeline) and
 * the next one opens at once, whatever its start time. The last wave advanced completes the rollout.
 */
export const advanceRollout = control(async (ctx, r, input: { id: string }, now) => {
  if (!['scheduled', 'running', 'paused'].includes(r.state)) illegal(r.state, 'advance');
  const waves = await ctx.db
    .select()
    .from(rolloutWaves)
    .where(eq(rolloutWaves.rolloutId, r.id))
    .orderBy(asc(rolloutWaves.position));
  const current = waves.find((w) => ['open', 'paused', 'failed'].includes(w.state));
  const next = waves.find((w) => w.state === 'pending' || w.state === 'preparing');
  const reason = `advanced by ${who(ctx)}`;
  if (current) {
    const move = { rolloutId: r.id, wave: current, to: 'succeeded', kind: 'wave.succeeded', reason } as const;
    await moveWave(ctx, move, { closedAt: now }, now);
  }
  if (r.state !== 'running') {
    await ctx.db
      .update(rollouts)
      .set({ state: 'running', pausedReason: null, updatedAt: now, startedAt: r.startedAt ?? now })
      .where(eq(rollouts.id, r.id));
    await recordRolloutEvent(
      ctx,
      {
        rolloutId: r.id,
        kind: r.state === 'paused' ? 'resumed' : 'started',
        from: r.state,
        to: 'running',
        reason,
      },
      now,
    );
  }
  if (next) {
    const move = { rolloutId: r.id, wave: next, to: 'open', kind: 'wave.opened', reason } as const;
    await moveWave(ctx, move, { openedAt: now }, now);
    await openWaveTargets(ctx.db, r.id, next.id, r.releaseId);
    await enqueueWebhooks(
      ctx,
      'wave.opened',
      { rolloutId: r.id, rolloutName: r.name, waveId: next.id, wave: next.name, position: next.position },
      now,
    );
    return { id: r.id, state: 'running' as const, opened: next.id };
  }
  if (!current)
    throw new AppError('conflict', 'NOTHING_TO_ADVANCE', 'Every wave of this rollout is already done.');
  await completeRollout(ctx.db, r.id, now);
  await recordRolloutEvent(
    ctx,
    { rolloutId: r.id, kind: 'completed', from: 'running', to: 'completed', reason },
    now,
  );
  await enqueueWebhooks(ctx, 'rollout.completed', { rolloutId: r.id, rolloutName: r.name }, now);
  return { id: r.id, state: 'completed' as const, opened: null };
});

/** Cancel: no more sites are asked; those not yet installed lose this target; every site is free again. */
export const cancelRollout = control(async (ctx, r, input: { id: string; reason?: string }, now) => {
  await cancelLocked(ctx, r, input.reason?.trim() || `cancelled by ${who(ctx)}`, now);
  return { id: r.id, state: 'cancelled' as const };
});

export async function cancelLocked(
  ctx: ServiceCtx,
  r: { id: string; state: RolloutState; releaseId: string },
  reason: string,
  now: Date,
) {
  await moveRollout(ctx, r, 'cancel', reason, now, { finishedAt: now, pausedReason: null });
  await ctx.db
    .update(rolloutWaves)
    .set({ state: 'cancelled', reason, closedAt: now })
    .where(
      and(
        eq(rolloutWaves.rolloutId, r.id),
        inArray(rolloutWaves.state, ['pending', 'preparing', 'open', 'paused', 'failed']),
      ),
    );
  await ctx.db.execute(sql`
    update sites s set target_release_id = null, updated_at = now()
    from rollout_targets t
    where t.rollout_id = ${r.id} and t.site_id = s.id and t.active and t.state <> 'installed' and s.target_release_id = ${r.releaseId}`);
  await ctx.db.execute(sql`update rollout_targets set active = false where rollout_id = ${r.id} and active`);
}

/** Failed, rolled-back and overdue sites (all, or the ones named) are tried again: back to pending. */
export const retryTargets = control(async (ctx, r, input: { id: string; siteIds?: string[] }, now) => {
  if (!['scheduled', 'running', 'paused'].includes(r.state)) illegal(r.state, 'retry sites');
  const picked = input.siteIds?.length ? JSON.stringify(input.siteIds) : null;
  const moved = rowsOf<{ site_id: string }>(
    await ctx.db.execute(sql`
    update rollout_targets set state = 'pending', reason = 'retried', attempts = attempts + 1, failure_notified_at = null, healthy = false,
      state_changed_at = ${now.toISOString()}::timestamptz
    where rollout_id = ${r.id} and state in ('failed', 'rolled_back', 'overdue')
      ${picked ? sql`and site_id in (select value::uuid from json_array_elements_text(${picked}::json))` : sql``}
    returning site_id`),
  );
  await recordRolloutEvent(
    ctx,
    {
      rolloutId: r.id,
      kind: 'targets.retried',
      reason: `${moved.length} site(s) tried again by ${who(ctx)}`,
    },
    now,
  );
  return { id: r.id, retried: moved.length };
});

/** Takes one site out of the rollout: it is skipped, no longer asked, and free for another rollout. */
export const excludeSite = control(
  async (ctx, r, input: { id: string; siteId: string; reason?: string }, now) => {
    if (!['draft', 'scheduled', 'running', 'paused'].includes(r.state)) illegal(r.state, 'exclude sites');
    const [t] = await ctx.db
      .select()
      .from(rolloutTargets)
      .where(and(eq(rolloutTargets.rolloutId, r.id), eq(rolloutTargets.siteId, input.siteId)))
      .limit(1);
    if (!t) throw new NotFoundError('site in this rollout', input.siteId);
    const to = targetNext(t.state, 'exclude');
    if (!to)
      throw new AppError(
        'conflict',
        'INVALID_STATE',
        t.state === 'installed'
          ? 'This site already installed the release; roll it back instead.'
          : 'This site is already skipped.',
      );
    const reason = input.reason?.trim() || `excluded by ${who(ctx)}`;
    await ctx.db
      .update(rolloutTargets)
      .set({ state: to, active: false, reason, stateChangedAt: now })
      .where(eq(rolloutTargets.id, t.id));
    await ctx.db
      .update(sites)
      .set({ targetReleaseId: null, updatedAt: now })
      .where(and(eq(sites.id, t.siteId), eq(sites.targetReleaseId, r.releaseId)));
    await recordRolloutEvent(
      ctx,
      {
        rolloutId: r.id,
        waveId: t.waveId,
        siteId: t.siteId,
        kind: 'target.excluded',
        from: t.state,
        to,
        reason,
      },
      now,
    );
    return { id: r.id, siteId: t.siteId, state: to };
  },
);

/** Schedules a draft: its sites are reserved now (refused if another rollout holds one). */
export const scheduleDraft = control(async (ctx, r, input: { id: string }, now) => {
  if (r.state !== 'draft') illegal(r.state, 'be scheduled again');
  const ids = (
    await ctx.db
      .select({ siteId: rolloutTargets.siteId })
      .from(rolloutTargets)
      .where(eq(rolloutTargets.rolloutId, r.id))
  ).map((x) => x.siteId);
  const conflicts = await activeConflicts(ctx, ids, r.id);
  if (conflicts.length) throw conflictError(conflicts, (id) => id);
  const [first] = await ctx.db
    .select({ startsAt: rolloutWaves.startsAt })
    .from(rolloutWaves)
    .where(eq(rolloutWaves.rolloutId, r.id))
    .orderBy(asc(rolloutWaves.position))
    .limit(1);
  if (first && first.startsAt.getTime() < now.getTime() - 5 * 60_000) {
    throw new AppError(
      'invalid',
      'VALIDATION_FAILED',
      "The first wave's start is in the past; plan the rollout again.",
      [{ path: 'waves.0.startsAt', message: 'In the past' }],
    );
  }
  await moveRollout(ctx, r, 'schedule', `scheduled by ${who(ctx)}`, now);
  await ctx.db.execute(
    sql`update rollout_targets set active = true where rollout_id = ${r.id} and state <> 'skipped'`,
  );
  return { id: r.id, state: 'scheduled' as const };
});
