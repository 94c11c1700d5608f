import { sql } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';

/**
 * Rebuilds the version runs (`site_version_spans`) of some sites — or of a whole organisation —
 * from their reports. The rule is the site row's: at any instant a site runs the version of its
 * latest report by `reported_at` (a later-received report wins a tie). Rebuilding from the source
 * instead of patching makes late reports, repeats and concurrent writers harmless: each site is
 * rebuilt under an advisory lock, reading the reports committed before it.
 */
export async function rebuildVersionSpans(
  db: Db,
  target: { siteIds: string[] } | { orgId: string },
): Promise<void> {
  if ('siteIds' in target && target.siteIds.length === 0) return;
  const run = async (tx: Db) => {
    if ('siteIds' in target) {
      const ids = [...new Set(target.siteIds)].sort();
      const list = sql.raw(arrayLiteral(ids));
      // The site rows first, shared: a change of region, district, tags or connectivity (which
      // writes the runs again with the new group, migration 0019) then waits for this rebuild, or
      // this rebuild for it, instead of both rewriting the runs from different snapshots. Before the
      // advisory locks, in the order a report takes them (it updates the site, then rebuilds).
      // Sorted, so two rebuilds of overlapping sets never wait on each other in a cycle.
      await tx.execute(sql`select 1 from sites where id = any(${list}) order by id for share`);
      await tx.execute(
        sql`select pg_advisory_xact_lock(hashtextextended(id::text, 7)) from unnest(${list}) as id`,
      );
      await tx.execute(sql`delete from site_version_spans where site_id = any(${list})`);
      await tx.execute(insertSpans(sql`r.site_id = any(${list})`));
    } else {
      await tx.execute(sql`select 1 from sites where org_id = ${target.orgId} order by id for share`);
      await tx.execute(sql`delete from site_version_spans where org_id = ${target.orgId}`);
      await tx.execute(insertSpans(sql`r.org_id = ${target.orgId}`));
    }
  };
  await db.transaction(async (tx) => run(tx as unknown as Db));
}

function uuid(id: string): string {
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw new Error(`not a uuid: ${id}`);
  return id;
}

function arrayLiteral(ids: string[]) {
  return `array[${ids.map((i) => `'${uuid(i)}'`).join(',')}]::uuid[]`;
}

function insertSpans(where: ReturnType<typeof sql>) {
  return sql`
    insert into site_version_spans (org_id, site_id, version, valid_from, valid_to, counted, region, district, connectivity, tags)
    select runs.org_id, runs.site_id, runs.version, runs.at, lead(runs.at) over (partition by runs.site_id order by runs.at, runs.n),
      -- Archived sites are not in the fleet's adoption; the runs carry the site's group for the
      -- filtered rollup (the site's triggers rewrite both when they change, migrations 0010 and 0019).
      s.archived_at is null, s.region, s.district, s.connectivity, s.tags
    from (
      select org_id, site_id, version, at, n,
        lag(version) over (partition by site_id order by at, n) as prev, row_number() over (partition by site_id order by at, n) as k
      from (
        select r.org_id, r.site_id, r.version, r.reported_at as at,
          row_number() over (partition by r.site_id order by r.reported_at, r.received_at, r.id) as n
        from site_reports r where ${where}
      ) ordered
    ) runs
      join sites s on s.id = runs.site_id
    where runs.k = 1 or runs.prev is distinct from runs.version`;
}
