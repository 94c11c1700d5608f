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
      // Sorted, so two rebuilds of overlapping sets never wait on each other in a cycle.
      await tx.execute(
        sql`select pg_advisory_xact_lock(hashtextextended(id::text, 7)) from unnest(${sql.raw(arrayLiteral(ids))}) as id`,
      );
      await tx.execute(
        sql`delete from site_version_spans where site_id = any(${sql.raw(arrayLiteral(ids))})`,
      );
      await tx.execute(insertSpans(sql`r.site_id = any(${sql.raw(arrayLiteral(ids))})`));
    } else {
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
    insert into site_version_spans (org_id, site_id, version, valid_from, valid_to, counted)
    select org_id, site_id, version, at, lead(at) over (partition by site_id order by at, n),
      -- Archived sites are not in the fleet's adoption (the archive trigger flips this, migration 0010).
      (select s.archived_at is null from sites s where s.id = runs.site_id)
    from (
      select org_id, site_id, version, at, n,
        lag(version) over (partition by site_id order by at, n) as prev, row_number() over (partition by site_id order by at, n) as k
      from (
        select r.org_id, r.site_id, r.version, r.reported_at as at,
          row_number() over (partition by r.site_id order by r.reported_at, r.received_at, r.id) as n
        from site_reports r where ${where}
      ) ordered
    ) runs
    where k = 1 or prev is distinct from version`;
}
