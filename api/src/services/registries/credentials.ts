import { and, asc, eq, sql } from 'drizzle-orm';
import { registryCredentials } from '../../db/schema/index.ts';
import { NotFoundError } from '../../lib/errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';

export type RegistrySecret = { username: string; password: string } | { token: string };

type Row = typeof registryCredentials.$inferSelect;
/** What the API shows: never the password or token. */
const toView = (r: Row) => ({
  id: r.id,
  registry: r.registry,
  username: r.username,
  kind: r.username ? ('basic' as const) : ('token' as const),
  createdAt: r.createdAt.toISOString(),
  updatedAt: r.updatedAt.toISOString(),
});

/** Normalises how people write a registry host: no scheme, no trailing slash, lower case; Docker Hub is docker.io. */
export function normaliseRegistry(input: string): string {
  const host = input
    .trim()
    .replace(/^https?:\/\//i, '')
    .replace(/\/+$/, '')
    .toLowerCase();
  return ['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'].includes(host)
    ? 'docker.io'
    : host;
}

export async function saveRegistryCredential({
  ctx,
  box,
  input,
}: {
  ctx: ServiceCtx;
  box: SecretBox;
  input: { registry: string; username?: string; password?: string; token?: string };
}) {
  const registry = normaliseRegistry(input.registry);
  const secret: RegistrySecret = input.token
    ? { token: input.token }
    : { username: input.username!, password: input.password! };
  const sealed = await box.seal(
    new TextEncoder().encode(JSON.stringify(secret)),
    `registry:${ctx.orgId}:${registry}`,
  );
  return inTransaction(ctx, async (ctx) => {
    const [row] = await ctx.db
      .insert(registryCredentials)
      .values({
        orgId: ctx.orgId,
        registry,
        username: 'username' in secret ? secret.username : null,
        secretSealed: sealed,
      })
      .onConflictDoUpdate({
        target: [registryCredentials.orgId, registryCredentials.registry],
        set: {
          username: 'username' in secret ? secret.username : null,
          secretSealed: sealed,
          updatedAt: sql`now()`,
        },
      })
      .returning();
    await recordAudit(ctx, {
      action: 'registry_credential.save',
      objectType: 'registry_credential',
      objectId: row!.id,
      details: { registry },
    });
    return toView(row!);
  });
}

export async function listRegistryCredentials({ ctx }: { ctx: ServiceCtx }) {
  const rows = await ctx.db
    .select()
    .from(registryCredentials)
    .where(eq(registryCredentials.orgId, ctx.orgId))
    .orderBy(asc(registryCredentials.registry));
  return rows.map(toView);
}

export async function deleteRegistryCredential({ ctx, input }: { ctx: ServiceCtx; input: { id: string } }) {
  return inTransaction(ctx, async (ctx) => {
    const [row] = await ctx.db
      .delete(registryCredentials)
      .where(and(eq(registryCredentials.orgId, ctx.orgId), eq(registryCredentials.id, input.id)))
      .returning();
    if (!row) throw new NotFoundError('registry credential', input.id);
    await recordAudit(ctx, {
      action: 'registry_credential.delete',
      objectType: 'registry_credential',
      objectId: row.id,
      details: { registry: row.registry },
    });
  });
}

/** The organisation's secret for a registry, opened for one use (never logged, never returned). */
export async function credentialFor(
  ctx: ServiceCtx,
  box: SecretBox,
  registry: string,
): Promise<RegistrySecret | undefined> {
  const host = normaliseRegistry(registry);
  const [row] = await ctx.db
    .select()
    .from(registryCredentials)
    .where(and(eq(registryCredentials.orgId, ctx.orgId), eq(registryCredentials.registry, host)))
    .limit(1);
  if (!row) return undefined;
  const plain = await box.open(row.secretSealed, `registry:${ctx.orgId}:${host}`);
  return JSON.parse(new TextDecoder().decode(plain)) as RegistrySecret;
}
