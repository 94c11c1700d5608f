import { and, desc, eq, isNotNull, isNull, sql } from 'drizzle-orm';
import { generateSigningKey, signManifest } from '@outpost/bundler';
import { signingKeys } from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import { isUniqueViolation } from '../../lib/errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { recordAudit } from '../audit/record.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';

type Row = typeof signingKeys.$inferSelect;

/** What the API shows: the public half only. */
export const toSigningKeyView = (r: Row) => ({
  id: r.id,
  algorithm: r.algorithm,
  fingerprint: r.fingerprint,
  publicKeyPem: r.publicKeyPem,
  active: r.retiredAt === null,
  createdAt: r.createdAt.toISOString(),
  retiredAt: r.retiredAt?.toISOString() ?? null,
});

export interface OpenSigningKey {
  id: string;
  /** Rotation statements of the retired keys for the active one (`keyEndorsements`), when loaded. */
  endorsements?: { path: string; content: Uint8Array }[];
  fingerprint: string;
  publicKeyPem: string;
  privateKeyPem: string;
}

const aad = (orgId: string, fingerprint: string) => `signing-key:${orgId}:${fingerprint}`;

export async function listSigningKeys({ ctx }: { ctx: ServiceCtx }) {
  const rows = await ctx.db
    .select()
    .from(signingKeys)
    .where(eq(signingKeys.orgId, ctx.orgId))
    .orderBy(sql`${signingKeys.retiredAt} is not null`, desc(signingKeys.createdAt));
  return rows.map(toSigningKeyView);
}

async function insertKey(db: Db, box: SecretBox, orgId: string, createdBy: string | null): Promise<Row> {
  const key = generateSigningKey();
  const sealed = await box.seal(new TextEncoder().encode(key.privateKeyPem), aad(orgId, key.fingerprint));
  const [row] = await db
    .insert(signingKeys)
    .values({
      orgId,
      fingerprint: key.fingerprint,
      publicKeyPem: key.publicKeyPem,
      privateKeySealed: sealed,
      createdBy,
    })
    .returning();
  return row!;
}

/**
 * The organisation's active signing key, opened for signing; made on first use. Two workers making
 * the first key at once both try, the unique index keeps one, and the loser reads the winner's.
 */
export async function activeSigningKey(db: Db, box: SecretBox, orgId: string): Promise<OpenSigningKey> {
  const load = async () =>
    (
      await db
        .select()
        .from(signingKeys)
        .where(and(eq(signingKeys.orgId, orgId), isNull(signingKeys.retiredAt)))
        .limit(1)
    )[0];
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
  return {
    id: row.id,
    fingerprint: row.fingerprint,
    publicKeyPem: row.publicKeyPem,
    privateKeyPem: new TextDecoder().decode(plain),
  };
}

/**
 * Rotation statements for the site installer: each retired key of the organisation signs the active
 * public key, shipped as `keys/endorsed-by-<hex of the retired key's fingerprint>.sig`. A site that
 * pinned a retired key accepts the active one on the strength of that signature (docs/decisions.md).
 */
export async function keyEndorsements(
  db: Db,
  box: SecretBox,
  orgId: string,
  active: OpenSigningKey,
): Promise<{ path: string; content: Uint8Array }[]> {
  const retired = await db
    .select()
    .from(signingKeys)
    .where(and(eq(signingKeys.orgId, orgId), isNotNull(signingKeys.retiredAt)));
  const out: { path: string; content: Uint8Array }[] = [];
  for (const row of retired) {
    const privateKeyPem = new TextDecoder().decode(
      await box.open(row.privateKeySealed, aad(orgId, row.fingerprint)),
    );
    // The first 16 hex digits name the key (tar names are at most 100 bytes); the signature is what is checked.
    const hex = Buffer.from(row.fingerprint.replace(/^SHA256:/, ''), 'base64')
      .toString('hex')
      .slice(0, 16);
    out.push({
      path: `endorsed-by-${hex}.sig`,
      content: signManifest(new TextEncoder().encode(active.publicKeyPem), privateKeyPem),
    });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** A new active key; the old one is retired but kept, so bundles it signed still verify. */
export async function rotateSigningKey({ ctx, box }: { ctx: ServiceCtx; box: SecretBox }) {
  return inTransaction(ctx, async (ctx) => {
    const retired = await ctx.db
      .update(signingKeys)
      .set({ retiredAt: sql`now()` })
      .where(and(eq(signingKeys.orgId, ctx.orgId), isNull(signingKeys.retiredAt)))
      .returning({ fingerprint: signingKeys.fingerprint });
    const row = await insertKey(ctx.db, box, ctx.orgId, ctx.actor.userId);
    await recordAudit(ctx, {
      action: 'signing_key.rotate',
      objectType: 'signing_key',
      objectId: row.id,
      details: { fingerprint: row.fingerprint, retired: retired.map((r) => r.fingerprint) },
    });
    return toSigningKeyView(row);
  });
}
