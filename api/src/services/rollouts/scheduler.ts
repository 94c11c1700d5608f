import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import {
  releaseImages,
  releases,
  rollouts,
  rolloutWaves,
  type RolloutPolicy,
  type WaveState,
} from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import type { Logger } from '../../lib/logger.ts';
import { AppError } from '../../lib/errors.ts';
import type { ServiceCtx } from '../context.ts';
import { requestBundles } from '../bundles/request.ts';
import { recordRolloutEvent, schedulerCtx } from './events.ts';
import { judgeWave } from './machine.ts';
import { waveCounts } from './view.ts';
import { enqueueWebhooks } from './webhooks.ts';

export interface PassResult {
  rollouts: number;
  /** Rollouts another scheduler was working on (skipped, not waited for). */
  skipped: number;
  transitions: { rolloutId: string; waveId?: string; kind: string }[];
}

const BUNDLE_REQUEST_MAX = 10_000;

function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

/** Whether `now` (UTC date) is inside one of the organisation's blackout periods. */
export async function inBlackout(db: Db, orgId: string, now: Date): Promise<boolean> {
  const day = now.toISOString().slice(0, 10);
  const rows = rowsOf<{ x: number }>(
    await db.execute(sql`
    select 1 as x from blackout_dates where org_id = ${orgId} and starts_on <= ${day}::date and ends_on >= ${day}::date limit 1`),
  );
  return rows.length > 0;
}

/**
 * One pass of the rollout scheduler, at `now` (injected, so tests drive time without sleeping).
 * For every scheduled or running rollout, in its own transaction holding the rollout's row lock
 * (`FOR UPDATE SKIP LOCKED`: a second scheduler passes over a rollout the first is working on, and
 * every step re-reads state under the lock, so two schedulers never advance a wave twice):
 * bundles and downloads move targets forward; bundles are asked for `bundleLeadHours` before a
 * wave's start; due waves open (not on blackout days, and after the wave before succeeded);
 * deadlines turn silent sites overdue; open waves are judged (succeed → next wave, or fail → the
 * rollout pauses); failed sites queue their webhooks.
 */
export async function runSchedulerPass(db: Db, opts: { now: Date; logger?: Logger }): Promise<PassResult> {
  const live = await db
    .select({ id: rollouts.id })
    .from(rollouts)
    .where(inArray(rollouts.state, ['scheduled', 'running']));
  const result: PassResult = { rollouts: 0, skipped: 0, transitions: [] };
  for (const { id } of live) {
    try {
      const done = await db.transaction(async (tx) => passOne(tx as unknown as Db, id, opts.now, result));
      if (done) result.rollouts++;
      else result.skipped++;
    } catch (e) {
      // One broken rollout must not stop the others; it is tried again on the next pass.
      opts.logger?.('error', 'rollout scheduler pass failed', {
        rolloutId: id,
        err: e instanceof Error ? e.message : String(e),
      });
    }
  }
  return result;
}

async function passOne(db: Db, id: string, now: Date, result: PassResult): Promise<boolean> {
  const [r] = await db
    .select()
    .from(rollouts)
    .where(and(eq(rollouts.id, id), inArray(rollouts.state, ['scheduled', 'running'])))
    .for('update', { skipLocked: true });
  if (!r) return false;
  const ctx = schedulerCtx(db, r.orgId);
  const note = (kind: string, waveId?: string) =>
    result.transitions.push({ rolloutId: r.id, kind, ...(waveId ? { waveId } : {}) });
  const at = now.toISOString();

  // Bundles built and downloads finished move targets forward (never backward: only from earlier states).
  await db.execute(sql`
    update rollout_targets t set state = 'bundled', state_changed_at = ${at}::timestamptz
    from bundles b
    where t.rollout_id = ${r.id} and t.state = 'pending' and b.site_id = t.site_id and b.release_id = ${r.releaseId} and b.state = 'ready'`);
  await db.execute(sql`
    update rollout_targets t set state = 'downloaded', state_changed_at = ${at}::timestamptz
    where t.rollout_id = ${r.id} and t.state in ('pending', 'bundled')
      and exists (select 1 from bundle_downloads d join bundles b on b.id = d.bundle_id
                  where d.site_id = t.site_id and b.release_id = ${r.releaseId} and d.complete)`);

  const waves = await db
    .select()
    .from(rolloutWaves)
    .where(eq(rolloutWaves.rolloutId, r.id))
    .orderBy(asc(rolloutWaves.position));
  const blackout = await inBlackout(db, r.orgId, now);
  let rolloutState = r.state;
  let counts = await waveCounts(db, r.id);

  // Bundles are asked for ahead of each wave's start, whatever the waves before are doing.
  for (const w of waves) {
    if (
      w.state === 'pending' &&
      r.policy.buildBundles &&
      !w.bundlesRequestedAt &&
      now.getTime() >= w.startsAt.getTime() - r.policy.bundleLeadHours * 3_600_000
    ) {
      const noteText = await askBundles(ctx, r.releaseId, w.id);
      await db
        .update(rolloutWaves)
        .set({ state: 'preparing', bundlesRequestedAt: now, bundleNote: noteText })
        .where(eq(rolloutWaves.id, w.id));
      await recordRolloutEvent(
        ctx,
        {
          rolloutId: r.id,
          waveId: w.id,
          kind: 'wave.preparing',
          from: 'pending',
          to: 'preparing',
          reason: noteText,
        },
        now,
      );
      note('wave.preparing', w.id);
      Object.assign(w, { state: 'preparing', bundlesRequestedAt: now, bundleNote: noteText });
    }
  }

  for (let i = 0; i < waves.length; i++) {
    const w = waves[i]!;
    const prev = i > 0 ? waves[i - 1]! : null;
    const setWave = async (
      to: WaveState,
      kind: string,
      reason: string,
      extra: Partial<typeof rolloutWaves.$inferInsert> = {},
    ) => {
      await db
        .update(rolloutWaves)
        .set({ state: to, reason, ...extra })
        .where(eq(rolloutWaves.id, w.id));
      await recordRolloutEvent(ctx, { rolloutId: r.id, waveId: w.id, kind, from: w.state, to, reason }, now);
      note(kind, w.id);
      w.state = to;
      Object.assign(w, extra);
    };

    // Its turn: the first wave on schedule; a later one once the wave before succeeded, if the policy advances by itself.
    const turn = prev === null || (prev.state === 'succeeded' && r.policy.autoAdvance);
    if ((w.state === 'pending' || w.state === 'preparing') && turn && now >= w.startsAt && !blackout) {
      await setWave(
        'open',
        'wave.opened',
        prev ? `after wave "${prev.name}" succeeded` : 'start time reached',
        { openedAt: now },
      );
      if (rolloutState === 'scheduled') {
        await db
          .update(rollouts)
          .set({ state: 'running', startedAt: now, updatedAt: now })
          .where(eq(rollouts.id, r.id));
        await recordRolloutEvent(
          ctx,
          {
            rolloutId: r.id,
            kind: 'started',
            from: 'scheduled',
            to: 'running',
            reason: `wave "${w.name}" opened`,
          },
          now,
        );
        rolloutState = 'running';
        note('rollout.started');
      }
      await openWaveTargets(db, r.id, w.id, r.releaseId);
      await enqueueWebhooks(
        ctx,
        'wave.opened',
        { rolloutId: r.id, rolloutName: r.name, waveId: w.id, wave: w.name, position: w.position },
        now,
      );
    }

    if (w.state === 'open') {
      if (now >= w.deadlineAt) {
        const moved = rowsOf<{ n: string | number }>(
          await db.execute(sql`
          with m as (update rollout_targets set state = 'overdue', reason = 'no report by the deadline', state_changed_at = ${at}::timestamptz
            where rollout_id = ${r.id} and wave_id = ${w.id} and state in ('pending', 'bundled', 'downloaded', 'installing') returning 1)
          select count(*) as n from m`),
        );
        if (Number(moved[0]?.n ?? 0) > 0) counts = await waveCounts(db, r.id);
      }
      const v = judgeWave(
        counts.get(w.id)!,
        r.policy,
        { openedAt: w.openedAt!, deadlineAt: w.deadlineAt },
        now,
      );
      if (v.verdict === 'succeed') {
        await setWave(
          'succeeded',
          'wave.succeeded',
          `${v.reason} (${Math.round(v.successShare * 1000) / 10} % healthy)`,
          { closedAt: now },
        );
        await enqueueWebhooks(
          ctx,
          'wave.succeeded',
          { rolloutId: r.id, rolloutName: r.name, waveId: w.id, wave: w.name, successShare: v.successShare },
          now,
        );
      } else if (v.verdict === 'fail') {
        const reason = `${v.reason} (${Math.round(v.failureShare * 1000) / 10} % failed, ${Math.round(v.successShare * 1000) / 10} % healthy)`;
        await setWave('failed', 'wave.failed', reason, { closedAt: now });
        await db
          .update(rollouts)
          .set({ state: 'paused', pausedReason: `Wave "${w.name}": ${reason}`, updatedAt: now })
          .where(eq(rollouts.id, r.id));
        await recordRolloutEvent(
          ctx,
          {
            rolloutId: r.id,
            kind: 'paused',
            from: rolloutState,
            to: 'paused',
            reason: `wave "${w.name}" failed: ${reason}`,
          },
          now,
        );
        rolloutState = 'paused';
        note('rollout.paused');
        await enqueueWebhooks(
          ctx,
          'wave.failed',
          {
            rolloutId: r.id,
            rolloutName: r.name,
            waveId: w.id,
            wave: w.name,
            reason,
            failureShare: v.failureShare,
          },
          now,
        );
        await enqueueWebhooks(ctx, 'rollout.paused', { rolloutId: r.id, rolloutName: r.name, reason }, now);
        break;
      }
    }
    if (w.state !== 'succeeded') break;
  }

  if (rolloutState === 'running' && waves.every((w) => w.state === 'succeeded')) {
    await completeRollout(db, r.id, now);
    await recordRolloutEvent(
      ctx,
      {
        rolloutId: r.id,
        kind: 'completed',
        from: 'running',
        to: 'completed',
        reason: 'every wave succeeded',
      },
      now,
    );
    note('rollout.completed');
    await enqueueWebhooks(ctx, 'rollout.completed', { rolloutId: r.id, rolloutName: r.name }, now);
  }

  await notifyFailures(ctx, r.id, r.name, now);
  return true;
}

/** The wave's sites are asked to install: their target release moves (the check-in answer reads it). */
export async function openWaveTargets(db: Db, rolloutId: string, waveId: string, releaseId: string) {
  await db.execute(sql`
    update sites s set target_release_id = ${releaseId}, updated_at = now()
    from rollout_targets t
    where t.rollout_id = ${rolloutId} and t.wave_id = ${waveId} and t.site_id = s.id and t.state <> 'skipped'
      and s.target_release_id is distinct from ${releaseId}`);
}

/** Finished: sites are free for another rollout. */
export async function completeRollout(db: Db, rolloutId: string, now: Date) {
  await db
    .update(rollouts)
    .set({ state: 'completed', finishedAt: now, updatedAt: now, pausedReason: null })
    .where(eq(rollouts.id, rolloutId));
  await db.execute(sql`update rollout_targets set active = false where rollout_id = ${rolloutId} and active`);
}

/**
 * Asks the build runners for the wave's bundles (10,000 sites a request). A release that cannot be
 * bundled (no images or compose) is noted on the wave, not an error: it may be delivered otherwise.
 */
async function askBundles(ctx: ServiceCtx, releaseId: string, waveId: string): Promise<string> {
  const [rel] = await ctx.db
    .select({ compose: releases.composeTemplate })
    .from(releases)
    .where(eq(releases.id, releaseId))
    .limit(1);
  const [img] = await ctx.db
    .select({ id: releaseImages.id })
    .from(releaseImages)
    .where(eq(releaseImages.releaseId, releaseId))
    .limit(1);
  if (!img || !rel?.compose) return 'the release has no images or compose template: nothing to bundle';
  const ids = rowsOf<{ site_id: string }>(
    await ctx.db.execute(sql`
    select site_id from rollout_targets where wave_id = ${waveId} and state <> 'skipped' order by site_id`),
  ).map((x) => x.site_id);
  let created = 0;
  for (let i = 0; i < ids.length; i += BUNDLE_REQUEST_MAX) {
    try {
      const out = await requestBundles({
        ctx,
        input: { releaseId, siteIds: ids.slice(i, i + BUNDLE_REQUEST_MAX), mode: 'auto' },
      });
      created += out.created;
    } catch (e) {
      if (e instanceof AppError) return `bundles could not be asked for: ${e.message}`;
      throw e;
    }
  }
  return `${created} bundle(s) asked for`;
}

/** Each newly failed site queues a `site.failed` webhook once (a retry clears the mark). */
async function notifyFailures(ctx: ServiceCtx, rolloutId: string, rolloutName: string, now: Date) {
  const failed = rowsOf<{ site_id: string; code: string; state: string; reason: string | null }>(
    await ctx.db.execute(sql`
    with f as (
      update rollout_targets set failure_notified_at = ${now.toISOString()}::timestamptz
      where rollout_id = ${rolloutId} and state in ('failed', 'rolled_back') and failure_notified_at is null
      returning site_id, state, reason)
    select f.site_id, s.code, f.state, f.reason from f join sites s on s.id = f.site_id`),
  );
  for (const f of failed) {
    await enqueueWebhooks(
      ctx,
      'site.failed',
      { rolloutId, rolloutName, siteId: f.site_id, siteCode: f.code, state: f.state, reason: f.reason },
      now,
    );
  }
}

export type { RolloutPolicy };
