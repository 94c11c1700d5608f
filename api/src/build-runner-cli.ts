// `npm run build-runner`: a bundle build runner on its own, beside `npm start` or on another machine. It
// needs the same PostgreSQL (DATABASE_URL), object store (S3_*) and OUTPOST_SECRET_KEY as the server.
import { parseNodeEnv } from './node-env.ts';
import { jsonLogger } from './lib/logger.ts';
import { onShutdown } from './lib/shutdown.ts';
import { openRuntime } from './runtime.ts';
import { BuildRunner } from './services/bundles/build-runner.ts';
import { guardedFetch } from '@outpost/bundler/guarded-fetch';

const env = parseNodeEnv(process.env);
const log = jsonLogger(undefined, env.LOG_LEVEL);
if (!env.DATABASE_URL) {
  process.stderr.write(
    'A separate build runner needs DATABASE_URL: the embedded database belongs to the `npm start` process (which runs a runner of its own).\n',
  );
  process.exit(2);
}
const runtime = await openRuntime(env, log, { embeddedS3: false, migrate: false });
const runner = new BuildRunner({
  db: runtime.handle.db,
  store: runtime.objectStore,
  secretBox: runtime.secretBox,
  logger: log,
  registry: {
    allowInsecure: env.OUTPOST_REGISTRY_ALLOW_INSECURE,
    fetch: guardedFetch(env.OUTPOST_REGISTRY_ALLOW_INSECURE),
  },
  ...(env.OUTPOST_PUBLIC_URL ? { publicUrl: env.OUTPOST_PUBLIC_URL } : {}),
  leaseMs: env.OUTPOST_WORKER_LEASE_MS,
});
runner.start();
log('info', 'build runner started', { runner: runner.id });

onShutdown(log, async (signal) => {
  log('info', 'build runner stopping', { signal, runner: runner.id });
  await runner.stop();
  await runtime.close();
});
