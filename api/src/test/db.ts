import pg from 'pg';
import { MIGRATIONS_DIR } from '../db/select-node.ts';
import type { DbHandle } from '../db/types.ts';

export type TestDriver = 'pglite' | 'pg';

/** Every database-facing suite runs on the embedded default and on the real PostgreSQL server. */
export const TEST_DRIVERS: TestDriver[] = (process.env.OUTPOST_TEST_DRIVERS?.split(',') as
  TestDriver[] | undefined) ?? ['pglite', 'pg'];

export const PG_ADMIN_URL = process.env.OUTPOST_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function pgUrlFor(database: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A throwaway PostgreSQL database, dropped when the returned handle closes. */
export async function createScratchPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `outpost_test_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  return {
    url: pgUrlFor(name),
    drop: async () => {
      const a = new pg.Client({ connectionString: PG_ADMIN_URL });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

/** A migrated, empty database on the given driver. */
export async function createTestDb(driver: TestDriver): Promise<DbHandle> {
  if (driver === 'pglite') {
    const { createPgliteDb } = await import('../db/client-pglite.ts');
    const h = await createPgliteDb();
    await h.migrate(MIGRATIONS_DIR);
    return h;
  }
  const scratch = await createScratchPgDatabase();
  const { createPgDb } = await import('../db/client-pg.ts');
  const h = await createPgDb(scratch.url, { max: 5 });
  await h.migrate(MIGRATIONS_DIR);
  return {
    ...h,
    close: async () => {
      await h.close();
      await scratch.drop();
    },
  };
}
