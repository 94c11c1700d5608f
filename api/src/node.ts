// Node entry point: reads the environment, opens the database and object store, migrates,
// creates the first organisation, serves the API and the built web app on one origin.
import path from 'node:path';
import fs from 'node:fs';
import { serve } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { parseNodeEnv } from './env.ts';
import { openDatabase, MIGRATIONS_DIR } from './db/select-node.ts';
import { createApp } from './app.ts';
import { createObjectStore } from './lib/object-store.ts';
import { jsonLogger } from './lib/logger.ts';
import { bootstrapFirstOrg } from './services/orgs/bootstrap.ts';
import { createSecretBox, parseSecretKey } from './lib/secret-box.ts';
import { registryImageResolver } from './services/releases/registry-resolver.ts';

const env = parseNodeEnv(process.env);
const log = jsonLogger(undefined, env.LOG_LEVEL);
const dataDir = path.resolve(env.OUTPOST_DATA_DIR);
fs.mkdirSync(dataDir, { recursive: true });

const handle = await openDatabase({ databaseUrl: env.DATABASE_URL, driver: env.DATABASE_DRIVER, dataDir, neonRelay: env.NEON_WS_RELAY });
await handle.migrate(MIGRATIONS_DIR);
log('info', 'database ready', { driver: handle.driver });

let embeddedS3: { close(): Promise<void> } | null = null;
let s3 = {
  endpoint: env.S3_ENDPOINT, accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY,
};
if (!env.S3_ENDPOINT && !env.S3_ACCESS_KEY_ID) {
  const { startEmbeddedS3 } = await import('./embedded-s3.ts');
  const embedded = await startEmbeddedS3(path.join(dataDir, 's3'), env.S3_BUCKET);
  embeddedS3 = embedded;
  s3 = embedded;
  log('info', 'embedded object store started', { endpoint: embedded.endpoint });
}
const objectStore = createObjectStore({
  endpoint: s3.endpoint, bucket: env.S3_BUCKET, region: env.S3_REGION,
  accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: env.S3_FORCE_PATH_STYLE,
});
await objectStore.ensureBucket();

const first = await bootstrapFirstOrg(handle.db, {
  orgName: env.OUTPOST_ORG_NAME, adminEmail: env.OUTPOST_ADMIN_EMAIL, adminPassword: env.OUTPOST_ADMIN_PASSWORD,
});
if (first) {
  // Printed once, on the first start only; it is never logged or stored in clear.
  const pw = first.generatedPassword ? `\n  password: ${first.generatedPassword}   (generated; shown only this once — change it after signing in)` : '\n  password: the one in OUTPOST_ADMIN_PASSWORD';
  process.stdout.write(`\nOutpost created the organisation "${first.org.name}" and its owner account:\n  email:    ${first.email}${pw}\n\n`);
}

// The secret key seals receipt keys and other secrets at rest. Embedded mode keeps a generated one
// beside the data; a self-hosted deployment with several processes must set OUTPOST_SECRET_KEY.
function loadSecretKey(): Uint8Array {
  if (env.OUTPOST_SECRET_KEY) return parseSecretKey(env.OUTPOST_SECRET_KEY);
  const file = path.join(dataDir, 'secret.key');
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    log('warn', 'generated a secret key; back it up with the data directory', { file });
  }
  return parseSecretKey(fs.readFileSync(file, 'utf8'));
}
const secretBox = await createSecretBox(loadSecretKey());

if (env.OUTPOST_DEMO) {
  // A 2,000-site demo fleet in the first organisation, once (only while it has no sites).
  const { seedDemoOnce } = await import('./services/seed/demo.ts');
  const seeded = await seedDemoOnce(handle.db, 2000);
  if (seeded) log('info', 'demo fleet seeded', seeded);
}

const api = createApp({
  secretBox,
  imageResolver: registryImageResolver(),
  database: () => handle.db,
  objectStore,
  logger: log,
  secureCookies: env.OUTPOST_SECURE_COOKIES === 'auto' ? 'auto' : env.OUTPOST_SECURE_COOKIES === 'true',
  version: process.env.npm_package_version,
});

const webDir = path.resolve(env.OUTPOST_WEB_DIR ?? path.join(import.meta.dirname, '../../web/build'));
const server = new Hono();
server.route('/', api);
if (fs.existsSync(path.join(webDir, 'index.html'))) {
  const root = path.relative(process.cwd(), webDir);
  server.use('/*', serveStatic({ root }));
  // The dashboard is a single-page app: every other path gets index.html.
  server.get('*', serveStatic({ root, path: 'index.html' }));
} else {
  log('warn', 'web app not built; run `npm run build` to serve the dashboard', { webDir });
}

const httpServer = serve({ fetch: server.fetch, port: env.PORT, hostname: env.HOST }, (info) => {
  log('info', 'listening', { url: `http://${env.HOST === '0.0.0.0' ? 'localhost' : env.HOST}:${info.port}` });
  process.stdout.write(`Outpost is running at http://localhost:${info.port}\n`);
});

async function shutdown(signal: string) {
  log('info', 'shutting down', { signal });
  httpServer.close();
  await embeddedS3?.close().catch(() => {});
  await handle.close().catch(() => {});
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
