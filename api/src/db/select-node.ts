import path from 'node:path';
import type { NodeEnv } from '../node-env.ts';
import type { DbHandle } from './types.ts';

export interface DbConfig {
  databaseUrl?: string;
  driver?: 'pglite' | 'pg' | 'neon';
  dataDir: string;
  neonRelay?: string;
}

/** Picks the driver from configuration (Node entry points only; the Cloudflare entry imports client-neon directly). */
export async function openDatabase(cfg: DbConfig): Promise<DbHandle> {
  const driver = cfg.driver ?? (cfg.databaseUrl ? 'pg' : 'pglite');
  if (driver === 'pglite') {
    const { createPgliteDb } = await import('./client-pglite.ts');
    return createPgliteDb(path.join(cfg.dataDir, 'db'));
  }
  if (!cfg.databaseUrl) throw new Error(`DATABASE_URL is required for DATABASE_DRIVER=${driver}`);
  if (driver === 'pg') {
    const { createPgDb } = await import('./client-pg.ts');
    return createPgDb(cfg.databaseUrl);
  }
  const { createNeonDb } = await import('./client-neon.ts');
  const { default: ws } = await import('ws');
  const { migrate } = await import('drizzle-orm/neon-serverless/migrator');
  return createNeonDb(cfg.databaseUrl, { webSocketConstructor: ws, relay: cfg.neonRelay, migrate });
}

export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '../../../migrations');

/** The database the checked environment names (PGlite under OUTPOST_DATA_DIR when none), migrated when asked. */
export async function openEnvDatabase(env: NodeEnv, opts: { migrate: boolean }): Promise<DbHandle> {
  const handle = await openDatabase({
    databaseUrl: env.DATABASE_URL,
    driver: env.DATABASE_DRIVER,
    dataDir: path.resolve(env.OUTPOST_DATA_DIR),
    neonRelay: env.NEON_WS_RELAY,
  });
  if (opts.migrate) await handle.migrate(MIGRATIONS_DIR);
  return handle;
}
