import { sql, type SQL } from 'drizzle-orm';
import { stringify } from 'csv-stringify/sync';
import type { ServiceCtx } from '../context.ts';
import { keysetPage } from '../keyset.ts';
import { escapeCell } from '../sites/csv-export.ts';
import { loadRollout } from './view.ts';

/** A site is "silent" when an open wave waits on it and it has not reported for this many days. */
export const SILENT_DAYS = 3;

/**
 * Why a site needs attention. `problem_report`: a coordinator reported a problem at one of the
 * rollout's sites since the rollout started, and nobody has marked it resolved yet.
 */
export type AttentionKind = 'failed' | 'rolled_back' | 'overdue' | 'silent' | 'problem_report';

export interface AttentionItem {
  kind: AttentionKind;
  siteId: string;
  code: string;
  name: string;
  region: string | null;
  district: string | null;
  connectivity: string;
  contactName: string | null;
  contactPhone: string | null;
  wave: string;
  targetState: string;
  reason: string | null;
  since: string;
  lastReport: { version: string | null; status: string | null; at: string | null };
  download: { bundleState: string | null; downloadedBytes: number; complete: boolean; lastAt: string | null };
}

interface Row {
  site_id: string;
  code: string;
  name: string;
  region: string | null;
  district: string | null;
  connectivity: string;
  contact_name: string | null;
  contact_phone: string | null;
  wave: string;
  state: string;
  reason: string | null;
  since: string | Date;
  reported_version: string | null;
  reported_status: string | null;
  reported_at: string | Date | null;
  bundle_state: string | null;
  bytes: string | number | null;
  complete: boolean | null;
  last_download: string | Date | null;
  /** Set on a coordinator's problem report: what they wrote, and what the site's screen said. */
  problem?: string | null;
}

const PAGE = 1000;

/**
 * Sites a page walks in code order before the set-based pass takes over: 2,000, then the next 16,000
 * (the second walk stops as soon as the page is full, so a dense attention list never reads them all).
 */
export const WALKS: readonly number[] = [2000, 16_000];

async function page(
  ctx: ServiceCtx,
  rolloutId: string,
  releaseId: string,
  now: Date,
  after: string | null,
  limit: number,
  walks: readonly number[] = WALKS,
) {
  const silentBefore = new Date(now.getTime() - SILENT_DAYS * 86_400_000).toISOString();
  const needs = sql`(t.state in ('failed', 'rolled_back', 'overdue')
    or (t.state in ('pending', 'bundled', 'downloaded', 'installing') and w.state in ('open', 'paused', 'failed')
        and (s.reported_at is null or s.reported_at < ${silentBefore}::timestamptz)))`;
  const from = after === null ? sql`` : sql`and s.code > ${after}`;
  // Past the first `skip` sites (in code order) after the cursor.
  const past = (skip: number) =>
    skip === 0
      ? from
      : sql`${from} and s.code > (select s.code from sites s where s.org_id = ${ctx.orgId} ${from}
                      order by s.code offset ${skip - 1} limit 1)`;
  // The page is picked first (targets and sites only, by code), and only its rows look up their
  // bundle and downloads: the lateral lookups never run for the whole wave. Picking takes up to three
  // passes with the same result as one: when many sites need attention, walking the next sites in code
  // order (an index range scan, each site probing its one target) fills the page at once; when few
  // do, the page is finished past the walks by joining the rollout's targets to their sites. The
  // walks are written as walks, not left to the planner: with a join PostgreSQL chose to read and
  // sort every target and site (1–1.7 s on 100,000 sites) when the first walk fell a few rows short.
  const rows: Row[] = [];
  let skip = 0;
  for (const n of walks) {
    rows.push(
      ...(await detail(
        ctx,
        releaseId,
        sql`
      select t.site_id, t.wave_id, t.state, t.reason, t.state_changed_at, s.code
      from (select s.id, s.code, s.reported_at from sites s where s.org_id = ${ctx.orgId} ${past(skip)}
            order by s.code limit ${n}) s
      cross join lateral (select t.site_id, t.wave_id, t.state, t.reason, t.state_changed_at from rollout_targets t
        where t.rollout_id = ${rolloutId} and t.site_id = s.id and t.org_id = ${ctx.orgId} limit 1) t
      join rollout_waves w on w.id = t.wave_id
      where ${needs}
      order by s.code limit ${limit - rows.length}`,
      )),
    );
    if (rows.length >= limit) return rows;
    skip += n;
  }
  const rest = await detail(
    ctx,
    releaseId,
    sql`
      select t.site_id, t.wave_id, t.state, t.reason, t.state_changed_at, s.code
      from rollout_targets t
      join rollout_waves w on w.id = t.wave_id
      join sites s on s.id = t.site_id
      where t.rollout_id = ${rolloutId} and t.org_id = ${ctx.orgId} and s.org_id = ${ctx.orgId} and ${needs}
        ${past(skip)}
      order by s.code limit ${limit - rows.length}`,
  );
  return [...rows, ...rest];
}

/** The rows of a picked page (`pick`: site_id, wave_id, state, reason, state_changed_at, code), by code. */
async function detail(ctx: ServiceCtx, releaseId: string, pick: SQL) {
  const result = await ctx.db.execute(sql`
    with pick as materialized (${pick})
    select s.id as site_id, s.code, s.name, s.region, s.district, s.connectivity, s.contact_name, s.contact_phone,
      w.name as wave, p.state, p.reason, p.state_changed_at as since, s.reported_version, s.reported_status, s.reported_at,
      b.state as bundle_state, d.bytes, d.complete, d.last_download
    from pick p
    join rollout_waves w on w.id = p.wave_id
    join sites s on s.id = p.site_id
    ${downloadOf(releaseId)}
    order by p.code`);
  return (result as unknown as { rows: Row[] }).rows;
}

/** The site's latest bundle of the release and what of it was downloaded (`p.site_id` is the site). */
function downloadOf(releaseId: string) {
  return sql`
    left join lateral (select b.id, b.state from bundles b where b.site_id = p.site_id and b.release_id = ${releaseId}
      order by b.created_at desc limit 1) b on true
    left join lateral (select coalesce(sum(x.bytes), 0) as bytes, bool_or(x.complete) as complete, max(x.created_at) as last_download
      from bundle_downloads x where x.bundle_id = b.id) d on true`;
}

/** Open problems coordinators reported at the rollout's sites since it started, newest first (a few at most). */
async function problemRows(ctx: ServiceCtx, rolloutId: string, releaseId: string, since: Date) {
  const result = await ctx.db.execute(sql`
    select s.id as site_id, s.code, s.name, s.region, s.district, s.connectivity, s.contact_name, s.contact_phone,
      w.name as wave, t.state, null as reason, p.created_at as since, s.reported_version, s.reported_status, s.reported_at,
      b.state as bundle_state, d.bytes, d.complete, d.last_download,
      p.description || case when p.error_text <> '' then ' — ' || p.error_text else '' end as problem
    from site_problems p
    join rollout_targets t on t.site_id = p.site_id and t.rollout_id = ${rolloutId} and t.org_id = ${ctx.orgId}
    join rollout_waves w on w.id = t.wave_id
    join sites s on s.id = p.site_id
    ${downloadOf(releaseId)}
    where p.org_id = ${ctx.orgId} and p.resolved_at is null and p.created_at >= ${since.toISOString()}::timestamptz
    order by p.created_at desc
    limit 200`);
  return (result as unknown as { rows: Row[] }).rows;
}

const isoOf = (v: string | Date | null) => (v === null ? null : new Date(v).toISOString());

function toItem(r: Row): AttentionItem {
  const kind: AttentionKind =
    r.problem != null
      ? 'problem_report'
      : r.state === 'failed' || r.state === 'rolled_back' || r.state === 'overdue'
        ? r.state
        : 'silent';
  return {
    kind,
    siteId: r.site_id,
    code: r.code,
    name: r.name,
    region: r.region,
    district: r.district,
    connectivity: r.connectivity,
    contactName: r.contact_name,
    contactPhone: r.contact_phone,
    wave: r.wave,
    targetState: r.state,
    reason: r.problem ?? r.reason,
    since: isoOf(r.since)!,
    lastReport: { version: r.reported_version, status: r.reported_status, at: isoOf(r.reported_at) },
    download: {
      bundleState: r.bundle_state,
      downloadedBytes: Number(r.bytes ?? 0),
      complete: r.complete ?? false,
      lastAt: isoOf(r.last_download),
    },
  };
}

/**
 * The sites of a rollout needing attention — problems coordinators reported (first page only), then
 * failed, rolled back, overdue, silent — with their last report and download.
 */
export async function listAttention({
  ctx,
  input,
  now = new Date(),
  walks = WALKS,
}: {
  ctx: ServiceCtx;
  input: { id: string; limit: number; after?: string };
  now?: Date;
  /** The walks' lengths (tests use short ones to reach the set-based pass on a small fleet). */
  walks?: readonly number[];
}) {
  const r = await loadRollout(ctx, input.id);
  const { rows, nextCursor } = await keysetPage(
    input.limit,
    (take) => page(ctx, r.id, r.releaseId, now, input.after ?? null, take, walks),
    (last) => last.code,
  );
  const problems =
    input.after === undefined ? (await problemRows(ctx, r.id, r.releaseId, r.createdAt)).map(toItem) : [];
  return { items: [...problems, ...rows.map(toItem)], nextAfter: nextCursor };
}

export const ATTENTION_COLUMNS = [
  'site_code',
  'site_name',
  'region',
  'district',
  'connectivity',
  'contact_name',
  'contact_phone',
  'wave',
  'problem',
  'target_state',
  'reason',
  'since',
  'last_version',
  'last_status',
  'last_report_at',
  'bundle_state',
  'downloaded_bytes',
  'download_complete',
];

/** The attention list as CSV for field teams, streamed a page of 1,000 at a time. */
export async function exportAttentionCsv({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: { id: string };
  now?: Date;
}) {
  const r = await loadRollout(ctx, input.id);
  const encoder = new TextEncoder();
  const opts = { record_delimiter: 'windows', eof: true } as const;
  const text = (v: string | null) => (v === null ? '' : escapeCell(v));
  const csvRow = (i: AttentionItem) => [
    text(i.code),
    text(i.name),
    text(i.region),
    text(i.district),
    i.connectivity,
    text(i.contactName),
    text(i.contactPhone),
    text(i.wave),
    i.kind,
    i.targetState,
    text(i.reason),
    i.since,
    text(i.lastReport.version),
    text(i.lastReport.status),
    i.lastReport.at ?? '',
    i.download.bundleState ?? '',
    i.download.downloadedBytes,
    i.download.complete ? 'yes' : 'no',
  ];
  let after: string | null = null;
  let started = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let rows: Row[];
      if (!started) {
        started = true;
        rows = await problemRows(ctx, r.id, r.releaseId, r.createdAt);
        controller.enqueue(encoder.encode(`\uFEFF${stringify([ATTENTION_COLUMNS], opts)}`));
        if (rows.length) controller.enqueue(encoder.encode(stringify(rows.map(toItem).map(csvRow), opts)));
        return;
      }
      rows = await page(ctx, r.id, r.releaseId, now, after, PAGE);
      if (rows.length) {
        controller.enqueue(encoder.encode(stringify(rows.map(toItem).map(csvRow), opts)));
        after = rows[rows.length - 1]!.code;
      }
      if (rows.length < PAGE) controller.close();
    },
  });
  return { filename: `rollout-${r.id.slice(0, 8)}-attention-${now.toISOString().slice(0, 10)}.csv`, stream };
}
