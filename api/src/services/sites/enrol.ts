import { and, eq, isNull, ne, sql } from 'drizzle-orm';
import { siteEnrolments, sites } from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import { randomToken, sha256Hex } from '../../lib/crypto.ts';
import { recordAudit } from '../audit/record.ts';
import { DEVICE_TOKEN_PREFIX } from './device-token.ts';

export const ENROLMENT_TOKEN_PREFIX = 'ope_';

/**
 * A new one-time enrolment token for a site's bundle; only its hash is kept. Call inside the
 * transaction (or batch) that builds the bundle, so that a token exists only for a bundle that does.
 */
export async function createEnrolmentToken(
  db: Db,
  input: { orgId: string; siteId: string; bundleId: string | null; expiresAt: Date },
): Promise<string> {
  const token = randomToken(ENROLMENT_TOKEN_PREFIX);
  await db.insert(siteEnrolments).values({
    orgId: input.orgId,
    siteId: input.siteId,
    bundleId: input.bundleId,
    tokenHash: await sha256Hex(token),
    expiresAt: input.expiresAt,
  });
  return token;
}

export type EnrolOutcome =
  | { ok: true; deviceToken: string; site: { id: string; code: string } }
  | { ok: false; reason: 'invalid' | 'used' | 'expired' };

/**
 * The installer's first contact: an enrolment token from the bundle, exchanged once for a new device
 * token (which replaces any earlier one). The exchange closes every other open token of the site, so
 * a copy of an older bundle cannot take the site's identity later. One transaction; audited with the
 * site as the object (no user acts). The token's row is locked, so two exchanges of one token cannot
 * both succeed.
 */
export async function exchangeEnrolmentToken(
  db: Db,
  input: { token: string; requestId?: string },
  now = new Date(),
): Promise<EnrolOutcome> {
  const tokenHash = await sha256Hex(input.token);
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select({ e: siteEnrolments, archivedAt: sites.archivedAt, code: sites.code })
      .from(siteEnrolments)
      .innerJoin(sites, eq(sites.id, siteEnrolments.siteId))
      .where(eq(siteEnrolments.tokenHash, tokenHash))
      .for('update', { of: siteEnrolments })
      .limit(1);
    if (!row || row.archivedAt) return { ok: false, reason: 'invalid' } as const;
    if (row.e.closedAt) return { ok: false, reason: 'used' } as const;
    if (row.e.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' } as const;
    const deviceToken = randomToken(DEVICE_TOKEN_PREFIX);
    await tx
      .update(siteEnrolments)
      .set({ closedAt: now, closedReason: 'exchanged' })
      .where(eq(siteEnrolments.id, row.e.id));
    await tx
      .update(siteEnrolments)
      .set({ closedAt: now, closedReason: 'superseded' })
      .where(
        and(
          eq(siteEnrolments.siteId, row.e.siteId),
          isNull(siteEnrolments.closedAt),
          ne(siteEnrolments.id, row.e.id),
        ),
      );
    await tx
      .update(sites)
      .set({
        deviceTokenHash: await sha256Hex(deviceToken),
        deviceTokenPrefix: deviceToken.slice(0, DEVICE_TOKEN_PREFIX.length + 6),
        deviceTokenIssuedAt: now,
        updatedAt: sql`now()`,
      })
      .where(eq(sites.id, row.e.siteId));
    const ctx = {
      db: tx as unknown as Db,
      orgId: row.e.orgId,
      actor: { userId: null, tokenId: null, role: 'viewer' as const },
      ...(input.requestId ? { requestId: input.requestId } : {}),
    };
    await recordAudit(ctx, {
      action: 'site.device_token.enrol',
      objectType: 'site',
      objectId: row.e.siteId,
      details: { bundleId: row.e.bundleId },
    });
    return { ok: true, deviceToken, site: { id: row.e.siteId, code: row.code } } as const;
  });
}
