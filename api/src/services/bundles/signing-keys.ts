import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import { generateSigningKey } from '@outpost/bundler';
import { signingKeys } from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import { isUniqueViolation } from '../../lib/errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { recordAudit } from '../audit/record.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';

type Row = typeof signingKeys.$inferSelect;

/** What the API shows: the public half only. */
export const toSigningKeyView = (r: Row) => ({
  id: r.id, algorithm: r.algorithm, fingerprint: r.fingerprint, publicKeyPem: r.publicKeyPem,
  active: r.retiredAt === null, createdAt: r.createdAt.toISOString(), retiredAt: r.retiredAt?.toISOString() ?? null,
});

export interface OpenSigningKey {
  id: string;
  fingerprint: string;
  publicKeyPem: string;
  privateKeyPem: string;
}

const aad = (orgId: string, fingerprint: string) => `signing-key:${orgId}:${fingerprint}`;

export async function listSigningKeys({ ctx }: { ctx: ServiceCtx }) {
  const rows = await ctx.db.select().from(signingKeys).where(eq(signingKeys.orgId, ctx.orgId))
    .orderBy(sql`${signingKeys.retiredAt} is not null`, desc(signingKeys.createdAt));
  return rows.map(toSigningKeyView);
}

async function insertKey(db: Db, box: SecretBox, orgId: string, createdBy: string | null): Promise<Row> {
  const key = generateSigningKey();
  const sealed = await box.seal(new TextEncoder().encode(key.privateKeyPem), aad(orgId, key.fingerprint));
  const [row] = await db.insert(signingKeys)
    .values({ orgId, fingerprint: key.fingerprint, publicKeyPem: key.publicKeyPem, privateKeySealed: sealed, createdBy }).returning();
  return row!;
}

/**
 * The organisation's active signing key, opened for signing; made on first use. Two workers making
 * the first key at once both try, the unique index keeps one, and the loser reads the winner's.
 */
export async function activeSigningKey(db: Db, box: SecretBox, orgId: string): Promise<OpenSigningKey> {
  const load = async () => (await db.select().from(signingKeys)
    .where(and(eq(signingKeys.orgId, orgId), isNull(signingKeys.retiredAt))).limit(1))[0];
  let row = await load();
  if (!row) {
    try {
      row = await insertKey(db, box, orgId, null);
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      row = await load();
      if (!row) throw e;
    }
  }
  const plain = await box.open(row.privateKeySealed, aad(orgId, row.fingerprint));
  return { id: row.id, fingerprint: row.fingerprint, publicKeyPem: row.publicKeyPem, privateKeyPem: new TextDecoder().decode(plain) };
}

/** A new active key; the old one is retired but kept, so bundles it signed still verify. */
export async function rotateSigningKey({ ctx, box }: { ctx: ServiceCtx; box: SecretBox }) {
  return inTransaction(ctx, async (ctx) => {
    const retired = await ctx.db.update(signingKeys).set({ retiredAt: sql`now()` })
      .where(and(eq(signingKeys.orgId, ctx.orgId), isNull(signingKeys.retiredAt))).returning({ fingerprint: signingKeys.fingerprint });
    const row = await insertKey(ctx.db, box, ctx.orgId, ctx.actor.userId);
    await recordAudit(ctx, {
      action: 'signing_key.rotate', objectType: 'signing_key', objectId: row.id,
      details: { fingerprint: row.fingerprint, retired: retired.map((r) => r.fingerprint) },
    });
    return toSigningKeyView(row);
  });
}
