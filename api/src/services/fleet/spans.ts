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
      await tx.execute(replaceSpans(list));
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

const SPAN_COLUMNS = sql.raw(
  'org_id, site_id, version, valid_from, valid_to, counted, region, district, connectivity, tags',
);
// What makes two runs the same (the site aside), for the diff below.
const SAME = sql.raw('version, valid_from, valid_to, counted, region, district, connectivity, tags');

function insertSpans(where: ReturnType<typeof sql>) {
  return sql`insert into site_version_spans (${SPAN_COLUMNS}) ${selectSpans(where)}`;
}

/**
 * The sites' runs made equal to their rebuild in one statement, touching only the runs that
 * differ: a new report usually ends one run and starts another, so one row goes and two come, and
 * the rollup triggers on the runs (migrations 0010, 0019) add up that difference instead of taking
 * every run of the site away and putting it back. Identical runs are paired by their rank among
 * identical ones, so the result is the rebuild's rows exactly, repeats included.
 */
function replaceSpans(list: ReturnType<typeof sql.raw>) {
  return sql`
    with fresh as (
      select f.*, row_number() over (partition by f.site_id, ${SAME}) as rn
      from (${selectSpans(sql`r.site_id = any(${list})`)}) as f (${SPAN_COLUMNS})
    ), kept as (
      select sp.ctid as t, sp.*, row_number() over (partition by sp.site_id, ${SAME}) as rn
      from site_version_spans sp where sp.site_id = any(${list})
    ), gone as (
      delete from site_version_spans sp using kept k
      where sp.ctid = k.t and not exists (
        select 1 from fresh f where f.site_id = k.site_id and f.rn = k.rn
          and (f.version, f.valid_from, f.valid_to, f.counted, f.region, f.district, f.connectivity, f.tags)
            is not distinct from (k.version, k.valid_from, k.valid_to, k.counted, k.region, k.district, k.connectivity, k.tags))
    )
    insert into site_version_spans (${SPAN_COLUMNS})
    select ${SPAN_COLUMNS} from fresh f
    where not exists (
      select 1 from kept k where k.site_id = f.site_id and k.rn = f.rn
        and (f.version, f.valid_from, f.valid_to, f.counted, f.region, f.district, f.connectivity, f.tags)
          is not distinct from (k.version, k.valid_from, k.valid_to, k.counted, k.region, k.district, k.connectivity, k.tags))`;
}

function selectSpans(where: ReturnType<typeof sql>) {
  return sql`
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
