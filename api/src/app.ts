import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { HTTPException } from 'hono/http-exception';
import { bodyLimit } from 'hono/body-limit';
import type { MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { Scalar } from '@scalar/hono-api-reference';
import { sql } from 'drizzle-orm';
import type { AppDeps, AppEnv } from './routes/app-env.ts';
import { isStoreUnavailable } from '@outpost/bundler';
import { AppError, RangeNotSatisfiableError, TooManyRequestsError, type ErrorKind } from './lib/errors.ts';
import { refuseControlCharacters } from './lib/control-chars.ts';
import { validationDetail } from './routes/validation-detail.ts';
import { authRoutes } from './routes/auth.ts';
import { userRoutes } from './routes/users.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { auditRoutes } from './routes/audit.ts';
import { jsonResponse } from './routes/schemas.ts';
import { siteRoutes } from './routes/sites.ts';
import { fleetRoutes } from './routes/fleet.ts';
import { SITE_IMPORT_PATH, siteCsvRoutes } from './routes/sites-csv.ts';
import { checkinRoutes } from './routes/checkin.ts';
import { receiptRoutes } from './routes/receipts.ts';
import { releaseRoutes } from './routes/releases.ts';
import { registryRoutes } from './routes/registries.ts';
import { CONTENT_UPLOAD_PATH, contentPackageRoutes } from './routes/content-packages.ts';
import { bundleRoutes } from './routes/bundles.ts';
import { rolloutRoutes } from './routes/rollouts.ts';
import { inviteRoutes } from './routes/invites.ts';
import { problemRoutes } from './routes/problems.ts';
import { coordinatorBundleRoutes } from './routes/coordinator.ts';
import { checkinBatchers } from './services/sites/checkin.ts';

export type { AppDeps } from './routes/app-env.ts';
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** The HTTP status of each kind of domain error: the one place services' errors meet HTTP. */
export const STATUS_OF = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  gone: 410,
  'too-large': 413,
  'unsupported-media': 415,
  'range-not-satisfiable': 416,
  unprocessable: 422,
  'rate-limited': 429,
  unavailable: 503,
} as const satisfies Record<ErrorKind, number>;

function envelope(code: string, message: string, requestId: string, details?: unknown) {
  return { error: { code, message, requestId, ...(details === undefined ? {} : { details }) } };
}

/**
 * What of an unexpected error may be logged: a failed query's message carries its SQL and every
 * parameter (a new user's password hash, a sealed secret), so only the database's own reason and
 * code are kept, and the stack without its first line (which repeats the message).
 */
export function loggableError(err: unknown): { err: string; code?: string; stack?: string } {
  if (!(err instanceof Error)) return { err: typeof err };
  const frames = err.stack
    ?.split('\n')
    .filter((l) => /^\s+at /.test(l))
    .join('\n');
  const query = err as Error & { query?: unknown; params?: unknown; cause?: unknown };
  if ('query' in query || 'params' in query || /^Failed query:/.test(err.message)) {
    const cause = query.cause as { message?: string; code?: string } | undefined;
    return {
      err: `${err.name}: ${cause?.message ?? 'the database refused a statement'}`,
      ...(cause?.code ? { code: cause.code } : {}),
      ...(frames ? { stack: frames } : {}),
    };
  }
  return { err: `${err.name}: ${err.message}`, ...(frames ? { stack: frames } : {}) };
}

/** Builds the whole HTTP API. Imports no runtime: node.ts and cloudflare.ts supply the dependencies. */
export function createApp(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({
    // Validation failures answer with the one error envelope, listing every problem.
    defaultHook: (result, c) => {
      if (result.success) return;
      const details = result.error.issues.map(validationDetail);
      const where = result.target === 'json' ? 'body' : result.target;
      return c.json(
        envelope('VALIDATION_FAILED', `The request ${where} is not valid.`, c.var.requestId, details),
        400,
      );
    },
  });

  app.use('*', async (c, next) => {
    const started = performance.now();
    const incoming = c.req.header('x-request-id');
    const requestId = incoming && /^[\w.-]{1,64}$/.test(incoming) ? incoming : crypto.randomUUID();
    c.set('requestId', requestId);
    c.set('deps', deps);
    c.set('db', deps.database(c));
    // Set before the handler so that c.json() writes it along: set afterwards, it turns the finished
    // response into a streamed one on @hono/node-server, a costly detour. Handlers that return
    // a Response of their own get it afterwards.
    c.header('X-Request-Id', requestId);
    await next();
    if (!c.res.headers.has('X-Request-Id')) c.header('X-Request-Id', requestId);
    deps.logger('info', 'request', {
      requestId,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round(performance.now() - started),
    });
  });
  app.use('/api/*', secureHeaders({ crossOriginResourcePolicy: 'same-origin' }));
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const tooLarge = () => {
    throw new AppError('too-large', 'BODY_TOO_LARGE', `The body is larger than ${maxBodyBytes} bytes.`);
  };
  const limitBody = bodyLimit({ maxSize: maxBodyBytes, onError: tooLarge });
  // A declared Content-Length is exact (the HTTP parser reads no more than it), so it decides alone,
  // as bodyLimit would, but without opening the body as a stream: that would cost
  // @hono/node-server its direct read of the body. Chunked bodies go through bodyLimit.
  const withinLimit: MiddlewareHandler<AppEnv> = (c, next) => {
    const declared = c.req.header('content-length');
    if (declared === undefined || c.req.header('transfer-encoding') !== undefined) return limitBody(c, next);
    return Number(declared) > maxBodyBytes ? tooLarge() : next();
  };
  // The CSV import streams its body under its own, larger limit; buffering it here would defeat that.
  // Streamed uploads enforce their own, larger limits while they read.
  const streamed = (c: { req: { path: string; method: string } }) =>
    c.req.path === SITE_IMPORT_PATH || (c.req.path === CONTENT_UPLOAD_PATH && c.req.method === 'POST');
  app.use('/api/v1/*', (c, next) => (streamed(c) ? next() : withinLimit(c, next)));
  // NUL and other control characters in any query, path or JSON body: 400 naming the field, for every route.
  app.use('/api/*', refuseControlCharacters);

  app.onError((err, c) => {
    const requestId = c.var.requestId ?? 'unknown';
    if (err instanceof AppError) {
      if (err instanceof TooManyRequestsError) c.header('Retry-After', String(err.retryAfterSeconds));
      if (err instanceof RangeNotSatisfiableError && err.size !== null)
        c.header('Content-Range', `bytes */${err.size}`);
      return c.json(envelope(err.code, err.message, requestId, err.details), STATUS_OF[err.kind]);
    }
    if (err instanceof HTTPException && err.status < 500) {
      if (err.status === 415) {
        return c.json(
          envelope('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.', requestId),
          415,
        );
      }
      const malformed = /json/i.test(err.message);
      return c.json(
        envelope(
          malformed ? 'MALFORMED_JSON' : 'BAD_REQUEST',
          malformed ? 'The body is not valid JSON.' : err.message || 'Bad request.',
          requestId,
        ),
        err.status,
      );
    }
    if (isStoreUnavailable(err)) {
      deps.logger('warn', 'object store unavailable', {
        requestId,
        err: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      });
      c.header('Retry-After', '60');
      return c.json(
        envelope(
          'STORAGE_UNAVAILABLE',
          'The file store did not answer in time. Try again in a minute.',
          requestId,
        ),
        503,
      );
    }
    // Internals go to the log, never to the caller.
    deps.logger('error', 'unhandled error', { requestId, ...loggableError(err) });
    return c.json(
      envelope(
        'INTERNAL',
        'Something went wrong on our side. Quote the request id if you report it.',
        requestId,
      ),
      500,
    );
  });

  const routes = app
    .openapi(
      createRoute({
        method: 'get',
        path: '/api/health',
        tags: ['health'],
        summary: 'Database and object store reachability',
        responses: {
          200: jsonResponse(
            z.object({
              status: z.enum(['ok', 'degraded']),
              database: z.string(),
              objectStore: z.string(),
              version: z.string(),
            }),
            'All parts reachable',
          ),
          503: jsonResponse(
            z.object({
              status: z.enum(['ok', 'degraded']),
              database: z.string(),
              objectStore: z.string(),
              version: z.string(),
            }),
            'A part is down',
          ),
        },
      }),
      async (c) => {
        const [database, objectStore] = await Promise.all([
          c.var.db.execute(sql`select 1`).then(
            () => 'ok',
            () => 'unreachable',
          ),
          deps.objectStore.ping().then(
            () => 'ok',
            () => 'unreachable',
          ),
        ]);
        const ok = database === 'ok' && objectStore === 'ok';
        const body = {
          status: ok ? ('ok' as const) : ('degraded' as const),
          database,
          objectStore,
          version: deps.version ?? 'dev',
        };
        return ok ? c.json(body, 200) : c.json(body, 503);
      },
    )
    .route('/api/v1', authRoutes)
    .route('/api/v1', userRoutes)
    .route('/api/v1', tokenRoutes)
    .route('/api/v1', auditRoutes)
    .route('/api/v1', siteCsvRoutes)
    .route('/api/v1', siteRoutes)
    .route('/api/v1', fleetRoutes)
    .route('/api/v1', checkinRoutes({ checkins: checkinBatchers(deps.checkinsPerMinute) }))
    .route('/api/v1', receiptRoutes())
    .route('/api/v1', releaseRoutes)
    .route('/api/v1', registryRoutes)
    .route('/api/v1', contentPackageRoutes)
    .route('/api/v1', bundleRoutes)
    .route('/api/v1', rolloutRoutes)
    .route('/api/v1', inviteRoutes)
    .route('/api/v1', problemRoutes)
    .route('/api/v1', coordinatorBundleRoutes);

  app.openAPIRegistry.registerComponent('securitySchemes', 'session', {
    type: 'apiKey',
    in: 'cookie',
    name: 'outpost_session',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiToken', { type: 'http', scheme: 'bearer' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'deviceToken', {
    type: 'http',
    scheme: 'bearer',
    description: "A site's device token (opd_…)",
  });
  app.doc31('/api/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Outpost API',
      version: deps.version ?? 'dev',
      description: 'Fleet management for offline-first on-premises sites.',
    },
    security: [{ session: [] }, { apiToken: [] }],
  });
  app.get('/api/docs', Scalar({ url: '/api/openapi.json', pageTitle: 'Outpost API reference' }));
  app.all('/api/*', (c) =>
    c.json(envelope('NOT_FOUND', `No endpoint ${c.req.method} ${c.req.path}.`, c.var.requestId), 404),
  );
  return routes;
}

export type AppType = ReturnType<typeof createApp>;
