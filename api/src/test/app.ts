import { createApp } from '../app.ts';
import type { DbHandle } from '../db/types.ts';
import type { ObjectStore } from '../lib/object-store.ts';
import type { Logger } from '../lib/logger.ts';
import type { Mailer } from '../routes/app-env.ts';
import { createSecretBox } from '../lib/secret-box.ts';
import { registryImageResolver } from '../services/releases/registry-resolver.ts';
import { runStore } from './store.ts';
import { testRegistryPolicy } from '@outpost/bundler/test-support';

export interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

/** The real app on a real database and the run's real S3 server; logs captured for secret checks. */
export async function makeTestApp(
  handle: DbHandle,
  options: {
    maxBodyBytes?: number;
    checkinsPerMinute?: number;
    maxContentPackageBytes?: number;
    secretKey?: Uint8Array;
    objectStore?: ObjectStore;
    mailer?: Mailer;
  } = {},
) {
  const { secretKey, objectStore: storeOverride, ...opts } = options;
  const logs: LogLine[] = [];
  const logger: Logger = (level, msg, fields) => {
    logs.push({ level, msg, fields });
  };
  const objectStore = storeOverride ?? runStore({ bucket: 'outpost-test' });
  const secretBox = await createSecretBox(secretKey ?? crypto.getRandomValues(new Uint8Array(32)));
  // Fast retries: tests exercise unreachable registries and should not wait for production backoff.
  const app = createApp({
    database: () => handle.db,
    objectStore,
    logger,
    secretBox,
    // The registries tests start are allow-listed as OUTPOST_REGISTRY_ALLOW_INSECURE would list them.
    imageResolver: registryImageResolver({
      retries: 1,
      backoffMs: 20,
      timeoutMs: 5000,
      ...testRegistryPolicy(),
    }),
    // app.request() has no socket: tests name the client's address in a header of their own.
    clientAddress: (c) => c.req.header('x-test-client-address') ?? '127.0.0.1',
    ...opts,
  });
  return { app, logs, objectStore, secretBox };
}
