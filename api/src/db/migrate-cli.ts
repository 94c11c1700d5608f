// `npm run db:migrate`: applies migrations/ to the configured database and exits.
import { parseNodeEnv } from '../node-env.ts';
import { openEnvDatabase } from './select-node.ts';

const env = parseNodeEnv(process.env);
const handle = await openEnvDatabase(env, { migrate: true });
await handle.close();
process.stdout.write(`Migrations applied (${handle.driver}).\n`);
