import type { Db } from '../db/types.ts';
import type { Role } from '../db/schema/index.ts';

export interface Actor {
  userId: string | null;
  tokenId: string | null;
  role: Role;
}

/** What every service verb receives: the database (or the caller's transaction), the organisation, the actor. */
export interface ServiceCtx {
  db: Db;
  orgId: string;
  actor: Actor;
  requestId?: string;
}

/** Runs `fn` in a transaction, or inside the caller's when `ctx.db` already is one. */
export async function inTransaction<T>(ctx: ServiceCtx, fn: (ctx: ServiceCtx) => Promise<T>): Promise<T> {
  if ((ctx as { inTx?: boolean }).inTx) return fn(ctx);
  return ctx.db.transaction(async (tx) => fn({ ...ctx, db: tx as unknown as Db, inTx: true } as ServiceCtx));
}
