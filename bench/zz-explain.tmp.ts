import { sql, type SQL } from 'drizzle-orm';
import { createPgDb } from '../api/src/db/client-pg.ts';
import { benchDbUrl } from './bench-fleet.ts';
import { groupFleet, withoutJit } from '../api/src/services/fleet/figures.ts';
import { loadReleaseOrder } from '../api/src/services/fleet/drift.ts';
const handle = await createPgDb(benchDbUrl('outpost_bench_adoption'));
const [{ id }] = ((await handle.db.execute(sql`select id from organizations where name = 'Bench Ministry'`)) as any).rows;
const base = { db: handle.db, orgId: id, actor: { role: 'viewer', userId: null } } as any;
const dims = (process.env.DIMS ?? 'tag,district,region,none').split(',');
const filters = JSON.parse(process.env.FILTERS ?? '[{}]');
for (const dim of dims) for (const f of filters) {
  await withoutJit(base, async (c) => {
    const order = await loadReleaseOrder(c);
    const orig = c.db;
    const db = new Proxy(orig, { get(t, p) { if (p === 'execute') return async (q: SQL) => { const r: any = await (t as any).execute(sql`explain (analyze, buffers) ${q}`); console.log(`--- dim=${dim} f=${JSON.stringify(f)}\n` + r.rows.map((x: any) => x['QUERY PLAN']).join('\n')); return { rows: [] }; }; return (t as any)[p]; } });
    await groupFleet({ ...c, db } as any, f, new Date(), dim === 'none' ? null : (dim as any), order);
  });
}
await handle.close();
