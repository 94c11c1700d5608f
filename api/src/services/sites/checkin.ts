import { and, eq, inArray, isNull, or, sql } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { releases, siteReports, sites } from '../../db/schema/index.ts';
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
  return db.transaction(async (tx) => {
    // A heartbeat is re-sent every few minutes and the next one supersedes it, so a crash may lose
    // the last instant of them without harm: skip waiting for the WAL flush (docs/decisions.md).
    await tx.execute(sql`set local synchronous_commit = off`);
    const hashes = [...new Set(batch.map((p) => p.tokenHash))];
    const found = await tx.select({ id: sites.id, orgId: sites.orgId, code: sites.code, tokenHash: sites.deviceTokenHash, targetReleaseId: sites.targetReleaseId })
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

    const orgIds = [...new Set(accepted.map((a) => a.site.orgId))];
    const versions = [...new Set(accepted.map((a) => batch[a.i]!.input.version))];
    const targets = [...new Set(accepted.map((a) => a.site.targetReleaseId).filter((x): x is string => x !== null))];
    const rel = await tx.select({ id: releases.id, orgId: releases.orgId, version: releases.version }).from(releases)
      .where(or(and(inArray(releases.orgId, orgIds), inArray(releases.version, versions)), targets.length ? inArray(releases.id, targets) : undefined));
    const releaseByVersion = new Map(rel.map((r) => [`${r.orgId}|${r.version}`, r.id]));
    const versionById = new Map(rel.map((r) => [r.id, r.version]));

    const rows = accepted.map(({ i, site }) => {
      const p = batch[i]!;
      return {
        orgId: site.orgId, siteId: site.id, source: 'heartbeat' as const, version: p.input.version,
        releaseId: releaseByVersion.get(`${site.orgId}|${p.input.version}`) ?? null, status: p.input.status,
        healthChecks: p.input.healthChecks, dockerVersion: p.input.dockerVersion ?? null, imageStore: p.input.imageStore ?? null,
        composeVersion: p.input.composeVersion ?? null, diskFreeBytes: p.input.diskFreeBytes ?? null,
        details: p.input.reportedAt ? { siteClock: p.input.reportedAt } : {},
        idempotencyKey: p.input.idempotencyKey,
        // "Last seen" is the server's clock: site clocks drift, and a wrong one must not hide a site.
        reportedAt: p.receivedAt, receivedAt: p.receivedAt,
      };
    });
    // One array parameter per column (unnest) rather than one per cell: a group of 200 check-ins
    // is 15 parameters, and building the statement costs next to nothing.
    const col = <T>(f: (r: (typeof rows)[number]) => T) => sql.param(rows.map(f));
    const insertedRaw = await tx.execute(sql`
      insert into ${siteReports} (org_id, site_id, source, version, release_id, status, health_checks, docker_version,
        image_store, compose_version, disk_free_bytes, details, idempotency_key, reported_at, received_at)
      select u.org_id, u.site_id, u.source::report_source, u.version, u.release_id, u.status, u.health_checks, u.docker_version,
        u.image_store, u.compose_version, u.disk_free_bytes, u.details, u.idempotency_key, u.reported_at, u.received_at
      from unnest(${col((r) => r.orgId)}::uuid[], ${col((r) => r.siteId)}::uuid[], ${col((r) => r.source)}::text[],
        ${col((r) => r.version)}::text[], ${col((r) => r.releaseId)}::uuid[], ${col((r) => r.status)}::text[],
        ${col((r) => JSON.stringify(r.healthChecks))}::jsonb[], ${col((r) => r.dockerVersion)}::text[], ${col((r) => r.imageStore)}::text[],
        ${col((r) => r.composeVersion)}::text[], ${col((r) => r.diskFreeBytes)}::bigint[], ${col((r) => JSON.stringify(r.details))}::jsonb[],
        ${col((r) => r.idempotencyKey)}::text[], ${col((r) => r.reportedAt.toISOString())}::timestamptz[], ${col((r) => r.receivedAt.toISOString())}::timestamptz[])
        as u(org_id, site_id, source, version, release_id, status, health_checks, docker_version, image_store, compose_version,
          disk_free_bytes, details, idempotency_key, reported_at, received_at)
      -- enum arrays do not travel as parameters on every driver, hence text[] and the cast above
      on conflict (site_id, idempotency_key) do nothing
      returning id, site_id, idempotency_key, received_at`);
    const inserted = rowsOf<{ id: string; site_id: string; idempotency_key: string; received_at: string | Date }>(insertedRaw)
      .map((r) => ({ id: r.id, siteId: r.site_id, key: r.idempotency_key, receivedAt: new Date(r.received_at) }));
    const ref = (siteId: string, key: string) => `${siteId}|${key}`;
    const byKey = new Map(inserted.map((r) => [ref(r.siteId, r.key), r]));
    const fresh = new Set(inserted.map((r) => ref(r.siteId, r.key)));
    const missing = rows.filter((r) => !byKey.has(ref(r.siteId, r.idempotencyKey)));
    if (missing.length) {
      // Repeats of an earlier check-in: answer with the first one, write nothing.
      const earlier = await tx.select({ id: siteReports.id, siteId: siteReports.siteId, key: siteReports.idempotencyKey, receivedAt: siteReports.receivedAt })
        .from(siteReports)
        .where(or(...missing.map((m) => and(eq(siteReports.siteId, m.siteId), eq(siteReports.idempotencyKey, m.idempotencyKey)))));
      for (const e of earlier) byKey.set(ref(e.siteId, e.key), e);
    }

    // Move each site to its newest new report (one UPDATE for the group).
    const latest = new Map<string, (typeof rows)[number]>();
    for (const r of rows) {
      if (!fresh.has(ref(r.siteId, r.idempotencyKey))) continue;
      const cur = latest.get(r.siteId);
      if (!cur || cur.reportedAt <= r.reportedAt) latest.set(r.siteId, r);
    }
    if (latest.size) {
      const l = [...latest.values()];
      const arr = <T>(f: (r: (typeof l)[number]) => T) => sql.param(l.map(f));
      await tx.execute(sql`update ${sites} set reported_version = v.version, reported_release_id = v.release_id,
        reported_status = v.status, reported_at = v.at, updated_at = now()
        from unnest(${arr((r) => r.siteId)}::uuid[], ${arr((r) => r.version)}::text[], ${arr((r) => r.releaseId)}::uuid[],
          ${arr((r) => r.status)}::text[], ${arr((r) => r.reportedAt.toISOString())}::timestamptz[]) as v(id, version, release_id, status, at)
        where ${sites.id} = v.id and (${sites.reportedAt} is null or ${sites.reportedAt} <= v.at)`);
    }

    accepted.forEach(({ i, site }, k) => {
      const r = byKey.get(ref(site.id, rows[k]!.idempotencyKey))!;
      outcomes[i] = {
        ok: true, reportId: r.id, duplicate: !fresh.has(ref(site.id, rows[k]!.idempotencyKey)) || rows.findIndex((x) => x.siteId === site.id && x.idempotencyKey === rows[k]!.idempotencyKey) !== k,
        receivedAt: r.receivedAt, siteCode: site.code,
        targetVersion: site.targetReleaseId ? versionById.get(site.targetReleaseId) ?? null : null,
      };
    });
    return outcomes;
  });
}
