import { Pool, neonConfig } from '@neondatabase/serverless';
import { drizzle } from 'drizzle-orm/neon-serverless';
import type { migrate as neonMigrate } from 'drizzle-orm/neon-serverless/migrator';
import * as schema from './schema/index.ts';
import type { Db, DbHandle } from './types.ts';

export interface NeonOptions {
  /** WebSocket constructor outside workerd (Node: the `ws` package). */
  webSocketConstructor?: typeof WebSocket | unknown;
  /**
   * Local development: a WebSocket→TCP relay in front of a plain PostgreSQL (see scripts/ws-relay).
   * Given as `host:port` of the relay; TLS and pipelining are turned off because the relay speaks plain TCP.
   */
  relay?: string;
  /**
   * Node only: the drizzle migrator (it reads migrations from disk). The Cloudflare entry leaves it out
   * so its bundle carries no filesystem code; migrations are applied from Node beforehand.
   */
  migrate?: typeof neonMigrate;
}

/** Neon serverless Pool (WebSocket); the driver used on Cloudflare Workers. */
export async function createNeonDb(url: string, opts: NeonOptions = {}): Promise<DbHandle> {
  if (opts.webSocketConstructor)
    neonConfig.webSocketConstructor = opts.webSocketConstructor as typeof WebSocket;
  if (opts.relay) {
    const relay = opts.relay;
    neonConfig.wsProxy = (host, port) => `${relay}/v2?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  const pool = new Pool({ connectionString: url });
  pool.on('error', (err: Error) =>
    console.error(JSON.stringify({ level: 'error', msg: 'neon pool error', err: err.message })),
  );
  const db = drizzle({ client: pool, schema, casing: 'snake_case' });
  return {
    db: db as unknown as Db,
    driver: 'neon',
    migrate: (migrationsFolder) =>
      opts.migrate
        ? opts.migrate(db, { migrationsFolder })
        : Promise.reject(new Error('Apply migrations from Node: DATABASE_DRIVER=neon npm run db:migrate')),
    close: () => pool.end(),
  };
}
