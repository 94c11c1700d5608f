import { and, arrayContains, eq, sql } from 'drizzle-orm';
import { fleetAdoptionFacetDeltas, fleetAdoptionGroupDeltas } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { siteFilterWhere } from '../sites/list.ts';
import { ReleaseOrder } from './drift.ts';
import { baseFilter, fleetRead, type FleetFilter } from './figures.ts';

const DAY = 86_400_000;

function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

function utcDay(d: Date): number {
  return Math.floor(d.getTime() / DAY);
}

/**
 * Adoption over time: for each day (UTC) of the window, how many of the sites in view ran each
 * version at the end of that day — the version of their latest report by then. Read from the
 * version runs (`site_version_spans`, a few rows per site) rather than every report: each run adds
 * one on the day it starts and takes one away on the day it ends, and a running sum gives the days.
 * The sites in view are today's (current region, tags…; archived sites left out): a site that moved
 * to region X counts in X's curve for its whole history, as the site list filtered on X lists it.
 * `reporting` is, per day, how many of them had reported by then — the share's denominator.
 */
export const fleetAdoption = fleetRead(async (ctx, input: FleetFilter & { days: number }, now) => {
  const today = utcDay(now);
  const first = today - input.days + 1;
  // A coordinator sees only their own sites, which no rollup knows: their curve comes from the
  // runs of their sites. Everyone else reads a daily-change rollup.
  const changes = await adoptionChanges(
    ctx,
    input,
    now,
    ctx.actor.role === 'coordinator' ? 'runs' : 'rollup',
  );
  // Runs that started before the window count from its first day; a run that ends on a day no
  // longer counts at that day's end.
  const deltas = new Map<string | null, Map<number, number>>();
  for (const r of changes) {
    if (r.version === null) continue;
    let m = deltas.get(r.version);
    if (!m) deltas.set(r.version, (m = new Map()));
    m.set(r.day, (m.get(r.day) ?? 0) + r.delta);
  }
  const scope = baseFilter(input);
  const days = Array.from({ length: input.days }, (_, i) =>
    new Date((first + i) * DAY).toISOString().slice(0, 10),
  );
  const series = [...deltas.entries()]
    .map(([version, m]) => {
      let running = 0;
      const counts = days.map((_, i) => (running += m.get(first + i) ?? 0));
      return { version: version!, counts, filter: { ...scope, version: version! } };
    })
    .filter((s) => s.counts.some((c) => c > 0))
    .sort((a, b) => ReleaseOrder.compare(a.version, b.version));
  // The share's denominator is the sites that had reported by each day (counting the whole fleet
  // today would cost a pass over every site, and sites registered later would dilute early days).
  const reporting = days.map((_, i) => series.reduce((n, x) => n + x.counts[i]!, 0));
  return { days, reporting, series };
});

/**
 * The changes of the window by version and day, from the runs of the sites in view or from a
 * rollup: the whole fleet's (a few rows per version), the one per filter value for a single filter
 * (a few thousand rows: versions × days), or the one per group of sites (region, district,
 * connectivity, tag set) for the groups a combined filter matches. Each run gives +1 on its first
 * day (or the window's) and −1 on the day it ended, if it ended inside the window. Exported for the
 * bench, which times the runs against the rollups in the same run.
 */
export async function adoptionChanges(
  ctx: ServiceCtx,
  input: FleetFilter & { days: number },
  now: Date,
  from: 'rollup' | 'runs',
) {
  const today = utcDay(now);
  const first = today - input.days + 1;
  const g = fleetAdoptionGroupDeltas;
  const x = fleetAdoptionFacetDeltas;
  const facets = (['region', 'district', 'tag', 'connectivity'] as const).filter((k) => input[k]);
  const query =
    from === 'rollup' && facets.length === 0
      ? sql`
      select version, greatest(day, ${first}) as day, sum(delta)::int as delta from fleet_adoption_deltas
      where org_id = ${ctx.orgId} and day <= ${today} group by 1, 2`
      : from === 'rollup' && facets.length === 1
        ? sql`
      select ${x.version} as version, greatest(${x.day}, ${first}) as day, sum(${x.delta})::int as delta
      from ${x}
      where ${x.orgId} = ${ctx.orgId} and ${x.facet} = ${facets[0]!} and ${x.value} = ${input[facets[0]!]!}
        and ${x.day} <= ${today}
      group by 1, 2`
        : from === 'rollup'
          ? sql`
      select ${g.version} as version, greatest(${g.day}, ${first}) as day, sum(${g.delta})::int as delta
      from ${g}
      where ${and(
        eq(g.orgId, ctx.orgId),
        sql`${g.day} <= ${today}`,
        input.region ? eq(g.region, input.region) : undefined,
        input.district ? eq(g.district, input.district) : undefined,
        input.tag ? arrayContains(g.tags, [input.tag]) : undefined,
        input.connectivity ? eq(g.connectivity, input.connectivity) : undefined,
      )}
      group by 1, 2`
          : sql`
      select sp.version, d.day, sum(d.delta)::int as delta
      from site_version_spans sp
        join sites on sites.id = sp.site_id
        cross join lateral (values
          (greatest(floor(extract(epoch from sp.valid_from) / 86400)::int, ${first}), 1),
          (case when sp.valid_to < ${new Date((today + 1) * DAY)} then floor(extract(epoch from sp.valid_to) / 86400)::int end, -1)
        ) as d(day, delta)
      where sp.org_id = ${ctx.orgId} and ${siteFilterWhere(ctx, input, now)} and sp.valid_from < ${new Date((today + 1) * DAY)}
        and (sp.valid_to is null or sp.valid_to >= ${new Date(first * DAY)}) and d.day is not null
      group by 1, 2`;
  return rowsOf<{ version: string | null; day: number; delta: number }>(await ctx.db.execute(query));
}
