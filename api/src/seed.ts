// `npm run seed -- --sites 100000 [--org "Ministry of Health"] [--reports 6] [--seed 42]`:
// a realistic fleet in whatever database is configured (DATABASE_URL, or the embedded PGlite).
import { parseArgs } from 'node:util';
import { asc, eq } from 'drizzle-orm';
import { parseNodeEnv } from './node-env.ts';
import { openEnvDatabase } from './db/select-node.ts';
import { organizations } from './db/schema/index.ts';
import { seedFleet } from './services/seed/fleet.ts';
import { bootstrapFirstOrg } from './services/orgs/bootstrap.ts';

const { values } = parseArgs({
  options: {
    sites: { type: 'string', default: '2000' },
    org: { type: 'string' },
    reports: { type: 'string', default: '6' },
    seed: { type: 'string', default: '42' },
  },
});
const count = Number(values.sites);
if (!Number.isInteger(count) || count < 1 || count > 1_000_000) {
  console.error('--sites must be a whole number between 1 and 1,000,000');
  process.exit(2);
}
const env = parseNodeEnv(process.env);
const handle = await openEnvDatabase(env, { migrate: true });
const first = await bootstrapFirstOrg(handle.db, {
  orgName: env.OUTPOST_ORG_NAME,
  adminEmail: env.OUTPOST_ADMIN_EMAIL,
  adminPassword: env.OUTPOST_ADMIN_PASSWORD,
});
if (first?.generatedPassword)
  console.log(`Created ${first.email} with password ${first.generatedPassword} (shown once).`);
const [org] = values.org
  ? await handle.db.select().from(organizations).where(eq(organizations.name, values.org)).limit(1)
  : await handle.db.select().from(organizations).orderBy(asc(organizations.createdAt)).limit(1);
if (!org) {
  console.error(`No organisation named "${values.org}".`);
  process.exit(2);
}
const started = Date.now();
let lastPrint = 0;
await seedFleet(handle.db, {
  orgId: org.id,
  sites: count,
  reportsPerSite: Number(values.reports),
  seed: Number(values.seed),
  onProgress: (done, total) => {
    if (Date.now() - lastPrint > 1000 || done === total) {
      lastPrint = Date.now();
      process.stdout.write(
        `\rSeeding "${org.name}": ${done.toLocaleString()} / ${total.toLocaleString()} sites`,
      );
    }
  },
});
process.stdout.write(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s (${handle.driver}).\n`);
await handle.close();
