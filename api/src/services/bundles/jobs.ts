import { and, eq, inArray, sql } from 'drizzle-orm';
import { bundleJobs, type JobKind } from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';

export type JobRow = typeof bundleJobs.$inferSelect;

/**
 * The build queue, in PostgreSQL. A job is claimed with `FOR UPDATE SKIP LOCKED` (workers on
 * several machines never take the same one) and held under a lease the worker renews; a worker
 * that dies stops renewing, the lease lapses and the next claim takes the job again. At most one
 * open (queued or running) job exists per target.
 */
export async function enqueueJobs(
  db: Db,
  jobs: { orgId: string; kind: JobKind; targetId: string; maxAttempts?: number }[],
): Promise<void> {
  if (jobs.length === 0) return;
  await db
    .insert(bundleJobs)
    .values(
      jobs.map((j) => ({
        orgId: j.orgId,
        kind: j.kind,
        targetId: j.targetId,
        ...(j.maxAttempts ? { maxAttempts: j.maxAttempts } : {}),
      })),
    )
    .onConflictDoNothing({
      target: [bundleJobs.kind, bundleJobs.targetId],
      where: sql`state IN ('queued', 'running')`,
    });
}

export interface ClaimOptions {
  runnerId: string;
  kind: JobKind;
  limit: number;
  leaseMs: number;
}

/** Takes up to `limit` due jobs of one kind: queued ones whose time has come, and running ones whose lease lapsed. */
export async function claimJobs(db: Db, o: ClaimOptions): Promise<JobRow[]> {
  const rows = await db.execute(sql`
    update bundle_jobs j set state = 'running', attempts = j.attempts + 1, locked_by = ${o.runnerId},
      locked_until = now() + make_interval(secs => ${o.leaseMs / 1000}), updated_at = now()
    where j.id in (
      select id from bundle_jobs
      where kind = ${o.kind}
        and ((state = 'queued' and run_after <= now()) or (state = 'running' and locked_until < now()))
        -- A site bundle is due once its images archive (and the release's full one) is built or has failed.
        and (kind <> 'site-bundle' or not exists (
          select 1 from bundles b join image_archives a on a.release_id = b.release_id
          where b.id = bundle_jobs.target_id and a.state in ('queued', 'building')
            and (a.id = b.image_archive_id or a.from_release_id is null)))
      order by run_after, created_at
      limit ${o.limit}
      for update skip locked)
    returning j.id, j.org_id as "orgId", j.kind, j.target_id as "targetId", j.attempts, j.max_attempts as "maxAttempts", j.last_error as "lastError"`);
  // Rows of `db.execute` on every driver: node-postgres, PGlite and Neon all answer `{ rows }`.
  return (rows as unknown as { rows: JobRow[] }).rows;
}

/** Extends the lease of jobs this worker still holds; returns how many it still holds. */
export async function renewLease(db: Db, runnerId: string, ids: string[], leaseMs: number): Promise<number> {
  if (ids.length === 0) return 0;
  const rows = await db
    .update(bundleJobs)
    .set({ lockedUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
    .where(
      and(inArray(bundleJobs.id, ids), eq(bundleJobs.lockedBy, runnerId), eq(bundleJobs.state, 'running')),
    )
    .returning({ id: bundleJobs.id });
  return rows.length;
}

/** The jobs' work is done and recorded. Only the worker holding them may close them. */
export async function completeJobs(db: Db, ids: string[], runnerId: string): Promise<void> {
  if (ids.length === 0) return;
  await db
    .update(bundleJobs)
    .set({ state: 'done', lockedUntil: null, updatedAt: sql`now()` })
    .where(
      and(inArray(bundleJobs.id, ids), eq(bundleJobs.lockedBy, runnerId), eq(bundleJobs.state, 'running')),
    );
}

/**
 * A failed attempt. Retried after an exponential backoff while attempts remain and the failure is
 * one that can pass (a registry or store that is down); otherwise the job ends failed.
 * Returns whether the job is finished for good.
 */
export async function failJob(
  db: Db,
  job: JobRow,
  runnerId: string,
  error: { message: string; retriable: boolean },
  backoffMs: number,
): Promise<boolean> {
  const final = !error.retriable || job.attempts >= job.maxAttempts;
  const delay = Math.min(backoffMs * 2 ** Math.max(0, job.attempts - 1), 10 * 60_000);
  await db
    .update(bundleJobs)
    .set({
      state: final ? 'failed' : 'queued',
      lastError: error.message.slice(0, 2000),
      lockedUntil: null,
      lockedBy: null,
      runAfter: sql`now() + make_interval(secs => ${final ? 0 : delay / 1000})`,
      updatedAt: sql`now()`,
    })
    .where(sql`${bundleJobs.id} = ${job.id} and ${bundleJobs.lockedBy} = ${runnerId}`);
  return final;
}

/** Puts a job back without using up an attempt: what it waits for (an images archive) is not ready yet. */
export async function deferJob(
  db: Db,
  job: { id: string },
  runnerId: string,
  delayMs: number,
): Promise<void> {
  await db
    .update(bundleJobs)
    .set({
      state: 'queued',
      attempts: sql`greatest(${bundleJobs.attempts} - 1, 0)`,
      lockedUntil: null,
      lockedBy: null,
      runAfter: sql`now() + make_interval(secs => ${delayMs / 1000})`,
      updatedAt: sql`now()`,
    })
    .where(sql`${bundleJobs.id} = ${job.id} and ${bundleJobs.lockedBy} = ${runnerId}`);
}
