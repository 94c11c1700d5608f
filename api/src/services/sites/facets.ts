import { and, eq, isNull, sql } from 'drizzle-orm';
import { sites } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { visibleSites } from './scope.ts';

/** Distinct values for the filter pickers (regions, districts, tags, reported versions). */
export async function siteFacets({ ctx, input = {} }: { ctx: ServiceCtx; input?: { region?: string } }) {
  const where = and(visibleSites(ctx), isNull(sites.archivedAt));
  // Set-returning expressions (unnest) cannot appear in WHERE; they never yield nulls anyway.
  const distinct = async (expr: ReturnType<typeof sql>, setReturning = false) =>
    (
      await ctx.db
        .selectDistinct({ v: sql<string>`${expr}` })
        .from(sites)
        .where(setReturning ? where : and(where, sql`${expr} is not null`))
        .orderBy(sql`1`)
        .limit(1000)
    ).map((r) => r.v);
  const [regions, districts, tags, versions] = await Promise.all([
    distinct(sql`${sites.region}`),
    // Districts of the chosen region only, so the picker offers what can match.
    input.region
      ? (
          await ctx.db
            .selectDistinct({ v: sites.district })
            .from(sites)
            .where(and(where, eq(sites.region, input.region), sql`${sites.district} is not null`))
            .orderBy(sites.district)
            .limit(1000)
        ).map((r) => r.v!)
      : distinct(sql`${sites.district}`),
    distinct(sql`unnest(${sites.tags})`, true),
    distinct(sql`${sites.reportedVersion}`),
  ]);
  return { regions, districts, tags, versions };
}
