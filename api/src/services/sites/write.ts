import { and, eq, isNotNull, isNull, sql } from 'drizzle-orm';
import { sites } from '../../db/schema/index.ts';
import { ConflictError, fieldIssue, isUniqueViolation } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { loadSite, toSiteView } from './scope.ts';
import type { SiteFields, UpdateSiteInput } from './input.ts';

export async function createSite({ ctx, input }: { ctx: ServiceCtx; input: SiteFields }) {
  return inTransaction(ctx, async (ctx) => {
    const [existing] = await ctx.db
      .select({ id: sites.id, archivedAt: sites.archivedAt })
      .from(sites)
      .where(and(eq(sites.orgId, ctx.orgId), eq(sites.code, input.code)))
      .limit(1);
    if (existing) {
      throw new ConflictError(
        existing.archivedAt
          ? `An archived site already uses the code ${input.code}; restore it instead.`
          : `A site with the code ${input.code} already exists.`,
        fieldIssue('code', 'Already in use.', { siteId: existing.id }),
      );
    }
    try {
      const [row] = await ctx.db
        .insert(sites)
        .values({ ...input, orgId: ctx.orgId })
        .returning();
      await recordAudit(ctx, {
        action: 'site.create',
        objectType: 'site',
        objectId: row!.id,
        details: { code: input.code },
      });
      return toSiteView(row!, null);
    } catch (e) {
      if (isUniqueViolation(e))
        throw new ConflictError(
          `A site with the code ${input.code} already exists.`,
          fieldIssue('code', 'Already in use.'),
        );
      throw e;
    }
  });
}

export async function updateSite({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { siteId: string; patch: UpdateSiteInput };
}) {
  return inTransaction(ctx, async (ctx) => {
    const { site } = await loadSite(ctx, input.siteId);
    if (input.patch.code && input.patch.code !== site.code) {
      const [clash] = await ctx.db
        .select({ id: sites.id })
        .from(sites)
        .where(and(eq(sites.orgId, ctx.orgId), eq(sites.code, input.patch.code)))
        .limit(1);
      if (clash)
        throw new ConflictError(
          `A site with the code ${input.patch.code} already exists.`,
          fieldIssue('code', 'Already in use.'),
        );
    }
    const [row] = await ctx.db
      .update(sites)
      .set({ ...input.patch, updatedAt: sql`now()` })
      .where(and(eq(sites.orgId, ctx.orgId), eq(sites.id, site.id)))
      .returning();
    const changed = Object.keys(input.patch).filter(
      (k) =>
        JSON.stringify((site as Record<string, unknown>)[k]) !==
        JSON.stringify((input.patch as Record<string, unknown>)[k]),
    );
    await recordAudit(ctx, {
      action: 'site.update',
      objectType: 'site',
      objectId: site.id,
      details: { fields: changed },
    });
    const { targetVersion, reportedRevoked } = await loadSite(ctx, site.id);
    return toSiteView(row!, targetVersion, new Date(), reportedRevoked);
  });
}

/** Archiving hides a site from the fleet and stops its device token; its history is kept. */
export async function setSiteArchived({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { siteId: string; archived: boolean };
}) {
  return inTransaction(ctx, async (ctx) => {
    const { site, targetVersion, reportedRevoked } = await loadSite(ctx, input.siteId, {
      includeArchived: true,
    });
    if (Boolean(site.archivedAt) === input.archived)
      return toSiteView(site, targetVersion, new Date(), reportedRevoked);
    const [row] = await ctx.db
      .update(sites)
      .set({ archivedAt: input.archived ? new Date() : null, updatedAt: sql`now()` })
      .where(
        and(eq(sites.id, site.id), input.archived ? isNull(sites.archivedAt) : isNotNull(sites.archivedAt)),
      )
      .returning();
    await recordAudit(ctx, {
      action: input.archived ? 'site.archive' : 'site.restore',
      objectType: 'site',
      objectId: site.id,
      details: { code: site.code },
    });
    return toSiteView(row!, targetVersion, new Date(), reportedRevoked);
  });
}
