// What both Node entry points (the server and the stand-alone worker) open: the database, the object
// store and the secret box, from the checked environment.
import path from 'node:path';
import fs from 'node:fs';
import type { NodeEnv } from './node-env.ts';
import { openEnvDatabase } from './db/select-node.ts';
import { createObjectStore, type ObjectStore } from './lib/object-store.ts';
import { createSecretBox, parseSecretKey, type SecretBox } from './lib/secret-box.ts';
import type { Logger } from './lib/logger.ts';
import type { DbHandle } from './db/types.ts';

export interface Runtime {
  handle: DbHandle;
  objectStore: ObjectStore;
  secretBox: SecretBox;
  dataDir: string;
  close(): Promise<void>;
}

export async function openRuntime(
  env: NodeEnv,
  log: Logger,
  opts: { embeddedS3: boolean; migrate: boolean },
): Promise<Runtime> {
  const dataDir = path.resolve(env.OUTPOST_DATA_DIR);
  fs.mkdirSync(dataDir, { recursive: true });

  // The server migrates; a separate worker uses the schema as the server (or `npm run db:migrate`) left it.
  const handle = await openEnvDatabase(env, { migrate: opts.migrate });
  log('info', 'database ready', { driver: handle.driver });

  let embeddedS3: { close(): Promise<void> } | null = null;
  let s3 = {
    endpoint: env.S3_ENDPOINT,
    accessKeyId: env.S3_ACCESS_KEY_ID,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY,
  };
  if (!env.S3_ENDPOINT && !env.S3_ACCESS_KEY_ID) {
    if (!opts.embeddedS3)
      throw new Error(
        'Set S3_ENDPOINT (and keys) to the object store the server uses: a separate worker cannot share the embedded one.',
      );
    const { startEmbeddedS3 } = await import('./embedded-s3.ts');
    const embedded = await startEmbeddedS3(path.join(dataDir, 's3'), env.S3_BUCKET);
    embeddedS3 = embedded;
    s3 = embedded;
    log('info', 'embedded object store started', { endpoint: embedded.endpoint });
  }
  const objectStore = createObjectStore({
    endpoint: s3.endpoint,
    bucket: env.S3_BUCKET,
    region: env.S3_REGION,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: env.S3_FORCE_PATH_STYLE,
    publicEndpoint: env.S3_PUBLIC_ENDPOINT,
    idleTimeoutMs: env.S3_IDLE_TIMEOUT_SECONDS * 1000,
  });
  await objectStore.ensureBucket();

  // The secret key seals receipt keys, registry credentials and signing keys at rest. Embedded mode
  // keeps a generated one beside the data; several processes must share OUTPOST_SECRET_KEY.
  const loadSecretKey = (): Uint8Array => {
    if (env.OUTPOST_SECRET_KEY) return parseSecretKey(env.OUTPOST_SECRET_KEY);
    const file = path.join(dataDir, 'secret.key');
    if (!fs.existsSync(file)) {
      fs.writeFileSync(
        file,
        Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64') + '\n',
        { mode: 0o600, flag: 'wx' },
      );
      log('warn', 'generated a secret key; back it up with the data directory', { file });
    }
    return parseSecretKey(fs.readFileSync(file, 'utf8'));
  };
  const secretBox = await createSecretBox(loadSecretKey());

  return {
    handle,
    objectStore,
    secretBox,
    dataDir,
    async close() {
      await embeddedS3?.close().catch(() => {});
      await handle.close().catch(() => {});
    },
  };
}
