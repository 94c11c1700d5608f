import { sql } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { sha256Hex } from '../../lib/crypto.ts';
import { RateLimiter } from '../../lib/rate-limit.ts';
import { rebuildVersionSpans } from '../fleet/spans.ts';
import { inMaintenanceWindow } from '../rollouts/window.ts';

export interface CheckinFields {
  version: string;
  status: 'healthy' | 'degraded' | 'failed' | 'installing';
  healthChecks: { name: string; ok: boolean; message?: string }[];
  dockerVersion?: string;
  imageStore?: string;
  composeVersion?: string;
  contentPackageVersion?: string;
  edgeScriptsVersion?: string;
  composeSha256?: string;
  diskFreeBytes?: number;
  idempotencyKey: string;
  reportedAt?: string;
}

export type CheckinOutcome =
  | {
      ok: true;
      reportId: string;
      duplicate: boolean;
      receivedAt: Date;
      siteCode: string;
      targetVersion: string | null;
      installHold: InstallHold | null;
    }
  | { ok: false; reason: 'invalid-token' }
  | { ok: false; reason: 'rate-limited'; retryAfter: number };

/** Why a site with a target is not asked to install it right now (docs/rollouts.md). */
export type InstallHold = 'rollout_paused' | 'awaiting_retry' | 'blackout' | 'maintenance_window';

interface Pending {
  tokenHash: string;
  input: CheckinFields;
  receivedAt: Date;
  resolve(o: CheckinOutcome): void;
  reject(e: unknown): void;
}

// Runs after the I/O callbacks of this turn of the event loop, so the requests read together are written together.
const nextTurn: (f: () => void) => void = globalThis.setImmediate ?? ((f) => setTimeout(f, 0));

/**
 * Check-ins are many and tiny, so they are written in groups: one statement per group resolves the
 * tokens, appends the reports, moves the sites forward and answers every member, which costs the
 * database about as much as one check-in did. Groups form by themselves: while `maxInFlight`
 * groups are being written, new check-ins queue, and the queue becomes the next group. An idle
 * server writes a lone check-in at once. Each request still gets its own answer, and each group
 * is atomic. With a database per request (Workers) every group has one member.
 */
export class CheckinBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private flushing = 0;

  constructor(
    private readonly db: Db,
    private readonly limiter: RateLimiter,
    private readonly opts: { maxBatch: number; maxInFlight: number } = { maxBatch: 500, maxInFlight: 2 },
  ) {}

  async submit(token: string, input: CheckinFields, receivedAt = new Date()): Promise<CheckinOutcome> {
    const tokenHash = await sha256Hex(token);
    // Per device token, which is the site's identity here; counted before the database so that a
    // looping site costs no writes.
    const wait = this.limiter.hit(tokenHash);
    if (wait) return { ok: false, reason: 'rate-limited', retryAfter: wait };
    return new Promise((resolve, reject) => {
      this.queue.push({ tokenHash, input, receivedAt, resolve, reject });
      if (!this.scheduled && this.flushing < this.opts.maxInFlight) {
        this.scheduled = true;
        nextTurn(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush() {
    while (this.queue.length && this.flushing < this.opts.maxInFlight) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      this.flushing++;
      writeCheckins(this.db, batch)
        .then((outcomes) => batch.forEach((p, i) => p.resolve(outcomes[i]!)))
        .catch((e) => batch.forEach((p) => p.reject(e)))
        .finally(() => {
          this.flushing--;
          this.flush();
        });
    }
  }
}

/**
 * The check-in batchers of one app: one per database (one on Node; one per request's pool on
 * Workers), all counting against one rate limiter of `checkinsPerMinute` per site.
 */
export function checkinBatchers(checkinsPerMinute = 30): (db: Db) => CheckinBatcher {
  const limiter = new RateLimiter(checkinsPerMinute, 60_000);
  const batchers = new WeakMap<Db, CheckinBatcher>();
  return (db) => {
    let batcher = batchers.get(db);
    if (!batcher) batchers.set(db, (batcher = new CheckinBatcher(db, limiter)));
    return batcher;
  };
}

/** Rows of `db.execute` on every driver (node-postgres, PGlite and Neon all answer `{ rows }`). */
function rowsOf<T>(result: unknown): T[] {
  return (result as { rows: T[] }).rows;
}

async function writeCheckins(db: Db, batch: Pending[]): Promise<CheckinOutcome[]> {
  // The whole group travels as one JSON parameter: one JSON.stringify here and one parse in the
  // database, instead of escaping every cell of a dozen arrays.
  const group = JSON.stringify(
    batch.map((p, ord) => ({
      ord,
      token_hash: p.tokenHash,
      version: p.input.version,
      status: p.input.status,
      health_checks: p.input.healthChecks,
      docker_version: p.input.dockerVersion,
      image_store: p.input.imageStore,
      compose_version: p.input.composeVersion,
      content_version: p.input.contentPackageVersion,
      scripts_version: p.input.edgeScriptsVersion,
      compose_sha256: p.input.composeSha256,
      disk_free_bytes: p.input.diskFreeBytes,
      details: p.input.reportedAt ? { siteClock: p.input.reportedAt } : {},
      idempotency_key: p.input.idempotencyKey,
      // "Last seen" is the server's clock: site clocks drift, and a wrong one must not hide a site.
      at: p.receivedAt.toISOString(),
    })),
  );
  // One statement is one transaction: the token check, the append and the site update happen
  // together or not at all, and a token revoked a moment ago is refused by this very statement.
  const result = await db.execute(sql`
    with
    -- A heartbeat is re-sent every few minutes and the next one supersedes it, so a crash may lose
    -- the last instant of them without harm: do not wait for the WAL flush (docs/decisions.md).
    async as (select set_config('synchronous_commit', 'off', true)),
    v as (
      select u.*, s.id as site_id, s.org_id, s.code, s.target_release_id, s.maintenance_window, s.timezone, r.id as release_id,
        s.reported_version as prev_version
      from json_to_recordset(${group}::json) as u(ord int, token_hash text, version text, status text, health_checks jsonb,
          docker_version text, image_store text, compose_version text, content_version text, scripts_version text,
          compose_sha256 text, disk_free_bytes bigint, details jsonb,
          idempotency_key text, at timestamptz)
      join sites s on s.device_token_hash = u.token_hash and s.archived_at is null
      left join releases r on r.org_id = s.org_id and r.version = u.version
    ),
    ins as (
      insert into site_reports (org_id, site_id, source, version, release_id, status, health_checks, docker_version,
        image_store, compose_version, content_package_version, edge_scripts_version, compose_sha256, disk_free_bytes,
        details, idempotency_key, reported_at, received_at)
      select org_id, site_id, 'heartbeat', version, release_id, status, health_checks, docker_version, image_store,
        compose_version, content_version, scripts_version, compose_sha256, disk_free_bytes, details, idempotency_key, at, at
      from v where (select count(*) from async) = 1
      on conflict (site_id, idempotency_key) do nothing
      returning id, site_id, idempotency_key, received_at, version, release_id, status, reported_at,
        content_package_version, edge_scripts_version, compose_sha256
    ),
    latest as (select distinct on (site_id) * from ins order by site_id, reported_at desc),
    upd as (
      update sites s set reported_version = l.version, reported_release_id = l.release_id, reported_status = l.status,
        reported_at = l.reported_at, reported_content_version = l.content_package_version,
        reported_scripts_version = l.edge_scripts_version, reported_compose_sha256 = l.compose_sha256, updated_at = now()
      from latest l where s.id = l.site_id and (s.reported_at is null or s.reported_at <= l.reported_at)
      returning s.id
    ),
    -- The site's target in its live rollout moves with the report, in this same statement (the rules of
    -- services/rollouts/machine.ts targetNext/signalOfReport, in SQL): installing; installed (healthy or
    -- degraded) or failed on the rollout's version. Only waves that have opened; overdue sites may report late.
    tgt as (
      update rollout_targets t set
        state = case when l.status = 'installing' then 'installing' when l.status = 'failed' then 'failed' else 'installed' end,
        healthy = (l.status = 'healthy'), reason = 'heartbeat: ' || l.status, state_changed_at = l.reported_at
      from latest l, rollouts ro, releases tr, rollout_waves w
      where t.site_id = l.site_id and t.active and ro.id = t.rollout_id and tr.id = ro.release_id and w.id = t.wave_id
        and w.state not in ('pending', 'preparing', 'cancelled')
        and ((l.status = 'installing' and t.state in ('pending', 'bundled', 'downloaded', 'overdue'))
          or (l.status in ('healthy', 'degraded') and l.version = tr.version and (t.state not in ('installed', 'skipped') or t.healthy <> (l.status = 'healthy')))
          or (l.status = 'failed' and l.version = tr.version and t.state not in ('failed', 'skipped')))
      returning t.id
    )
    select v.ord, v.code,
      coalesce(ins.id, old.id) as report_id,
      coalesce(ins.received_at, old.received_at) as received_at,
      -- Within one group the first of two check-ins with the same key is the new one.
      (ins.id is not null and row_number() over (partition by v.site_id, v.idempotency_key order by v.ord) = 1) as fresh,
      (select r.version from releases r where r.id = v.target_release_id) as target_version,
      v.version as reported_version, v.maintenance_window, v.timezone,
      -- Holds are looked up only for sites that have a target.
      case when v.target_release_id is null then null else (select case when t.state in ('failed', 'rolled_back') then 'awaiting_retry'
          when ro.state = 'paused' and t.state in ('pending', 'bundled', 'downloaded', 'overdue') then 'rollout_paused' end
        from rollout_targets t join rollouts ro on ro.id = t.rollout_id where t.site_id = v.site_id and t.active limit 1) end as rollout_hold,
      case when v.target_release_id is null then false else exists (select 1 from blackout_dates b where b.org_id = v.org_id
        and b.starts_on <= (v.at at time zone 'UTC')::date and b.ends_on >= (v.at at time zone 'UTC')::date) end as blackout,
      (select count(*) from upd) + (select count(*) from tgt) as moved,
      v.site_id, v.version is distinct from v.prev_version as changed, v.site_id in (select id from upd) as site_moved,
      (select count(*) from ins i2 where i2.site_id = v.site_id) as fresh_for_site
    from v
    left join ins on ins.site_id = v.site_id and ins.idempotency_key = v.idempotency_key
    left join site_reports old on ins.id is null and old.site_id = v.site_id and old.idempotency_key = v.idempotency_key`);
  const outcomes: CheckinOutcome[] = batch.map(() => ({ ok: false, reason: 'invalid-token' }));
  const answers = rowsOf<CheckinRow>(result);
  // The adoption rollup changes only when a report starts a new run of versions: a new version,
  // a report older than the site's latest (it lands inside the history), or several in one group.
  // Rare for heartbeats, so it is a second statement for those sites only (services/fleet/spans.ts).
  const rebuild = answers
    .filter((a) => a.fresh && (a.changed || !a.site_moved || Number(a.fresh_for_site) > 1))
    .map((a) => a.site_id);
  if (rebuild.length) await rebuildVersionSpans(db, { siteIds: rebuild });
  for (const a of answers) {
    const installHold = holdOf(a, batch[a.ord]!.receivedAt);
    outcomes[a.ord] = {
      ok: true,
      reportId: a.report_id,
      duplicate: !a.fresh,
      receivedAt: new Date(a.received_at),
      siteCode: a.code,
      targetVersion: installHold ? null : a.target_version,
      installHold,
    };
  }
  return outcomes;
}

interface CheckinRow {
  ord: number;
  code: string;
  report_id: string;
  received_at: string | Date;
  fresh: boolean;
  target_version: string | null;
  reported_version: string;
  maintenance_window: string | null;
  timezone: string;
  rollout_hold: 'rollout_paused' | 'awaiting_retry' | null;
  blackout: boolean;
  site_id: string;
  changed: boolean;
  site_moved: boolean;
  fresh_for_site: number | string;
}

/**
 * A site not yet on its target is asked to install it only when its rollout is not paused, its last
 * attempt did not fail (a failed site waits until someone retries it), the day
 * is not a blackout date of the organisation, and the time is inside the site's maintenance window.
 * Otherwise the answer carries no target version, and says why.
 */
function holdOf(a: CheckinRow, at: Date): InstallHold | null {
  if (!a.target_version || a.target_version === a.reported_version) return null;
  if (a.rollout_hold) return a.rollout_hold;
  if (a.blackout) return 'blackout';
  if (!inMaintenanceWindow(a.maintenance_window, a.timezone, at)) return 'maintenance_window';
  return null;
}
