import { sql, type SQL } from 'drizzle-orm';
import type { ServiceCtx } from '../context.ts';
import type { PlanInput } from './input.ts';
import { pickKey } from './plan.ts';

/**
 * A plan's waves as one SQL expression over `s` (a `sites` row): the position of the wave that takes
 * the site, or null. The same rules as `assignWaves` (plan.ts), without shipping the fleet to Node:
 * each wave is a predicate, and `case when wave 0 when wave 1 …` gives a site to the first wave that
 * matches it, which is "from the sites no earlier wave took". Only what needs Node is read:
 *   * case-insensitive names (regions, districts, tags, codes) are matched in JavaScript against the
 *     fleet's distinct values, so `lower()` in the database (ASCII-only under the C locale) never
 *     decides; the predicate compares exact stored values;
 *   * a share or count is drawn from the ids of the wave's candidates in the seed's order (`pickKey`),
 *     and the wave becomes "one of these ids".
 */
export interface ResolvedWaves {
  /** `case … end` over `s`: the site's wave position, or null when no wave takes it. */
  waveOf: SQL;
  /** Codes of `siteCodes` matching no site, in the order of the plan (as `assignWaves` names them). */
  unknownCodes: string[];
}

/** The sites a plan draws from: the organisation's, not archived (`s` is `sites`). */
export const planSites = (ctx: ServiceCtx) => sql`s.org_id = ${ctx.orgId} and s.archived_at is null`;

/**
 * Plans are estimated as costly (a scan of the fleet with a subplan per wave), so PostgreSQL would
 * JIT-compile them: on the 100,000-site bench that compiling took 4.5 of the preview's 6.2 s, for
 * statements that run in a few hundred milliseconds. Switched off for the caller's transaction.
 */
export async function noJit(ctx: ServiceCtx) {
  await ctx.db.execute(sql`set local jit = off`);
}

const lowerSet = (xs: string[] | undefined) => (xs?.length ? new Set(xs.map((x) => x.toLowerCase())) : null);
const uuids = (ids: string[]) => sql`${sql.param(ids)}::uuid[]`;
const texts = (xs: string[]) => sql`${sql.param(xs)}::text[]`;

async function rows<T>(ctx: ServiceCtx, q: SQL): Promise<T[]> {
  return ((await ctx.db.execute(q)) as unknown as { rows: T[] }).rows;
}

export async function resolveWaves(
  ctx: ServiceCtx,
  waves: PlanInput['waves'],
  seed: string,
): Promise<ResolvedWaves> {
  const sels = waves.map((w) => w.selector);
  const need = {
    regions: sels.some((s) => s.regions?.length),
    districts: sels.some((s) => s.districts?.length),
    tags: sels.some((s) => s.tags?.length),
  };
  // The fleet's distinct names, matched case-insensitively here (exactly as assignWaves does).
  const [names] =
    need.regions || need.districts || need.tags
      ? await rows<{ regions: string[] | null; districts: string[] | null; tags: string[] | null }>(
          ctx,
          sql`select
            ${need.regions ? sql`(select array_agg(distinct s.region) from sites s where ${planSites(ctx)} and s.region is not null)` : sql`null`} as regions,
            ${need.districts ? sql`(select array_agg(distinct s.district) from sites s where ${planSites(ctx)} and s.district is not null)` : sql`null`} as districts,
            ${need.tags ? sql`(select array_agg(distinct t) from sites s, unnest(s.tags) t where ${planSites(ctx)})` : sql`null`} as tags`,
        )
      : [{ regions: null, districts: null, tags: null }];
  const exact = (stored: string[] | null, wanted: Set<string>) =>
    (stored ?? []).filter((v) => wanted.has(v.toLowerCase()));

  // Sites named by code: those whose code lowercases (in SQL) to a wanted one, plus every non-ASCII
  // code, so that JavaScript's toLowerCase decides as in assignWaves.
  const codes = [...new Set(sels.flatMap((s) => [...(s.siteCodes ?? []), ...(s.excludeCodes ?? [])]))];
  const byCode = new Map<string, string>();
  if (codes.length) {
    const found = await rows<{ id: string; code: string }>(
      ctx,
      sql`select s.id, s.code from sites s where ${planSites(ctx)}
        and (lower(s.code) = any(${texts(codes.map((c) => c.toLowerCase()))}) or s.code ~ '[^\\x01-\\x7f]')`,
    );
    for (const f of found) byCode.set(f.code.toLowerCase(), f.id);
  }

  const unknownCodes: string[] = [];
  const branches: SQL[] = [];
  const caseOf = (bs: SQL[]) =>
    bs.length
      ? sql`(case ${sql.join(
          bs.map((b, i) => sql`when ${b} then ${sql.raw(String(i))}`),
          sql` `,
        )} end)`
      : sql`null::int`;
  for (const sel of sels) {
    const regions = lowerSet(sel.regions);
    const districts = lowerSet(sel.districts);
    const tags = lowerSet(sel.tags);
    const parts: SQL[] = [];
    if (sel.all || regions || districts || tags) {
      const filters: SQL[] = [sql`true`];
      if (regions) filters.push(sql`s.region = any(${texts(exact(names!.regions, regions))})`);
      if (districts) filters.push(sql`s.district = any(${texts(exact(names!.districts, districts))})`);
      if (tags) filters.push(sql`s.tags && ${texts(exact(names!.tags, tags))}`);
      parts.push(sql`(${sql.join(filters, sql` and `)})`);
    }
    const named: string[] = [];
    for (const code of sel.siteCodes ?? []) {
      const id = byCode.get(code.toLowerCase());
      if (id === undefined) unknownCodes.push(code);
      else named.push(id);
    }
    if (named.length) parts.push(sql`s.id = any(${uuids(named)})`);
    const excluded = (sel.excludeCodes ?? [])
      .map((c) => byCode.get(c.toLowerCase()))
      .filter((x): x is string => x !== undefined);
    let pred = parts.length ? sql`(${sql.join(parts, sql` or `)})` : sql`false`;
    if (excluded.length) pred = sql`(${pred} and not s.id = any(${uuids(excluded)}))`;
    if (sel.share !== undefined || sel.count !== undefined) {
      // The candidates are the sites this wave matches that no earlier wave took.
      const candidates = (
        await rows<{ id: string }>(
          ctx,
          sql`select s.id from sites s where ${planSites(ctx)} and ${caseOf(branches)} is null and ${pred}`,
        )
      ).map((r) => r.id);
      const n = sel.count ?? Math.ceil((sel.share! / 100) * candidates.length);
      const picked = candidates
        .map((id) => ({ id, k: pickKey(seed, id) }))
        .sort((a, b) => a.k - b.k || (a.id < b.id ? -1 : 1))
        .slice(0, n)
        .map((x) => x.id);
      pred = picked.length ? sql`s.id = any(${uuids(picked)})` : sql`false`;
    }
    branches.push(pred);
  }
  return { waveOf: caseOf(branches), unknownCodes };
}
