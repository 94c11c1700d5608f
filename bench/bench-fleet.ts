// The benches' PostgreSQL fleet: a database of the bench's own, migrated, holding a "Bench Ministry"
// of `sites` sites seeded once (later runs reuse it; a different size seeds it again).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { eq, sql } from 'drizzle-orm';
import { createPgDb } from '../api/src/db/client-pg.ts';
import { MIGRATIONS_DIR } from '../api/src/db/select-node.ts';
import { organizations, sites } from '../api/src/db/schema/index.ts';
import { seedFleet } from '../api/src/services/seed/fleet.ts';
import { makeOrg } from '../api/src/test/factories.ts';

export const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The URL of database `db` on the bench's PostgreSQL server. */
export function benchDbUrl(db: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function openBenchFleet({
  db,
  sites: count,
  pool,
  line,
  onProgress,
}: {
  db: string;
  sites: number;
  pool?: { max?: number };
  line: (s: string) => void;
  onProgress?: (done: number, of: number) => void;
}) {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  if (!(await admin.query('select 1 from pg_database where datname = $1', [db])).rowCount)
    await admin.query(`create database ${db}`);
  await admin.end();
  const handle = await createPgDb(benchDbUrl(db), pool);
  await handle.migrate(MIGRATIONS_DIR);
  let [org] = await handle.db
    .select()
    .from(organizations)
    .where(eq(organizations.name, 'Bench Ministry'))
    .limit(1);
  const have = org
    ? (
        await handle.db
          .select({ n: sql<number>`count(*)::int` })
          .from(sites)
          .where(eq(sites.orgId, org.id))
      )[0]!.n
    : 0;
  let seeded = false;
  if (!org || have !== count) {
    if (org) await handle.db.delete(organizations).where(eq(organizations.id, org.id));
    org = await makeOrg(handle.db, 'Bench Ministry');
    line(`Seeding ${count.toLocaleString()} sites into ${db} (once; later runs reuse them)…`);
    const t0 = Date.now();
    await seedFleet(handle.db, { orgId: org.id, sites: count, seed: 7, onProgress });
    line(`  seeded in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    seeded = true;
  }
  return { handle, org: org!, seeded, dbUrl: benchDbUrl(db) };
}

/**
 * The API on the bench's database, in a process of its own (bench/server.ts) so that its CPU and
 * memory can be read apart from the load generator's; `nodeArgs` go before the script (a profiler).
 */
export async function startBenchServer({
  dbUrl,
  secretKey,
  nodeArgs = [],
}: {
  dbUrl: string;
  /** The secret key, base64. */
  secretKey: string;
  nodeArgs?: string[];
}): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--import', 'tsx', path.join(import.meta.dirname, 'server.ts')],
    {
      env: {
        ...process.env,
        BENCH_DATABASE_URL: dbUrl,
        BENCH_SECRET_KEY: secretKey,
        NODE_OPTIONS: '--openssl-legacy-provider',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      const m = /READY (\d+)/.exec(b.toString());
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (c) => reject(new Error(`bench server exited ${c}`)));
  });
  return { child, base: `http://127.0.0.1:${port}` };
}
