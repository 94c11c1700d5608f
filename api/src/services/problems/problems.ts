import { and, desc, eq, isNull } from 'drizzle-orm';
import { siteProblems, users } from '../../db/schema/index.ts';
import { NotFoundError } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { loadSite } from '../sites/scope.ts';

type ProblemRow = typeof siteProblems.$inferSelect;

function toProblemView(p: ProblemRow, reporter: { email: string | null; name: string | null } | null) {
  return {
    id: p.id,
    siteId: p.siteId,
    description: p.description,
    errorText: p.errorText,
    version: p.version,
    reportedBy: reporter?.email ? { email: reporter.email, name: reporter.name ?? '' } : null,
    createdAt: p.createdAt.toISOString(),
    resolvedAt: p.resolvedAt?.toISOString() ?? null,
  };
}

export type ProblemView = ReturnType<typeof toProblemView>;

/** A coordinator (or the ministry) says something went wrong at a site; the ministry sees it on the site page. */
export async function reportProblem({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { siteId: string; description: string; errorText?: string };
}) {
  return inTransaction(ctx, async (ctx) => {
    const { site } = await loadSite(ctx, input.siteId);
    const [row] = await ctx.db
      .insert(siteProblems)
      .values({
        orgId: ctx.orgId,
        siteId: site.id,
        reportedBy: ctx.actor.userId,
        description: input.description,
        errorText: input.errorText ?? '',
        version: site.reportedVersion,
      })
      .returning();
    await recordAudit(ctx, {
      action: 'site.problem.report',
      objectType: 'site',
      objectId: site.id,
      details: { problemId: row!.id },
    });
    const [me] = ctx.actor.userId
      ? await ctx.db
          .select({ email: users.email, name: users.name })
          .from(users)
          .where(eq(users.id, ctx.actor.userId))
      : [];
    return toProblemView(row!, me ?? null);
  });
}

/** A site's problems, open ones first, newest first (the last 100). */
export async function listProblems({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { siteId: string; open?: boolean };
}) {
  const { site } = await loadSite(ctx, input.siteId);
  const rows = await ctx.db
    .select({ p: siteProblems, email: users.email, name: users.name })
    .from(siteProblems)
    .leftJoin(users, eq(users.id, siteProblems.reportedBy))
    .where(
      and(
        eq(siteProblems.orgId, ctx.orgId),
        eq(siteProblems.siteId, site.id),
        input.open ? isNull(siteProblems.resolvedAt) : undefined,
      ),
    )
    .orderBy(desc(siteProblems.createdAt))
    .limit(100);
  const items = rows.map((r) => toProblemView(r.p, { email: r.email, name: r.name }));
  items.sort((a, b) => Number(a.resolvedAt !== null) - Number(b.resolvedAt !== null));
  return { items };
}

/** The ministry marks a problem dealt with. */
export async function resolveProblem({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: { siteId: string; problemId: string };
  now?: Date;
}) {
  return inTransaction(ctx, async (ctx) => {
    const { site } = await loadSite(ctx, input.siteId);
    const [row] = await ctx.db
      .update(siteProblems)
      .set({ resolvedAt: now, resolvedBy: ctx.actor.userId })
      .where(
        and(
          eq(siteProblems.orgId, ctx.orgId),
          eq(siteProblems.siteId, site.id),
          eq(siteProblems.id, input.problemId),
        ),
      )
      .returning();
    if (!row) throw new NotFoundError('problem', input.problemId);
    await recordAudit(ctx, {
      action: 'site.problem.resolve',
      objectType: 'site',
      objectId: site.id,
      details: { problemId: row.id },
    });
    return toProblemView(row, null);
  });
}
