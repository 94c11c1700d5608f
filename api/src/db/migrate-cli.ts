// `npm run db:migrate`: applies migrations/ to the configured database and exits.
import path from 'node:path';
import { parseNodeEnv } from '../node-env.ts';
import { openDatabase, MIGRATIONS_DIR } from './select-node.ts';

const env = parseNodeEnv(process.env);
const handle = await openDatabase({
  databaseUrl: env.DATABASE_URL,
  driver: env.DATABASE_DRIVER,
  dataDir: path.resolve(env.OUTPOST_DATA_DIR),
  neonRelay: env.NEON_WS_RELAY,
});
await handle.migrate(MIGRATIONS_DIR);
await handle.close();
process.stdout.write(`Migrations applied (${handle.driver}).\n`);
