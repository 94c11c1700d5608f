import { and, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { sites } from '../../db/schema/index.ts';
import { sha256Hex } from '../../lib/crypto.ts';
import type { RateLimiter } from '../../lib/rate-limit.ts';

export interface CheckinFields {
  version: string;
  status: 'healthy' | 'degraded' | 'failed' | 'installing';
  healthChecks: { name: string; ok: boolean; message?: string }[];
  dockerVersion?: string;
  imageStore?: string;
  composeVersion?: string;
  diskFreeBytes?: number;
  idempotencyKey: string;
  reportedAt?: string;
}

export type CheckinOutcome =
  | { ok: true; reportId: string; duplicate: boolean; receivedAt: Date; siteCode: string; targetVersion: string | null }
  | { ok: false; reason: 'invalid-token' }
  | { ok: false; reason: 'rate-limited'; retryAfter: number };

interface Pending { tokenHash: string; input: CheckinFields; receivedAt: Date; resolve(o: CheckinOutcome): void; reject(e: unknown): void }

/**
 * Check-ins are many and tiny, so they are written in groups: requests arriving within a couple of
 * milliseconds share one transaction (resolve tokens, append reports, move the sites forward),
 * which costs the database about as much as one check-in did. Each request still gets its own
 * answer, and the whole group is atomic. With a database per request (Workers) every group has one
 * member, which is the plain one-transaction path.
 */
export class CheckinBatcher {
  private queue: Pending[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private flushing = 0;

  constructor(private readonly db: Db, private readonly limiter: RateLimiter,
    private readonly opts: { maxBatch: number; maxWaitMs: number; maxInFlight: number } = { maxBatch: 200, maxWaitMs: 2, maxInFlight: 4 }) {}

  async submit(token: string, input: CheckinFields, receivedAt = new Date()): Promise<CheckinOutcome> {
    const tokenHash = await sha256Hex(token);
    return new Promise((resolve, reject) => {
      this.queue.push({ tokenHash, input, receivedAt, resolve, reject });
      if (this.queue.length >= this.opts.maxBatch && this.flushing < this.opts.maxInFlight) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.opts.maxWaitMs);
    });
  }

  private flush() {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.queue.length === 0) return;
    // Keep a bounded number of transactions in flight; the rest wait for the next group.
    if (this.flushing >= this.opts.maxInFlight) { this.timer = setTimeout(() => this.flush(), this.opts.maxWaitMs); return; }
    const batch = this.queue.splice(0, this.opts.maxBatch);
    this.flushing++;
    writeCheckins(this.db, this.limiter, batch)
      .then((outcomes) => batch.forEach((p, i) => p.resolve(outcomes[i]!)))
      .catch((e) => batch.forEach((p) => p.reject(e)))
      .finally(() => {
        this.flushing--;
        if (this.queue.length) this.flush();
      });
  }
}

/** Rows of `db.execute` on every driver (node-postgres, PGlite and Neon all answer `{ rows }`). */
function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

async function writeCheckins(db: Db, limiter: RateLimiter, batch: Pending[]): Promise<CheckinOutcome[]> {
  // Two round trips for the whole group: which sites the tokens belong to, then one statement that
  // appends the reports, moves the sites forward and answers every check-in. One statement is one
  // transaction, so the append and the site update still happen together or not at all.
  const hashes = [...new Set(batch.map((p) => p.tokenHash))];
  const found = await db.select({ id: sites.id, orgId: sites.orgId, code: sites.code, tokenHash: sites.deviceTokenHash })
    .from(sites).where(and(inArray(sites.deviceTokenHash, hashes), isNull(sites.archivedAt)));
  const byHash = new Map(found.map((s) => [s.tokenHash!, s]));

  const outcomes: CheckinOutcome[] = new Array(batch.length);
  const accepted: { i: number; site: (typeof found)[number] }[] = [];
  batch.forEach((p, i) => {
    const site = byHash.get(p.tokenHash);
    if (!site) { outcomes[i] = { ok: false, reason: 'invalid-token' }; return; }
    const wait = limiter.hit(site.id);
    if (wait) { outcomes[i] = { ok: false, reason: 'rate-limited', retryAfter: wait }; return; }
    accepted.push({ i, site });
  });
  if (accepted.length === 0) return outcomes;

  const rows = accepted.map(({ i, site }, ord) => {
    const p = batch[i]!;
    return {
      ord, orgId: site.orgId, siteId: site.id, version: p.input.version, status: p.input.status,
      healthChecks: JSON.stringify(p.input.healthChecks), dockerVersion: p.input.dockerVersion ?? null,
      imageStore: p.input.imageStore ?? null, composeVersion: p.input.composeVersion ?? null,
      diskFreeBytes: p.input.diskFreeBytes ?? null,
      details: JSON.stringify(p.input.reportedAt ? { siteClock: p.input.reportedAt } : {}),
      idempotencyKey: p.input.idempotencyKey,
      // "Last seen" is the server's clock: site clocks drift, and a wrong one must not hide a site.
      at: p.receivedAt.toISOString(),
    };
  });
  // One array parameter per column (unnest) rather than one per cell: a group of 200 check-ins is
  // 14 parameters. Enum arrays do not travel as parameters on every driver, hence text and casts.
  const col = <T>(f: (r: (typeof rows)[number]) => T) => sql.param(rows.map(f));
  const result = await db.execute(sql`
    with
    -- A heartbeat is re-sent every few minutes and the next one supersedes it, so a crash may lose
    -- the last instant of them without harm: do not wait for the WAL flush (docs/decisions.md).
    async as (select set_config('synchronous_commit', 'off', true)),
    v as (
      select u.*, r.id as release_id from unnest(
        ${col((r) => r.ord)}::int[], ${col((r) => r.orgId)}::uuid[], ${col((r) => r.siteId)}::uuid[], ${col((r) => r.version)}::text[],
        ${col((r) => r.status)}::text[], ${col((r) => r.healthChecks)}::jsonb[], ${col((r) => r.dockerVersion)}::text[],
        ${col((r) => r.imageStore)}::text[], ${col((r) => r.composeVersion)}::text[], ${col((r) => r.diskFreeBytes)}::bigint[],
        ${col((r) => r.details)}::jsonb[], ${col((r) => r.idempotencyKey)}::text[], ${col((r) => r.at)}::timestamptz[])
        as u(ord, org_id, site_id, version, status, health_checks, docker_version, image_store, compose_version, disk_free_bytes,
          details, idempotency_key, at)
      left join releases r on r.org_id = u.org_id and r.version = u.version
    ),
    ins as (
      insert into site_reports (org_id, site_id, source, version, release_id, status, health_checks, docker_version,
        image_store, compose_version, disk_free_bytes, details, idempotency_key, reported_at, received_at)
      select org_id, site_id, 'heartbeat', version, release_id, status, health_checks, docker_version, image_store,
        compose_version, disk_free_bytes, details, idempotency_key, at, at
      from v where (select count(*) from async) = 1
      on conflict (site_id, idempotency_key) do nothing
      returning id, site_id, idempotency_key, received_at, version, release_id, status, reported_at
    ),
    latest as (select distinct on (site_id) * from ins order by site_id, reported_at desc),
    upd as (
      update sites s set reported_version = l.version, reported_release_id = l.release_id, reported_status = l.status,
        reported_at = l.reported_at, updated_at = now()
      from latest l where s.id = l.site_id and (s.reported_at is null or s.reported_at <= l.reported_at)
      returning s.id
    )
    select v.ord,
      coalesce(ins.id, old.id) as report_id,
      coalesce(ins.received_at, old.received_at) as received_at,
      -- Within one group the first of two check-ins with the same key is the new one.
      (ins.id is not null and row_number() over (partition by v.site_id, v.idempotency_key order by v.ord) = 1) as fresh,
      (select r.version from releases r join sites s on s.target_release_id = r.id where s.id = v.site_id) as target_version,
      (select count(*) from upd) as moved
    from v
    left join ins on ins.site_id = v.site_id and ins.idempotency_key = v.idempotency_key
    left join site_reports old on ins.id is null and old.site_id = v.site_id and old.idempotency_key = v.idempotency_key`);
  const answered = rowsOf<{ ord: number; report_id: string; received_at: string | Date; fresh: boolean; target_version: string | null }>(result);
  for (const a of answered) {
    const { i, site } = accepted[a.ord]!;
    outcomes[i] = {
      ok: true, reportId: a.report_id, duplicate: !a.fresh, receivedAt: new Date(a.received_at),
      siteCode: site.code, targetVersion: a.target_version,
    };
  }
  return outcomes;
}
