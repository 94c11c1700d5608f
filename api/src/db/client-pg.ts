import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import * as schema from './schema/index.ts';
import type { Db, DbHandle } from './types.ts';

/**
 * Limits so that a database that hangs cannot hold a request (or a connection) for ever: connecting,
 * one statement (server side, `statement_timeout`; the client gives up a little later in case the
 * server cannot even say so), and a transaction left idle. The longest statements Outpost runs (a
 * 50,000-row import, a 5,000-site wave) take seconds; a minute leaves a wide margin.
 */
export const PG_DEFAULTS = {
  connectionTimeoutMs: 10_000,
  statementTimeoutMs: 60_000,
  idleInTransactionTimeoutMs: 60_000,
};

export interface PgOptions {
  max?: number;
  connectionTimeoutMs?: number;
  statementTimeoutMs?: number;
  idleInTransactionTimeoutMs?: number;
}

/** node-postgres pool for self-hosted PostgreSQL. */
export async function createPgDb(url: string, opts: PgOptions = {}): Promise<DbHandle> {
  const o = { ...PG_DEFAULTS, ...opts };
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: o.connectionTimeoutMs,
    statement_timeout: o.statementTimeoutMs,
    query_timeout: o.statementTimeoutMs + 5_000,
    idle_in_transaction_session_timeout: o.idleInTransactionTimeoutMs,
    // JIT off for every statement: Outpost's reads are short, and when the planner's estimate crosses
    // jit_above_cost (a join over 100,000 targets) compiling costs 10–200 ms more than the query
    // itself (docs/decisions.md, "JIT off").
    options: '-c jit=off',
  });
  // An idle client that loses its server must not crash the process.
  pool.on('error', (err) =>
    console.error(JSON.stringify({ level: 'error', msg: 'pg pool error', err: err.message })),
  );
  const db = drizzle({ client: pool, schema, casing: 'snake_case' });
  return {
    db: db as unknown as Db,
    driver: 'pg',
    // Migrations may build indexes over a large fleet for longer than a request's statement timeout.
    migrate: async (migrationsFolder) => {
      const once = new pg.Pool({
        connectionString: url,
        max: 1,
        connectionTimeoutMillis: o.connectionTimeoutMs,
      });
      try {
        await migrate(drizzle({ client: once, schema, casing: 'snake_case' }), { migrationsFolder });
      } finally {
        await once.end();
      }
    },
    close: () => pool.end(),
  };
}
