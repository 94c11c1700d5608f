import { and, desc, eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { releases, siteReports, sites, users } from '../../db/schema/index.ts';
import { decodeCursor } from '../../lib/cursor.ts';
import type { ServiceCtx } from '../context.ts';
import { afterCursor, keysetPage, timeCursor } from '../keyset.ts';
import { loadSite } from './scope.ts';
import { rebuildVersionSpans } from '../fleet/spans.ts';
import { applyReportToTarget } from '../rollouts/report-hook.ts';

export type ReportSource = 'heartbeat' | 'receipt_code' | 'receipt_file' | 'manual';

export interface NewReport {
  orgId: string;
  siteId: string;
  source: ReportSource;
  version: string | null;
  status: string;
  healthChecks?: { name: string; ok: boolean; message?: string }[];
  dockerVersion?: string | null;
  imageStore?: string | null;
  composeVersion?: string | null;
  diskFreeBytes?: number | null;
  details?: Record<string, unknown>;
  idempotencyKey: string;
  /** When the reported state became true (site clock or receipt time). */
  reportedAt: Date;
  actorUserId?: string | null;
}

type ReportRow = typeof siteReports.$inferSelect;

export function toReportView(r: ReportRow & { actorEmail?: string | null }) {
  return {
    id: r.id,
    source: r.source,
    version: r.version,
    releaseId: r.releaseId,
    status: r.status,
    healthChecks: r.healthChecks,
    dockerVersion: r.dockerVersion,
    imageStore: r.imageStore,
    composeVersion: r.composeVersion,
    contentPackageVersion: r.contentPackageVersion,
    edgeScriptsVersion: r.edgeScriptsVersion,
    composeSha256: r.composeSha256,
    diskFreeBytes: r.diskFreeBytes,
    details: r.details,
    reportedAt: r.reportedAt.toISOString(),
    receivedAt: r.receivedAt.toISOString(),
    actorEmail: r.actorEmail ?? null,
  };
}

/**
 * Appends a report and moves the site's denormalised "last reported" fields forward, in one
 * transaction. A repeated idempotency key is a no-op that returns the first report.
 */
export async function appendReport(db: Db, r: NewReport): Promise<{ report: ReportRow; duplicate: boolean }> {
  return db.transaction(async (tx) => {
    const [release] = r.version
      ? await tx
          .select({ id: releases.id })
          .from(releases)
          .where(and(eq(releases.orgId, r.orgId), eq(releases.version, r.version)))
          .limit(1)
      : [];
    const [inserted] = await tx
      .insert(siteReports)
      .values({
        orgId: r.orgId,
        siteId: r.siteId,
        source: r.source,
        version: r.version,
        releaseId: release?.id ?? null,
        status: r.status,
        healthChecks: r.healthChecks ?? [],
        dockerVersion: r.dockerVersion ?? null,
        imageStore: r.imageStore ?? null,
        composeVersion: r.composeVersion ?? null,
        diskFreeBytes: r.diskFreeBytes ?? null,
        details: r.details ?? {},
        idempotencyKey: r.idempotencyKey,
        reportedAt: r.reportedAt,
        actorUserId: r.actorUserId ?? null,
      })
      .onConflictDoNothing({ target: [siteReports.siteId, siteReports.idempotencyKey] })
      .returning();
    if (!inserted) {
      const [first] = await tx
        .select()
        .from(siteReports)
        .where(and(eq(siteReports.siteId, r.siteId), eq(siteReports.idempotencyKey, r.idempotencyKey)))
        .limit(1);
      return { report: first!, duplicate: true };
    }
    // Reports can arrive out of order (a receipt code typed in days later): only a newer one moves the site.
    await tx
      .update(sites)
      .set({
        reportedVersion: r.version,
        reportedReleaseId: release?.id ?? null,
        reportedStatus: r.status,
        reportedAt: r.reportedAt,
        updatedAt: sql`now()`,
        // A receipt does not say which content, compose file or scripts came with the install: unknown
        // until the next heartbeat, rather than the previous release's values passed off as current.
        reportedContentVersion: null,
        reportedScriptsVersion: null,
        reportedComposeSha256: null,
      })
      .where(
        and(
          eq(sites.id, r.siteId),
          sql`(${sites.reportedAt} is null or ${sites.reportedAt} <= ${r.reportedAt})`,
        ),
      );
    await rebuildVersionSpans(tx as unknown as Db, { siteIds: [r.siteId] });
    // The outcome of an install moves the site's target in its live rollout, in this transaction.
    await applyReportToTarget(tx as unknown as Db, {
      siteId: r.siteId,
      source: r.source,
      version: r.version,
      status: r.status,
      at: r.reportedAt,
    });
    return { report: inserted, duplicate: false };
  });
}

/** A report recorded by hand (e.g. an install confirmed by phone call), by a person with the site in view. */
export async function recordManualReport({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: {
    siteId: string;
    version: string;
    status: 'installed' | 'failed' | 'rolled_back' | 'healthy' | 'degraded';
    note?: string;
    /** ISO 8601; default now. */
    at?: string;
  };
}) {
  const { site } = await loadSite(ctx, input.siteId);
  const { report } = await appendReport(ctx.db, {
    orgId: ctx.orgId,
    siteId: site.id,
    source: 'manual',
    version: input.version,
    status: input.status,
    details: input.note ? { note: input.note } : {},
    idempotencyKey: `manual:${crypto.randomUUID()}`,
    reportedAt: input.at ? new Date(input.at) : new Date(),
    actorUserId: ctx.actor.userId,
  });
  return toReportView(report);
}

export async function listReports({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { siteId: string; limit: number; cursor?: string };
}) {
  await loadSite(ctx, input.siteId, { includeArchived: true });
  const c = input.cursor ? decodeCursor(input.cursor) : null;
  const { rows, nextCursor } = await keysetPage(
    input.limit,
    (take) =>
      ctx.db
        .select({ r: siteReports, actorEmail: users.email })
        .from(siteReports)
        .leftJoin(users, eq(users.id, siteReports.actorUserId))
        .where(
          and(
            eq(siteReports.orgId, ctx.orgId),
            eq(siteReports.siteId, input.siteId),
            afterCursor(c, siteReports.receivedAt, siteReports.id, 'desc'),
          ),
        )
        .orderBy(desc(siteReports.receivedAt), desc(siteReports.id))
        .limit(take),
    (last) => timeCursor(last.r.receivedAt, last.r.id),
  );
  return { items: rows.map((x) => toReportView({ ...x.r, actorEmail: x.actorEmail })), nextCursor };
}
