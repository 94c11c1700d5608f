import { and, eq, isNotNull, sql, type SQL } from 'drizzle-orm';
import semver from 'semver';
import { releases, sites } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';

/** "Behind by 1 / 2 / 3 or more" — the buckets of the breakdown; 3 stands for 3+. */
export type BehindBucket = 1 | 2 | 3;
export const BEHIND_BUCKETS: readonly BehindBucket[] = [1, 2, 3];

export type Layer = 'content' | 'compose' | 'scripts';
export const LAYERS: readonly Layer[] = ['content', 'compose', 'scripts'];

/**
 * What each layer of the release a site reports should be, and whether the site's latest report
 * says otherwise. Only a site that reported the layer (new clients) and runs a release that
 * carries it can drift: an old client or a local build is "unknown", not drifted.
 * - content: the version of the release's content package;
 * - scripts: the release's edge-scripts version;
 * - compose: the SHA-256 of the compose file in the site's own bundle of that release (compose
 *   files are rendered per site, so there is no one hash per release).
 */
export const expectedLayer: Record<Layer, SQL> = {
  content: sql`(select cp.version from releases r join content_packages cp on cp.id = r.content_package_id where r.id = ${sites.reportedReleaseId})`,
  scripts: sql`(select r.edge_scripts_version from releases r where r.id = ${sites.reportedReleaseId})`,
  compose: sql`(select f->>'sha256' from bundles b cross join lateral jsonb_array_elements(b.manifest->'files') f
    where b.site_id = ${sites.id} and b.release_id = ${sites.reportedReleaseId} and b.state = 'ready'
      and f->>'path' = 'compose/docker-compose.yml' order by b.ready_at desc nulls last limit 1)`,
};

const reportedLayer: Record<Layer, SQL> = {
  content: sql`${sites.reportedContentVersion}`,
  scripts: sql`${sites.reportedScriptsVersion}`,
  compose: sql`${sites.reportedComposeSha256}`,
};

/** True when the site reports this layer and it differs from what its release carries. */
export function layerDrift(layer: Layer): SQL {
  return sql`(${reportedLayer[layer]} is not null and ${reportedLayer[layer]} <> ${expectedLayer[layer]}) is true`;
}

interface ReleaseRow {
  id: string;
  version: string;
  state: string;
}

/**
 * The organisation's release order, for "versions behind": a site on version R with target T is
 * behind by the number of published or deprecated releases newer than R, up to and including T
 * (semver order — the order releases are meant to be installed in, not the order they were made).
 * A version that is not semver (a local build) counts as 3+; a site "behind" by zero (it runs a
 * newer or unreleased version than its target) counts as 1: it is off target all the same.
 */
export class ReleaseOrder {
  private readonly live: string[];
  readonly byId: Map<string, ReleaseRow>;

  constructor(
    rows: ReleaseRow[],
    readonly reportedVersions: string[] = [],
  ) {
    this.byId = new Map(rows.map((r) => [r.id, r]));
    this.live = rows
      .filter((r) => (r.state === 'published' || r.state === 'deprecated') && semver.valid(r.version))
      .map((r) => r.version);
  }

  /** The same order, knowing which versions the sites in view report (for list filters and rankings). */
  withReported(versions: (string | null)[]): ReleaseOrder {
    return new ReleaseOrder(
      [...this.byId.values()],
      [...new Set(versions.filter((v): v is string => v !== null))],
    );
  }

  versionsBehind(reported: string | null, targetId: string | null): number | null {
    const target = targetId ? this.byId.get(targetId) : undefined;
    if (!target || reported === null) return null;
    if (!semver.valid(reported) || !semver.valid(target.version)) return 3;
    return this.live.filter((v) => semver.gt(v, reported) && semver.lte(v, target.version)).length;
  }

  bucket(reported: string | null, targetId: string | null): BehindBucket {
    const n = this.versionsBehind(reported, targetId) ?? 3;
    return Math.min(3, Math.max(1, n)) as BehindBucket;
  }

  /**
   * SQL: the site runs a release newer (semver) than its target — "ahead", not behind. Ranks both
   * releases by their place in the organisation's semver order with array_position over one array
   * parameter (a few dozen uuids), so no per-row subquery; a release whose version is not semver
   * has no rank, and a site on it is never ahead.
   */
  aheadCondition(
    cols: { reported: SQL; target: SQL } = {
      reported: sql`${sites.reportedReleaseId}`,
      target: sql`${sites.targetReleaseId}`,
    },
  ): SQL {
    const ranked = [...this.byId.values()]
      .filter((r) => semver.valid(r.version))
      .sort((a, b) => semver.compare(a.version, b.version))
      .map((r) => r.id);
    if (ranked.length < 2) return sql`false`;
    const arr = sql`cast(${`{${ranked.join(',')}}`} as uuid[])`;
    return sql`(array_position(${arr}, ${cols.reported}) > array_position(${arr}, ${cols.target})) is true`;
  }

  /** The newest published release, the one the fleet should converge on. */
  latest(): string | null {
    return [...this.live].sort(semver.rcompare)[0] ?? null;
  }

  /** Semver order of any two reported versions, non-semver ones last. */
  static compare(a: string | null, b: string | null): number {
    const va = a && semver.valid(a),
      vb = b && semver.valid(b);
    if (va && vb) return semver.rcompare(a, b);
    if (va) return -1;
    if (vb) return 1;
    return (a ?? '').localeCompare(b ?? '');
  }

  /** SQL for "behind, and in this bucket": the (target, reported version) pairs that fall in it. */
  behindCondition(bucket: BehindBucket): SQL {
    const pairs: [string, string][] = [];
    for (const t of this.byId.values()) {
      for (const v of this.reportedVersions) if (this.bucket(v, t.id) === bucket) pairs.push([t.id, v]);
    }
    if (pairs.length === 0) return sql`false`;
    const list = sql.join(
      pairs.map(([t, v]) => sql`(${t}::uuid, ${v}::text)`),
      sql`, `,
    );
    return sql`(${sites.targetReleaseId}, ${sites.reportedVersion}) in (${list})`;
  }
}

/** Loads the release order, with the versions the visible fleet reports (for list filters). */
export async function loadReleaseOrder(
  ctx: ServiceCtx,
  opts: { reportedVersions?: boolean } = {},
): Promise<ReleaseOrder> {
  const rows = await ctx.db
    .select({ id: releases.id, version: releases.version, state: releases.state })
    .from(releases)
    .where(eq(releases.orgId, ctx.orgId));
  if (!opts.reportedVersions) return new ReleaseOrder(rows);
  const versions = await ctx.db
    .selectDistinct({ v: sites.reportedVersion })
    .from(sites)
    .where(and(eq(sites.orgId, ctx.orgId), isNotNull(sites.reportedVersion)));
  return new ReleaseOrder(
    rows,
    versions.map((x) => x.v!),
  );
}
