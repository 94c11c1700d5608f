import { and, desc, eq, isNull } from 'drizzle-orm';
import { apiTokens, type Role } from '../../db/schema/index.ts';
import { randomToken, sha256Hex } from '../../lib/crypto.ts';
import { decodeCursor } from '../../lib/cursor.ts';
import { ForbiddenError, NotFoundError } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { afterCursor, keysetPage, timeCursor } from '../keyset.ts';
import { recordAudit } from '../audit/record.ts';
import { canGrant } from '../auth/roles.ts';
import { API_TOKEN_PREFIX } from '../auth/resolve.ts';

type TokenRow = typeof apiTokens.$inferSelect;

function toView(t: TokenRow) {
  return {
    id: t.id,
    name: t.name,
    prefix: t.prefix,
    role: t.role,
    createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt?.toISOString() ?? null,
    lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
    revokedAt: t.revokedAt?.toISOString() ?? null,
  };
}

export interface CreateTokenInput {
  name: string;
  role: Role;
  expiresInDays?: number;
}

/** Creates an API token; the secret is in the result once and stored only as a hash. */
export async function createToken({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: CreateTokenInput;
  now?: Date;
}) {
  if (!canGrant(ctx.actor.role, input.role))
    throw new ForbiddenError(`Your role cannot create a token with the ${input.role} role.`);
  const secret = randomToken(API_TOKEN_PREFIX);
  return inTransaction(ctx, async (ctx) => {
    const [row] = await ctx.db
      .insert(apiTokens)
      .values({
        orgId: ctx.orgId,
        name: input.name,
        role: input.role,
        prefix: secret.slice(0, API_TOKEN_PREFIX.length + 6),
        tokenHash: await sha256Hex(secret),
        createdBy: ctx.actor.userId,
        expiresAt: input.expiresInDays ? new Date(now.getTime() + input.expiresInDays * 86_400_000) : null,
      })
      .returning();
    await recordAudit(ctx, {
      action: 'token.create',
      objectType: 'api_token',
      objectId: row!.id,
      details: { name: input.name, role: input.role },
    });
    return { ...toView(row!), token: secret };
  });
}

export async function listTokens({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { limit: number; cursor?: string; includeRevoked?: boolean };
}) {
  const c = input.cursor ? decodeCursor(input.cursor) : null;
  const { rows, nextCursor } = await keysetPage(
    input.limit,
    (take) =>
      ctx.db
        .select()
        .from(apiTokens)
        .where(
          and(
            eq(apiTokens.orgId, ctx.orgId),
            input.includeRevoked ? undefined : isNull(apiTokens.revokedAt),
            afterCursor(c, apiTokens.createdAt, apiTokens.id, 'desc'),
          ),
        )
        .orderBy(desc(apiTokens.createdAt), desc(apiTokens.id))
        .limit(take),
    (last) => timeCursor(last.createdAt, last.id),
  );
  return { items: rows.map(toView), nextCursor };
}

export async function revokeToken({ ctx, input }: { ctx: ServiceCtx; input: { tokenId: string } }) {
  return inTransaction(ctx, async (ctx) => {
    const [row] = await ctx.db
      .select()
      .from(apiTokens)
      .where(and(eq(apiTokens.orgId, ctx.orgId), eq(apiTokens.id, input.tokenId)))
      .limit(1);
    if (!row) throw new NotFoundError('API token', input.tokenId);
    if (row.revokedAt) return toView(row); // revoking twice is harmless
    const [updated] = await ctx.db
      .update(apiTokens)
      .set({ revokedAt: new Date() })
      .where(eq(apiTokens.id, row.id))
      .returning();
    await recordAudit(ctx, {
      action: 'token.revoke',
      objectType: 'api_token',
      objectId: row.id,
      details: { name: row.name },
    });
    return toView(updated!);
  });
}
