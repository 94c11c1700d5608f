import { sql } from 'drizzle-orm';
import { inTransaction, type ServiceCtx } from '../context.ts';
import type { PlanInput } from './input.ts';
import { checkSchedule, loadRolloutRelease, sizeModel } from './plan.ts';
import { noJit, planSites, resolveWaves } from './resolve.ts';

const SAMPLE = 50;

interface WaveRow {
  wave: number;
  sites: number;
  already: number;
  sneakernet: number;
  deltas: number;
  bytes: string | number | null;
  unknown_bandwidth: number;
  conflicts: number;
  median_secs: number | null;
  max_secs: number | null;
  sample: {
    id: string;
    code: string;
    name: string;
    region: string | null;
    connectivity: string;
    reportedVersion: string | null;
    bytes: number;
    delta: boolean;
    downloadSeconds: number | null;
    conflict: string | null;
  }[];
  conflict_list: { siteId: string; code: string; rolloutId: string; rolloutName: string }[];
}

/**
 * What a plan would do, before anything is written: the sites of each wave, those already on the
 * release, the bytes each site downloads (full, or a delta from the release it reports) and how long
 * that takes at its bandwidth, the sites reachable only by sneakernet, and sites that another rollout
 * holds. The same resolution as create (`resolveWaves`), so what the preview shows is what create
 * schedules. The figures are summed in the database: only each wave's sample of 50 sites comes back.
 */
export async function previewRollout({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: PlanInput;
  now?: Date;
}) {
  return inTransaction(ctx, async (ctx) => {
    await noJit(ctx);
    return previewIn(ctx, input, now);
  });
}

async function previewIn(ctx: ServiceCtx, input: PlanInput, now: Date) {
  const release = await loadRolloutRelease(ctx, input.releaseId);
  checkSchedule(input.waves, now);
  const seed = input.seed ?? crypto.randomUUID().slice(0, 8);
  const bases = (
    (await ctx.db.execute(
      sql`select s.reported_release_id as id, count(*)::int as n from sites s where ${planSites(ctx)} group by 1`,
    )) as unknown as { rows: { id: string | null; n: number }[] }
  ).rows;
  const sitesInFleet = bases.reduce((n, b) => n + b.n, 0);
  const baseIds = bases.map((b) => b.id).filter((x): x is string => !!x);
  const sizes = await sizeModel(ctx, release, baseIds);
  const { waveOf, unknownCodes } = await resolveWaves(ctx, input.waves, seed);
  // Each base release's download, as sizes.forSite computes it (0 for the release itself).
  const sized = baseIds.map((id) => ({ id, ...sizes.forSite({ reportedReleaseId: id }) }));
  const target = release.release.id;
  const result = await ctx.db.execute(sql`
    with y as materialized (
      select x.*, case when coalesce(x.bandwidth_kbps, 0) = 0 then null
        else ceil((x.bytes * 8)::float8 / (x.bandwidth_kbps * 1000)::float8)::float8 end as secs,
        not x.on_release and x.connectivity <> 'offline' as timed
      from (
        select s.id, s.code, s.name, s.region, s.connectivity, s.reported_version, s.bandwidth_kbps,
          coalesce(s.reported_release_id = ${target}::uuid, false) as on_release,
          coalesce(b.bytes, ${sizes.full}::int8) as bytes, coalesce(b.delta, false) as delta,
          t.rollout_id as conflict_id, r.name as conflict, ${waveOf} as wave
        from sites s
        left join unnest(${sql.param(sized.map((b) => b.id))}::uuid[], ${sql.param(sized.map((b) => b.bytes))}::int8[],
          ${sql.param(sized.map((b) => b.delta))}::bool[]) as b(id, bytes, delta) on b.id = s.reported_release_id
        left join rollout_targets t on t.site_id = s.id and t.active and t.org_id = ${ctx.orgId}
        left join rollouts r on r.id = t.rollout_id
        where ${planSites(ctx)}
      ) x
      where x.wave is not null
    ), m as (
      select wave, secs, row_number() over (partition by wave order by secs) - 1 as i, count(*) over (partition by wave) as n
      from y where timed and secs is not null
    )
    select y.wave, count(*)::int as sites, count(*) filter (where on_release)::int as already,
      count(*) filter (where connectivity = 'offline')::int as sneakernet, count(*) filter (where delta)::int as deltas,
      sum(bytes) as bytes, count(*) filter (where timed and secs is null)::int as unknown_bandwidth,
      count(conflict)::int as conflicts, max(secs) filter (where timed) as max_secs,
      (select m.secs from m where m.wave = y.wave and m.i = m.n / 2) as median_secs,
      (select coalesce(json_agg(json_build_object('id', z.id, 'code', z.code, 'name', z.name, 'region', z.region,
          'connectivity', z.connectivity, 'reportedVersion', z.reported_version, 'bytes', z.bytes, 'delta', z.delta,
          'downloadSeconds', z.secs, 'conflict', z.conflict) order by z.code), '[]'::json)
        from (select * from y y2 where y2.wave = y.wave order by y2.code limit ${SAMPLE}) z) as sample,
      (select coalesce(json_agg(json_build_object('siteId', c.id, 'code', c.code, 'rolloutId', c.conflict_id,
          'rolloutName', c.conflict) order by c.code), '[]'::json)
        from (select * from y c where c.conflict_id is not null order by c.code limit 100) c) as conflict_list
    from y group by y.wave order by y.wave`);
  const waveRows = (result as unknown as { rows: WaveRow[] }).rows;
  const byWave = new Map(waveRows.map((r) => [r.wave, r]));
  const assigned = [...byWave.values()].reduce((n, w) => n + w.sites, 0);
  return {
    release: {
      id: release.release.id,
      version: release.release.version,
      state: release.release.state,
      fullBytes: sizes.full,
      bundlable: release.images.length > 0 && !!release.release.composeTemplate,
    },
    seed,
    sitesInFleet,
    unassigned: sitesInFleet - assigned,
    unknownCodes,
    waves: input.waves.map((w, position) => {
      const r = byWave.get(position);
      return {
        position,
        name: w.name,
        startsAt: new Date(w.startsAt).toISOString(),
        deadlineAt: new Date(w.deadlineAt).toISOString(),
        sites: r?.sites ?? 0,
        alreadyOnRelease: r?.already ?? 0,
        toInstall: (r?.sites ?? 0) - (r?.already ?? 0),
        sneakernet: r?.sneakernet ?? 0,
        deltas: r?.deltas ?? 0,
        bytes: Number(r?.bytes ?? 0),
        medianDownloadSeconds: r?.median_secs ?? null,
        maxDownloadSeconds: r?.max_secs ?? null,
        unknownBandwidth: r?.unknown_bandwidth ?? 0,
        conflicts: r?.conflicts ?? 0,
        sample: (r?.sample ?? []).map((s) => ({ ...s, bytes: Number(s.bytes) })),
      };
    }),
    // The first 100 conflicts of the plan by code (every wave row carries the same list).
    conflicts: waveRows[0]?.conflict_list ?? [],
    conflictCount: waveRows.reduce((n, w) => n + w.conflicts, 0),
  };
}
