// Node entry point: reads the environment, opens the database and object store, migrates,
// creates the first organisation, serves the API and the built web app on one origin.
import path from 'node:path';
import fs from 'node:fs';
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { serveStatic } from '@hono/node-server/serve-static';
import { etag } from 'hono/etag';
import { Hono } from 'hono';
import { compress } from 'hono/compress';
import { parseNodeEnv } from './node-env.ts';
import { createApp } from './app.ts';
import { jsonLogger } from './lib/logger.ts';
import { onShutdown } from './lib/shutdown.ts';
import { bootstrapFirstOrg } from './services/orgs/bootstrap.ts';
import { openRuntime } from './runtime.ts';
import { BuildRunner } from './services/bundles/build-runner.ts';
import { registryImageResolver } from './services/releases/registry-resolver.ts';
import { startRolloutScheduler } from './services/rollouts/ticker.ts';
import { guardedFetch } from '@outpost/bundler/guarded-fetch';
import { smtpMailer } from './lib/mailer.ts';

const env = parseNodeEnv(process.env);
const log = jsonLogger(undefined, env.LOG_LEVEL);
const runtime = await openRuntime(env, log, { embeddedS3: true, migrate: true });
const { handle, objectStore, secretBox } = runtime;
// OUTPOST_DEMO=1: a read-only registry on loopback serving the demo release's small images (made
// here, in memory), so the demo's bundles build without network. Only its own address is allowed.
const demoRegistry = env.OUTPOST_DEMO
  ? await (async () => {
      const [{ startDemoRegistry }, { demoImages }] = await Promise.all([
        import('./lib/demo-registry.ts'),
        import('./services/seed/demo-image.ts'),
      ]);
      // The demo release pins its images at this address, so the port stays fixed (OUTPOST_DEMO_REGISTRY_PORT).
      return startDemoRegistry(demoImages(), { port: env.OUTPOST_DEMO_REGISTRY_PORT }).catch(
        (err: NodeJS.ErrnoException) => {
          if (err.code !== 'EADDRINUSE') throw err;
          throw new Error(
            `The demo's registry cannot listen on 127.0.0.1:${env.OUTPOST_DEMO_REGISTRY_PORT}: the port is taken (another Outpost demo?). Set OUTPOST_DEMO_REGISTRY_PORT to a free port.`,
          );
        },
      );
    })()
  : null;
// Where the registry client may connect: https and public addresses, plus the listed self-hosted registries.
const allowInsecure = [...env.OUTPOST_REGISTRY_ALLOW_INSECURE, ...(demoRegistry ? [demoRegistry.host] : [])];
const registry = { allowInsecure, fetch: guardedFetch(allowInsecure) };

const first = await bootstrapFirstOrg(handle.db, {
  orgName: env.OUTPOST_ORG_NAME,
  adminEmail: env.OUTPOST_ADMIN_EMAIL,
  adminPassword: env.OUTPOST_ADMIN_PASSWORD,
});
if (first) {
  // Printed once, on the first start only; it is never logged or stored in clear.
  const pw = first.generatedPassword
    ? `\n  password: ${first.generatedPassword}   (generated; shown only this once — change it after signing in)`
    : '\n  password: the one in OUTPOST_ADMIN_PASSWORD';
  process.stdout.write(
    `\nOutpost created the organisation "${first.org.name}" and its owner account:\n  email:    ${first.email}${pw}\n\n`,
  );
}

if (env.OUTPOST_DEMO) {
  // A 2,000-site demo fleet in the first organisation, once (only while it has no sites).
  const { seedDemoOnce } = await import('./services/seed/demo.ts');
  const seeded = await seedDemoOnce(handle.db, 2000);
  if (seeded) log('info', 'demo fleet seeded', seeded);
  const { seedDemoRelease } = await import('./services/seed/demo.ts');
  const release = await seedDemoRelease(handle.db, {
    box: secretBox,
    resolver: registryImageResolver(registry),
    registryHost: demoRegistry!.host,
  });
  if (release) log('info', 'demo release seeded', { ...release, registry: demoRegistry!.host });
}

const api = createApp({
  secretBox,
  imageResolver: registryImageResolver(registry),
  database: () => handle.db,
  objectStore,
  logger: log,
  clientAddress: (c) => {
    // Behind a reverse proxy every socket is the proxy's: trust its X-Forwarded-For only when told to.
    const forwarded = env.OUTPOST_TRUST_PROXY
      ? c.req.header('x-forwarded-for')?.split(',')[0]?.trim()
      : undefined;
    return forwarded || getConnInfo(c).remote.address || 'unknown';
  },
  secureCookies: env.OUTPOST_SECURE_COOKIES === 'auto' ? 'auto' : env.OUTPOST_SECURE_COOKIES === 'true',
  version: process.env.npm_package_version,
  ...(env.OUTPOST_PUBLIC_URL ? { publicUrl: env.OUTPOST_PUBLIC_URL } : {}),
  ...(env.SMTP_URL ? { mailer: smtpMailer(env.SMTP_URL, env.SMTP_FROM) } : {}),
});

// Bundle builds: build runners in this process (OUTPOST_WORKERS, default 1); more run as `npm run build-runner`.
const runners = Array.from(
  { length: env.OUTPOST_WORKERS },
  () =>
    new BuildRunner({
      db: handle.db,
      store: objectStore,
      secretBox,
      logger: log,
      registry,
      leaseMs: env.OUTPOST_WORKER_LEASE_MS,
      ...(env.OUTPOST_PUBLIC_URL ? { publicUrl: env.OUTPOST_PUBLIC_URL } : {}),
    }),
);
for (const r of runners) r.start();

// The rollout scheduler: waves open on time, thresholds are judged, webhooks are sent.
const scheduler =
  env.OUTPOST_SCHEDULER_INTERVAL_SECONDS > 0
    ? startRolloutScheduler({
        db: handle.db,
        box: secretBox,
        logger: log,
        intervalMs: env.OUTPOST_SCHEDULER_INTERVAL_SECONDS * 1000,
      })
    : null;

const webDir = path.resolve(env.OUTPOST_WEB_DIR ?? path.join(import.meta.dirname, '../../web/build'));
const server = new Hono();
// The API's JSON answers compressed (the dashboard's overview is 22 kB as text, ~3 kB gzipped: on a
// slow link that is time before the page is usable). Only JSON: bundle downloads (tar) keep their
// length and byte ranges. Cloudflare compresses at its edge, so this lives in the Node entry.
const gzip = compress();
server.use('/api/*', async (c, next) => {
  await next();
  if (c.res.headers.get('Content-Type')?.startsWith('application/json')) await gzip(c, async () => {});
});
server.route('/', api);
if (fs.existsSync(path.join(webDir, 'index.html'))) {
  const root = path.relative(process.cwd(), webDir);
  // The build writes each file's brotli and gzip copies beside it (adapter-static `precompress`),
  // served when the browser accepts them; anything without one is gzipped on the fly. Files under
  // _app/immutable have a content hash in their names, so browsers keep them for good and a later
  // visit fetches only the page's data.
  server.use('/_app/*', compress());
  // Content-hashed files are kept for good. Everything else (index.html above all, which carries the
  // first screen's code: 56 kB) is asked again on every visit and answered 304 while it has not
  // changed (docs/decisions.md); only those answers are hashed for their ETag.
  const revalidated = etag();
  server.use('/*', async (c, next) => {
    const immutable = c.req.path.startsWith('/_app/immutable/');
    await (immutable ? next() : revalidated(c, next));
    if (immutable && c.res.status === 200) c.header('Cache-Control', 'public, max-age=31536000, immutable');
    else if (!immutable && (c.res.status === 200 || c.res.status === 304))
      c.header('Cache-Control', 'no-cache');
  });
  server.use('/*', serveStatic({ root, precompressed: true }));
  // The dashboard is a single-page app: every other path gets index.html.
  server.get('*', serveStatic({ root, path: 'index.html', precompressed: true }));
} else {
  log('warn', 'web app not built; run `npm run build` to serve the dashboard', { webDir });
}

const httpServer = serve({ fetch: server.fetch, port: env.PORT, hostname: env.HOST }, (info) => {
  log('info', 'listening', { url: `http://${env.HOST === '0.0.0.0' ? 'localhost' : env.HOST}:${info.port}` });
  process.stdout.write(`Outpost is running at http://localhost:${info.port}\n`);
});

onShutdown(log, async (signal) => {
  log('info', 'shutting down', { signal });
  httpServer.close();
  await Promise.all([...runners.map((r) => r.stop()), scheduler?.stop()]);
  await demoRegistry?.stop();
  await runtime.close();
});
