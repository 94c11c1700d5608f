// The Neon serverless driver (the one the Cloudflare entry uses) against the real PostgreSQL, through a
// local WebSocket→TCP relay that stands in for Neon's proxy. No mocks: real wire protocol.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ws from 'ws';
import { eq, sql } from 'drizzle-orm';
import fs from 'node:fs';
import path from 'node:path';
import { createNeonDb } from './client-neon.ts';
import { migrate } from 'drizzle-orm/neon-serverless/migrator';
import { MIGRATIONS_DIR } from './select-node.ts';
import { memberships, organizations, users } from './schema/index.ts';
import type { DbHandle } from './types.ts';
import { createScratchPgDatabase } from '../test/db.ts';
import { startWsRelay, type WsRelay } from '../test/ws-relay.ts';

const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS_DIR, 'meta/_journal.json'), 'utf8')) as {
  entries: unknown[];
};

describe('Neon serverless driver through a WebSocket relay', () => {
  let relay: WsRelay;
  let scratch: Awaited<ReturnType<typeof createScratchPgDatabase>>;
  let handle: DbHandle;

  beforeAll(async () => {
    relay = await startWsRelay();
    scratch = await createScratchPgDatabase();
    handle = await createNeonDb(scratch.url, { webSocketConstructor: ws, relay: relay.address, migrate });
  });

  afterAll(async () => {
    await handle?.close();
    await relay?.close();
    await scratch?.drop();
  });

  it('should apply the migrations through the neon-serverless migrator', async () => {
    expect(handle.driver).toBe('neon');
    await handle.migrate(MIGRATIONS_DIR);
    // Db types execute() results as unknown (it differs per driver); Neon's Pool returns pg-style { rows }.
    const r = (await handle.db.execute(
      sql`select count(*)::int as n from drizzle.__drizzle_migrations`,
    )) as unknown as { rows: { n: number }[] };
    expect(r.rows[0]?.n).toBe(journal.entries.length);
    expect(await handle.db.select().from(organizations)).toEqual([]);
  });

  it('should insert, select, update and delete an organization and a user', async () => {
    const { db } = handle;
    const [org] = await db
      .insert(organizations)
      .values({ name: 'Neon Org', slug: `neon-${Date.now()}` })
      .returning();
    expect(org?.id).toMatch(/^[0-9a-f-]{36}$/);
    const [user] = await db
      .insert(users)
      .values({ email: `neon-${Date.now()}@example.org`, name: 'Neon Person', passwordHash: 'x' })
      .returning();
    await db.insert(memberships).values({ orgId: org!.id, userId: user!.id, role: 'admin' });

    const joined = await db
      .select({ email: users.email, role: memberships.role, org: organizations.name })
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .innerJoin(organizations, eq(organizations.id, memberships.orgId))
      .where(eq(memberships.orgId, org!.id));
    expect(joined).toEqual([{ email: user!.email, role: 'admin', org: 'Neon Org' }]);

    const [renamed] = await db
      .update(organizations)
      .set({ name: 'Renamed' })
      .where(eq(organizations.id, org!.id))
      .returning();
    expect(renamed?.name).toBe('Renamed');
    const [disabled] = await db
      .update(users)
      .set({ disabledAt: new Date() })
      .where(eq(users.id, user!.id))
      .returning();
    expect(disabled?.disabledAt).toBeInstanceOf(Date);

    await db.delete(users).where(eq(users.id, user!.id));
    await db.delete(organizations).where(eq(organizations.id, org!.id));
    expect(await db.select().from(organizations).where(eq(organizations.id, org!.id))).toEqual([]);
    // The membership went with them (on delete cascade).
    expect(await db.select().from(memberships).where(eq(memberships.orgId, org!.id))).toEqual([]);
  });

  it('should commit a transaction', async () => {
    const slug = `neon-tx-${Date.now()}`;
    const id = await handle.db.transaction(async (tx) => {
      const [org] = await tx.insert(organizations).values({ name: 'Committed', slug }).returning();
      await tx.insert(users).values({ email: `${slug}@example.org`, passwordHash: 'x' });
      return org!.id;
    });
    const rows = await handle.db.select().from(organizations).where(eq(organizations.id, id));
    expect(rows.map((r) => r.slug)).toEqual([slug]);
    expect(
      await handle.db
        .select()
        .from(users)
        .where(eq(users.email, `${slug}@example.org`)),
    ).toHaveLength(1);
  });

  it('should roll back a transaction that throws', async () => {
    const slug = `neon-rollback-${Date.now()}`;
    await expect(
      handle.db.transaction(async (tx) => {
        await tx.insert(organizations).values({ name: 'Rolled back', slug });
        // Visible inside the transaction…
        expect(await tx.select().from(organizations).where(eq(organizations.slug, slug))).toHaveLength(1);
        throw new Error('abort on purpose');
      }),
    ).rejects.toThrow('abort on purpose');
    // …and gone after it.
    expect(await handle.db.select().from(organizations).where(eq(organizations.slug, slug))).toEqual([]);
  });

  it('should roll back when a statement inside the transaction fails', async () => {
    const slug = `neon-dup-${Date.now()}`;
    await expect(
      handle.db.transaction(async (tx) => {
        await tx.insert(organizations).values({ name: 'First', slug: `${slug}-a` });
        await tx.insert(organizations).values({ name: 'Duplicate', slug: `${slug}-a` }); // unique violation
      }),
    ).rejects.toThrow();
    expect(
      await handle.db
        .select()
        .from(organizations)
        .where(eq(organizations.slug, `${slug}-a`)),
    ).toEqual([]);
  });

  it('should refuse relay targets other than the local machine', async () => {
    const target = `ws://${relay.address}/v2?address=example.org:5432`;
    const status = await new Promise<number | undefined>((resolve) => {
      const sock = new ws(target);
      sock.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode);
        sock.terminate();
      });
      sock.on('open', () => {
        resolve(101);
        sock.close();
      });
      sock.on('error', () => resolve(undefined));
    });
    expect(status).toBe(403);
  });
});
