import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import {
  releases,
  rolloutEvents,
  rollouts,
  rolloutWaves,
  rolloutWaveStateCounts,
  users,
} from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import { NotFoundError } from '../../lib/errors.ts';
import type { ServiceCtx } from '../context.ts';
import { emptyCounts, judgeWave, totalOf, type TargetCounts } from './machine.ts';

/**
 * Counts per wave and state: the rollout's rows of `rollout_wave_state_counts` (a few dozen at most),
 * which triggers keep equal to counting its targets (migration 0018).
 */
export async function waveCounts(db: Db, rolloutId: string): Promise<Map<string, TargetCounts>> {
  const rows = await db
    .select({
      waveId: rolloutWaveStateCounts.waveId,
      state: rolloutWaveStateCounts.state,
      healthy: rolloutWaveStateCounts.healthy,
      n: rolloutWaveStateCounts.n,
    })
    .from(rolloutWaveStateCounts)
    .where(eq(rolloutWaveStateCounts.rolloutId, rolloutId));
  const out = new Map<string, TargetCounts>();
  for (const r of rows) {
    const c = out.get(r.waveId) ?? emptyCounts();
    c[r.state] += r.n;
    if (r.healthy && r.state === 'installed') c.healthy += r.n;
    out.set(r.waveId, c);
  }
  return out;
}

export function sumCounts(list: TargetCounts[]): TargetCounts {
  const t = emptyCounts();
  for (const c of list) for (const k of Object.keys(t) as (keyof TargetCounts)[]) t[k] += c[k];
  return t;
}

export async function loadRollout(ctx: ServiceCtx, id: string) {
  const [r] = await ctx.db
    .select()
    .from(rollouts)
    .where(and(eq(rollouts.orgId, ctx.orgId), eq(rollouts.id, id)))
    .limit(1);
  if (!r) throw new NotFoundError('rollout', id);
  return r;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** A rollout as the progress view shows it: policy, waves with live counts and verdicts, the timeline. */
export async function getRollout({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: { id: string };
  now?: Date;
}) {
  const r = await loadRollout(ctx, input.id);
  const [release, waves, counts, events] = await Promise.all([
    ctx.db
      .select({ id: releases.id, version: releases.version, state: releases.state })
      .from(releases)
      .where(eq(releases.id, r.releaseId))
      .limit(1),
    ctx.db
      .select()
      .from(rolloutWaves)
      .where(eq(rolloutWaves.rolloutId, r.id))
      .orderBy(asc(rolloutWaves.position)),
    waveCounts(ctx.db, r.id),
    ctx.db
      .select({ e: rolloutEvents, email: users.email })
      .from(rolloutEvents)
      .leftJoin(users, eq(users.id, rolloutEvents.actorUserId))
      .where(eq(rolloutEvents.rolloutId, r.id))
      .orderBy(desc(rolloutEvents.at), desc(rolloutEvents.id))
      .limit(200),
  ]);
  const waveViews = waves.map((w) => {
    const c = counts.get(w.id) ?? emptyCounts();
    const v = w.openedAt
      ? judgeWave(c, r.policy, { openedAt: w.openedAt, deadlineAt: w.deadlineAt }, now)
      : null;
    return {
      id: w.id,
      position: w.position,
      name: w.name,
      selector: w.selector,
      state: w.state,
      startsAt: w.startsAt.toISOString(),
      deadlineAt: w.deadlineAt.toISOString(),
      openedAt: iso(w.openedAt),
      closedAt: iso(w.closedAt),
      bundlesRequestedAt: iso(w.bundlesRequestedAt),
      bundleNote: w.bundleNote,
      reason: w.reason,
      counts: c,
      total: totalOf(c),
      successShare: v?.successShare ?? null,
      failureShare: v?.failureShare ?? null,
    };
  });
  const totals = sumCounts(waveViews.map((w) => w.counts));
  return {
    id: r.id,
    name: r.name,
    state: r.state,
    policy: r.policy,
    seed: r.seed,
    rollbackOf: r.rollbackOf,
    pausedReason: r.pausedReason,
    release: release[0]!,
    createdAt: r.createdAt.toISOString(),
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    waves: waveViews,
    totals,
    total: totalOf(totals),
    timeline: events.map(({ e, email }) => ({
      id: e.id,
      kind: e.kind,
      waveId: e.waveId,
      siteId: e.siteId,
      from: e.from,
      to: e.to,
      reason: e.reason,
      actor: e.actor,
      actorEmail: email,
      at: e.at.toISOString(),
    })),
  };
}

export async function listRollouts({ ctx }: { ctx: ServiceCtx }) {
  const list = await ctx.db
    .select({ r: rollouts, version: releases.version })
    .from(rollouts)
    .innerJoin(releases, eq(releases.id, rollouts.releaseId))
    .where(eq(rollouts.orgId, ctx.orgId))
    .orderBy(desc(rollouts.createdAt))
    .limit(200);
  const ids = list.map((x) => x.r.id);
  const counts = ids.length
    ? await ctx.db
        .select({
          rolloutId: rolloutWaveStateCounts.rolloutId,
          state: rolloutWaveStateCounts.state,
          n: sql<number>`sum(${rolloutWaveStateCounts.n})::int`,
        })
        .from(rolloutWaveStateCounts)
        .where(inArray(rolloutWaveStateCounts.rolloutId, ids))
        .groupBy(rolloutWaveStateCounts.rolloutId, rolloutWaveStateCounts.state)
    : [];
  const waves = ids.length
    ? await ctx.db
        .select({
          rolloutId: rolloutWaves.rolloutId,
          state: rolloutWaves.state,
          position: rolloutWaves.position,
        })
        .from(rolloutWaves)
        .where(inArray(rolloutWaves.rolloutId, ids))
    : [];
  return list.map(({ r, version }) => {
    const c = emptyCounts();
    for (const x of counts) if (x.rolloutId === r.id) c[x.state] += x.n;
    const mine = waves.filter((w) => w.rolloutId === r.id);
    return {
      id: r.id,
      name: r.name,
      state: r.state,
      release: { id: r.releaseId, version },
      rollbackOf: r.rollbackOf,
      createdAt: r.createdAt.toISOString(),
      startedAt: iso(r.startedAt),
      finishedAt: iso(r.finishedAt),
      waves: mine.length,
      wavesDone: mine.filter((w) => w.state === 'succeeded').length,
      counts: c,
      total: totalOf(c),
    };
  });
}
