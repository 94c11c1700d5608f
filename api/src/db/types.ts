import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type * as schema from './schema/index.ts';

/** One drizzle type for every driver (node-postgres, PGlite, Neon serverless). */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DbHandle {
  db: Db;
  driver: 'pglite' | 'pg' | 'neon';
  /** Applies migrations from the given folder (Node only: reads the filesystem). */
  migrate(migrationsFolder: string): Promise<void>;
  close(): Promise<void>;
}
