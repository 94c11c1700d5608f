// Cloudflare entry point (on Cloudflare Workers): the API on Neon (serverless driver over WebSocket) and any
// S3-compatible store. Static web assets are served by the platform (wrangler.toml [assets]);
// only /api/* runs this code. Migrations are applied beforehand from a Node machine
// (`DATABASE_DRIVER=neon npm run db:migrate`): Cloudflare's runtime has no filesystem to read them from.
//
// Only modules safe on Cloudflare may be imported here: no pg, PGlite, s3rver, node:fs, or the Node
// driver selection (client-pg, client-pglite, select-node). cloudflare.test.ts checks the bundle.
import type { Context, ExecutionContext } from 'hono';
import { createApp } from './app.ts';
import { createNeonDb } from './db/client-neon.ts';
import type { Db } from './db/types.ts';
import { createObjectStore } from './lib/object-store.ts';
import { jsonLogger } from './lib/logger.ts';
import { registryImageResolver } from './services/releases/registry-resolver.ts';
import { createSecretBox } from './lib/secret-box.ts';
import { parseCloudflareEnv, type CloudflareEnv } from './cloudflare-env.ts';
import { rolloutTick } from './services/rollouts/ticker.ts';

// A Neon Pool may not outlive its request on Workers (its socket belongs to the request), so each
// request gets its own; the app, built once per isolate, finds it through the Request object.
const requestDbs = new WeakMap<Request, Db>();

function databaseFor(c: Context): Db {
  const db = requestDbs.get(c.req.raw);
  if (!db) throw new Error('no database was opened for this request');
  return db;
}

type App = ReturnType<typeof createApp>;
// Bindings are fixed for the life of an isolate; the cache is keyed by them anyway so a new
// set of bindings can never be served by an app built from the old one.
const apps = new WeakMap<object, Promise<App>>();
const log = jsonLogger((line) => console.log(line));

async function buildApp(env: CloudflareEnv): Promise<App> {
  return createApp({
    database: databaseFor,
    objectStore: createObjectStore({
      endpoint: env.S3_ENDPOINT,
      bucket: env.S3_BUCKET,
      region: env.S3_REGION,
      accessKeyId: env.S3_ACCESS_KEY_ID,
      secretAccessKey: env.S3_SECRET_ACCESS_KEY,
      publicEndpoint: env.S3_PUBLIC_ENDPOINT,
    }),
    secretBox: await createSecretBox(env.OUTPOST_SECRET_KEY),
    // Workers' egress does not reach private addresses; the URL checks (https, address literals, redirects, realm) apply here too.
    imageResolver: registryImageResolver({ allowInsecure: env.OUTPOST_REGISTRY_ALLOW_INSECURE }),
    logger: log,
    clientAddress: (c) => c.req.header('cf-connecting-ip') ?? 'unknown',
    secureCookies: env.OUTPOST_SECURE_COOKIES === 'auto' ? 'auto' : env.OUTPOST_SECURE_COOKIES === 'true',
    ...(env.OUTPOST_PUBLIC_URL ? { publicUrl: env.OUTPOST_PUBLIC_URL } : {}),
  });
}

function appFor(raw: object, env: CloudflareEnv): Promise<App> {
  let app = apps.get(raw);
  if (!app) {
    app = buildApp(env);
    apps.set(raw, app);
    // A failed build is not kept: the next request tries again.
    app.catch(() => apps.delete(raw));
  }
  return app;
}

function badEnvironment(problems: string[]): Response {
  const requestId = crypto.randomUUID();
  log('error', 'bad environment', { requestId, problems });
  const body = {
    error: {
      code: 'BAD_ENVIRONMENT',
      message:
        'Outpost on Cloudflare is not configured correctly; its operator must fix the variables and secrets.',
      requestId,
      details: problems,
    },
  };
  return Response.json(body, { status: 500 });
}

export default {
  /** The cron trigger (wrangler.toml [triggers]): one rollout scheduler tick, on its own database pool. */
  async scheduled(
    _controller: unknown,
    rawEnv: Record<string, unknown>,
    ctx: ExecutionContext,
  ): Promise<void> {
    const parsed = parseCloudflareEnv(rawEnv);
    if (!parsed.ok) {
      log('error', 'bad environment', { problems: parsed.problems });
      return;
    }
    const handle = await createNeonDb(parsed.env.DATABASE_URL, { relay: parsed.env.NEON_WS_RELAY });
    try {
      await rolloutTick({
        db: handle.db,
        box: await createSecretBox(parsed.env.OUTPOST_SECRET_KEY),
        logger: log,
      });
    } catch (err) {
      log('error', 'rollout scheduler tick failed', {
        err: err instanceof Error ? err.message : String(err),
      });
      throw err;
    } finally {
      ctx.waitUntil(
        handle.close().catch((err: unknown) =>
          log('warn', 'closing the scheduler database failed', {
            err: err instanceof Error ? err.message : String(err),
          }),
        ),
      );
    }
  },

  async fetch(request: Request, rawEnv: Record<string, unknown>, ctx: ExecutionContext): Promise<Response> {
    const parsed = parseCloudflareEnv(rawEnv);
    if (!parsed.ok) return badEnvironment(parsed.problems);
    const env = parsed.env;

    // run_worker_first only sends /api/* here; anything else is the dashboard's business.
    if (env.ASSETS && !new URL(request.url).pathname.startsWith('/api/')) return env.ASSETS.fetch(request);

    const app = await appFor(rawEnv, env);
    const handle = await createNeonDb(env.DATABASE_URL, { relay: env.NEON_WS_RELAY });
    requestDbs.set(request, handle.db);
    const close = () =>
      handle.close().catch((err: unknown) => {
        log('warn', 'closing the request database failed', {
          err: err instanceof Error ? err.message : String(err),
        });
      });
    let res: Response;
    try {
      res = await app.fetch(request, rawEnv, ctx);
    } catch (err) {
      ctx.waitUntil(close());
      throw err;
    }
    if (!res.body) {
      ctx.waitUntil(close());
      return res;
    }
    // A streamed body (the CSV export) still reads from the database after fetch returns: close the
    // pool only once the body has been sent or the client went away.
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    ctx.waitUntil(
      res.body
        .pipeTo(writable)
        .catch(() => {})
        .finally(close),
    );
    return new Response(readable, res);
  },
};
