// `npm run worker`: a bundle build worker on its own, beside `npm start` or on another machine. It
// needs the same PostgreSQL (DATABASE_URL), object store (S3_*) and OUTPOST_SECRET_KEY as the server.
import { parseNodeEnv } from './node-env.ts';
import { jsonLogger } from './lib/logger.ts';
import { onShutdown } from './lib/shutdown.ts';
import { openRuntime } from './runtime.ts';
import { BundleWorker } from './services/bundles/worker.ts';
import { guardedFetch } from '@outpost/bundler/guarded-fetch';

const env = parseNodeEnv(process.env);
const log = jsonLogger(undefined, env.LOG_LEVEL);
if (!env.DATABASE_URL) {
  process.stderr.write(
    'A separate worker needs DATABASE_URL: the embedded database belongs to the `npm start` process (which runs a worker of its own).\n',
  );
  process.exit(2);
}
const runtime = await openRuntime(env, log, { embeddedS3: false, migrate: false });
const worker = new BundleWorker({
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
worker.start();
log('info', 'bundle worker started', { worker: worker.id });

onShutdown(log, async (signal) => {
  log('info', 'bundle worker stopping', { signal, worker: worker.id });
  await worker.stop();
  await runtime.close();
});
