import { and, eq, isNull, or, sql } from 'drizzle-orm';
import { bundles, imageArchives } from '../../db/schema/index.ts';
import { AppError } from '../../lib/errors.ts';
import { recordAudit } from '../audit/record.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { enqueueJobs } from './jobs.ts';
import { loadBundle, toBundleView } from './list.ts';

/** A failed bundle is built again (its images archive too, if that was what failed). */
export async function retryBundle({ ctx, input }: { ctx: ServiceCtx; input: { id: string } }) {
  return inTransaction(ctx, async (ctx) => {
    const row = await loadBundle(ctx, input.id);
    const b = row.bundle;
    if (b.state !== 'failed')
      throw new AppError(
        'conflict',
        'BUNDLE_NOT_FAILED',
        `This bundle is ${b.state}; only a failed bundle can be tried again.`,
      );
    if (row.releaseState === 'revoked')
      throw new AppError(
        'conflict',
        'RELEASE_REVOKED',
        `Release ${row.version} was revoked; no bundles can be built for it.`,
      );
    const failedArchives = await ctx.db
      .update(imageArchives)
      .set({ state: 'queued', error: null, errorCode: null, updatedAt: sql`now()` })
      .where(
        and(
          eq(imageArchives.releaseId, b.releaseId),
          eq(imageArchives.state, 'failed'),
          or(eq(imageArchives.id, b.imageArchiveId ?? b.id), isNull(imageArchives.fromReleaseId)),
        ),
      )
      .returning({ id: imageArchives.id });
    await enqueueJobs(
      ctx.db,
      failedArchives.map((a) => ({ orgId: ctx.orgId, kind: 'image-archive' as const, targetId: a.id })),
    );
    await ctx.db
      .update(bundles)
      .set({ state: 'queued', error: null, errorCode: null, updatedAt: sql`now()` })
      .where(eq(bundles.id, b.id));
    await enqueueJobs(ctx.db, [{ orgId: ctx.orgId, kind: 'site-bundle', targetId: b.id }]);
    await recordAudit(ctx, {
      action: 'bundle.retry',
      objectType: 'bundle',
      objectId: b.id,
      details: { archivesRequeued: failedArchives.length },
    });
    return toBundleView(await loadBundle(ctx, b.id));
  });
}
