import { eq, sql } from 'drizzle-orm';
import { sites } from '../../db/schema/index.ts';
import { randomToken, sha256Hex } from '../../lib/crypto.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { loadSite } from './scope.ts';

export const DEVICE_TOKEN_PREFIX = 'opd_';

/**
 * Issues a new device token for a site (replacing any earlier one, which stops working at once).
 * The secret is returned once; only its hash is kept. The first issue also creates the site's
 * receipt key, sealed at rest, which ships to the site in its bundle.
 */
export async function issueDeviceToken({
  ctx,
  box,
  input,
}: {
  ctx: ServiceCtx;
  box: SecretBox;
  input: { siteId: string };
}) {
  const token = randomToken(DEVICE_TOKEN_PREFIX);
  return inTransaction(ctx, async (ctx) => {
    const { site } = await loadSite(ctx, input.siteId);
    const receiptKeySealed =
      site.receiptKeySealed ??
      (await box.seal(crypto.getRandomValues(new Uint8Array(32)), `receipt:${site.id}`));
    await ctx.db
      .update(sites)
      .set({
        deviceTokenHash: await sha256Hex(token),
        deviceTokenPrefix: token.slice(0, DEVICE_TOKEN_PREFIX.length + 6),
        deviceTokenIssuedAt: new Date(),
        receiptKeySealed,
        updatedAt: sql`now()`,
      })
      .where(eq(sites.id, site.id));
    await recordAudit(ctx, {
      action: site.deviceTokenHash ? 'site.device_token.rotate' : 'site.device_token.issue',
      objectType: 'site',
      objectId: site.id,
    });
    return { token, prefix: token.slice(0, DEVICE_TOKEN_PREFIX.length + 6) };
  });
}

export async function revokeDeviceToken({ ctx, input }: { ctx: ServiceCtx; input: { siteId: string } }) {
  return inTransaction(ctx, async (ctx) => {
    const { site } = await loadSite(ctx, input.siteId);
    if (!site.deviceTokenHash) return;
    await ctx.db
      .update(sites)
      .set({
        deviceTokenHash: null,
        deviceTokenPrefix: null,
        deviceTokenIssuedAt: null,
        updatedAt: sql`now()`,
      })
      .where(eq(sites.id, site.id));
    await recordAudit(ctx, { action: 'site.device_token.revoke', objectType: 'site', objectId: site.id });
  });
}
