import { asc, count, eq } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { organizations, sites } from '../../db/schema/index.ts';
import { seedFleet } from './fleet.ts';

/** OUTPOST_DEMO=1: fills the first organisation with a demo fleet, unless it already has sites. */
export async function seedDemoOnce(db: Db, size: number) {
  const [org] = await db.select().from(organizations).orderBy(asc(organizations.createdAt)).limit(1);
  if (!org) return null;
  const [{ n } = { n: 0 }] = await db.select({ n: count() }).from(sites).where(eq(sites.orgId, org.id));
  if (n > 0) return null;
  const started = Date.now();
  const r = await seedFleet(db, { orgId: org.id, sites: size, reportsPerSite: 4 });
  return { organization: org.name, ...r, seconds: Math.round((Date.now() - started) / 100) / 10 };
}
