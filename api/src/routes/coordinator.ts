import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from './app-env.ts';
import { errors, IdParam, jsonResponse } from './schemas.ts';
import { authenticate, serviceCtx } from './auth-middleware.ts';
import {
  bundleChecksum,
  bundleReadme,
  bundleSiteLink,
  downloadBundleLink,
} from '../services/bundles/coordinator.ts';
import { ranged } from './ranged.ts';

// What a coordinator needs to get a bundle onto a site's server: a link for curl, the checksum to
// compare, and the README the bundle carries. routes/bundles.ts authenticates /bundles/* already
// when mounted before this; once is enough.
const authOnce = createMiddleware<AppEnv>((c, next) => (c.get('principal') ? next() : authenticate(c, next)));
const base = new OpenAPIHono<AppEnv>();
base.use('/bundles/:id/site-link', authOnce);
base.use('/bundles/:id/checksum', authOnce);
base.use('/bundles/:id/readme', authOnce);

export const coordinatorBundleRoutes = base
  .openapi(
    createRoute({
      method: 'get',
      path: '/bundles/{id}/site-link',
      tags: ['bundles'],
      summary:
        "A short-lived link to the one-file download that needs no session (for curl on the site's server)",
      request: {
        params: IdParam,
        query: z.object({
          expiresInSeconds: z.coerce
            .number()
            .int()
            .min(300)
            .max(7 * 86400)
            .optional(),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({ url: z.string(), fileName: z.string(), size: z.number(), expiresAt: z.string() }),
          'The link',
        ),
        ...errors(400, 401, 403, 404, 409),
      },
    }),
    async (c) =>
      c.json(
        await bundleSiteLink({
          ctx: serviceCtx(c, 'fleet:read'),
          box: c.var.deps.secretBox,
          baseUrl: c.var.deps.publicUrl ?? new URL(c.req.url).origin,
          input: { id: c.req.valid('param').id, ...c.req.valid('query') },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/bundles/{id}/checksum',
      tags: ['bundles'],
      summary: 'The sha256 of the one-file download (worked out once, then kept)',
      request: { params: IdParam },
      responses: {
        200: jsonResponse(z.object({ sha256: z.string(), size: z.number() }), 'The checksum'),
        ...errors(400, 401, 404, 409),
      },
    }),
    async (c) =>
      c.json(
        await bundleChecksum({
          ctx: serviceCtx(c, 'fleet:read'),
          store: c.var.deps.objectStore,
          input: c.req.valid('param'),
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/bundles/{id}/readme',
      tags: ['bundles'],
      summary: "The bundle's README.txt: the install instructions the site gets",
      request: { params: IdParam },
      responses: {
        200: jsonResponse(z.object({ text: z.string() }), 'The README'),
        ...errors(400, 401, 404, 409),
      },
    }),
    async (c) =>
      c.json(
        await bundleReadme({
          ctx: serviceCtx(c, 'fleet:read'),
          store: c.var.deps.objectStore,
          input: c.req.valid('param'),
        }),
        200,
      ),
  );

// The bytes behind a site link: a plain route (GET and HEAD, ranges), no session.
coordinatorBundleRoutes.on(['GET', 'HEAD'], '/bundle-links/:id/:file', async (c) =>
  ranged(
    c,
    await downloadBundleLink({
      db: c.var.db,
      store: c.var.deps.objectStore,
      box: c.var.deps.secretBox,
      input: {
        id: c.req.param('id'),
        user: c.req.query('user'),
        expires: c.req.query('expires'),
        signature: c.req.query('signature'),
      },
    }),
  ),
);
