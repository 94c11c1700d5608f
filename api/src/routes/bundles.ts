import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from './app-env.ts';
import { errors, IdParam, jsonBody, jsonResponse, PageQuery } from './schemas.ts';
import { authenticate, serviceCtx } from './auth-middleware.ts';
import { ValidationError, fieldIssue } from '../lib/errors.ts';
import { requestBundles, MAX_SITES_PER_REQUEST } from '../services/bundles/request.ts';
import { bundleCounts, getBundle, listBundles, listImageArchives } from '../services/bundles/list.ts';
import { bundleLinks, downloadArchiveLink, downloadBundle } from '../services/bundles/deliver.ts';
import { retryBundle } from '../services/bundles/retry.ts';
import { ranged } from './ranged.ts';
import { listSigningKeys, rotateSigningKey } from '../services/bundles/signing-keys.ts';

const BuildState = z.enum(['queued', 'building', 'ready', 'failed']);
const Problem = z.object({ code: z.string(), message: z.string() });

const Bundle = z
  .object({
    id: z.string(),
    site: z.object({
      id: z.string(),
      code: z.string(),
      name: z.string(),
      bandwidthKbps: z.number().nullable(),
    }),
    release: z.object({ id: z.string(), version: z.string(), state: z.string() }),
    fromRelease: z.object({ id: z.string(), version: z.string() }).nullable(),
    state: BuildState,
    delta: z.boolean(),
    size: z.number().nullable().openapi({ description: 'Bytes of the one-file download' }),
    fullSize: z.number().nullable().openapi({ description: 'Bytes a full (non-delta) download would be' }),
    sitePartSize: z.number().nullable(),
    estimatedSeconds: z
      .number()
      .nullable()
      .openapi({ description: "Download time at the site's bandwidth estimate" }),
    keyFingerprint: z.string().nullable(),
    fileName: z.string(),
    error: Problem.nullable(),
    downloads: z
      .number()
      .openapi({ description: 'Downloads that reached the last byte, and direct links handed out' }),
    createdAt: z.string(),
    readyAt: z.string().nullable(),
    expiresAt: z.string().nullable(),
  })
  .openapi('Bundle');

const RequestInput = z
  .object({
    releaseId: z.uuid(),
    siteIds: z.array(z.uuid()).max(MAX_SITES_PER_REQUEST).optional(),
    siteCodes: z.array(z.string().trim().min(1).max(64)).max(MAX_SITES_PER_REQUEST).optional(),
    filter: z
      .object({
        region: z.string().max(200).optional(),
        district: z.string().max(200).optional(),
        tag: z.string().max(100).optional(),
      })
      .strict()
      .optional(),
    mode: z.enum(['auto', 'full', 'delta']).default('auto'),
    expiresInDays: z.number().int().min(1).max(730).default(90),
  })
  .strict()
  .openapi('RequestBundlesInput');

const RequestResult = z
  .object({
    release: z.object({ id: z.string(), version: z.string() }),
    created: z.number(),
    kept: z.number(),
    bundles: z.array(
      z.object({ id: z.string(), siteId: z.string(), siteCode: z.string(), delta: z.boolean() }),
    ),
  })
  .openapi('RequestBundlesResult');

const ListQuery = PageQuery.extend({
  releaseId: z.uuid().optional(),
  siteId: z.uuid().optional(),
  state: BuildState.optional(),
});

const ImageArchive = z
  .object({
    id: z.string(),
    releaseId: z.string(),
    fromRelease: z.object({ id: z.string(), version: z.string().nullable() }).nullable(),
    state: BuildState,
    sha256: z.string().nullable(),
    size: z.number().nullable(),
    omittedLayers: z.number(),
    error: Problem.nullable(),
    createdAt: z.string(),
    readyAt: z.string().nullable(),
  })
  .openapi('ImageArchive');

const Links = z
  .object({
    bundleId: z.string(),
    root: z.string(),
    expiresAt: z.string(),
    manifest: z.unknown(),
    files: z.array(
      z.object({
        path: z.string(),
        extract: z.boolean(),
        size: z.number(),
        sha256: z.string(),
        url: z.string(),
      }),
    ),
  })
  .openapi('BundleLinks');

const SigningKey = z
  .object({
    id: z.string(),
    algorithm: z.string(),
    fingerprint: z.string(),
    publicKeyPem: z.string(),
    active: z.boolean(),
    createdAt: z.string(),
    retiredAt: z.string().nullable(),
  })
  .openapi('SigningKey');

const base = new OpenAPIHono<AppEnv>();
for (const p of ['/bundles', '/bundles/*', '/signing-keys', '/signing-keys/*', '/releases/:id/bundle-status'])
  base.use(p, authenticate);

const downloadId = (id: string) => {
  if (!z.uuid().safeParse(id).success)
    throw new ValidationError('The bundle id is not valid.', fieldIssue('id', 'Expected a UUID.'));
  return id;
};

export const bundleRoutes = base
  .openapi(
    createRoute({
      method: 'post',
      path: '/bundles',
      tags: ['bundles'],
      summary: 'Ask for bundles of a release for a selection of sites (built by the workers)',
      request: { body: jsonBody(RequestInput) },
      responses: {
        202: jsonResponse(RequestResult, 'Queued (or kept: a site with a good bundle keeps it)'),
        ...errors(400, 401, 403, 404, 409, 422),
      },
    }),
    async (c) =>
      c.json(await requestBundles({ ctx: serviceCtx(c, 'fleet:write'), input: c.req.valid('json') }), 202),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/bundles',
      tags: ['bundles'],
      summary: 'Bundles, newest first, by release, site or state',
      request: { query: ListQuery },
      responses: {
        200: jsonResponse(
          z.object({ items: z.array(Bundle), nextCursor: z.string().nullable() }),
          'A page of bundles',
        ),
        ...errors(400, 401, 403),
      },
    }),
    async (c) =>
      c.json(await listBundles({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/bundles/{id}',
      tags: ['bundles'],
      summary: 'One bundle',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Bundle, 'The bundle'), ...errors(400, 401, 403, 404) },
    }),
    async (c) =>
      c.json(await getBundle({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('param') }), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/bundles/{id}/retry',
      tags: ['bundles'],
      summary: 'Build a failed bundle again',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Bundle, 'Queued again'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) =>
      c.json(await retryBundle({ ctx: serviceCtx(c, 'fleet:write'), input: c.req.valid('param') }), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/bundles/{id}/links',
      tags: ['bundles'],
      summary:
        'Direct links to each part of a bundle, for download managers (presigned object-store links; a signed API link for images.tgz)',
      request: {
        params: IdParam,
        query: z.object({
          expiresInSeconds: z.coerce
            .number()
            .int()
            .min(60)
            .max(7 * 86400)
            .optional(),
        }),
      },
      responses: { 200: jsonResponse(Links, 'Links'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) =>
      c.json(
        (await bundleLinks({
          ctx: serviceCtx(c, 'fleet:read'),
          store: c.var.deps.objectStore,
          box: c.var.deps.secretBox,
          baseUrl: c.var.deps.publicUrl ?? new URL(c.req.url).origin,
          input: { id: c.req.valid('param').id, ...c.req.valid('query') },
        })) as z.infer<typeof Links>,
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/releases/{id}/bundle-status',
      tags: ['bundles'],
      summary: "A release's images archives and its bundles counted by state",
      request: { params: IdParam },
      responses: {
        200: jsonResponse(
          z.object({ archives: z.array(ImageArchive), counts: z.record(BuildState, z.number()) }),
          'Status',
        ),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const ctx = serviceCtx(c, 'fleet:read');
      const input = { releaseId: c.req.valid('param').id };
      return c.json(
        { archives: await listImageArchives({ ctx, input }), counts: await bundleCounts({ ctx, input }) },
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/signing-keys',
      tags: ['bundles'],
      summary: "The organisation's bundle signing keys (public halves), the active one first",
      responses: { 200: jsonResponse(z.object({ items: z.array(SigningKey) }), 'Keys'), ...errors(401, 403) },
    }),
    async (c) => c.json({ items: await listSigningKeys({ ctx: serviceCtx(c, 'fleet:read') }) }, 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/signing-keys/rotate',
      tags: ['bundles'],
      summary: 'Make a new signing key; the old one is retired but stays listed so its bundles still verify',
      responses: { 200: jsonResponse(SigningKey, 'The new key'), ...errors(401, 403) },
    }),
    async (c) =>
      c.json(await rotateSigningKey({ ctx: serviceCtx(c, 'keys:manage'), box: c.var.deps.secretBox }), 200),
  );

// The download is bytes, not JSON: a plain route (GET and HEAD, ranges), documented in docs/bundles.md.
bundleRoutes.on(['GET', 'HEAD'], '/bundles/:id/download', async (c) =>
  ranged(
    c,
    await downloadBundle({
      ctx: serviceCtx(c, 'fleet:read'),
      store: c.var.deps.objectStore,
      input: { id: downloadId(c.req.param('id')) },
    }),
  ),
);

// A direct link to an images archive (handed out by /bundles/:id/links): signed instead of a session.
bundleRoutes.on(['GET', 'HEAD'], '/archive-links/:id/:file', async (c) =>
  ranged(
    c,
    await downloadArchiveLink({
      db: c.var.db,
      store: c.var.deps.objectStore,
      box: c.var.deps.secretBox,
      input: {
        id: c.req.param('id'),
        fileName: c.req.param('file'),
        expires: c.req.query('expires'),
        signature: c.req.query('signature'),
      },
    }),
  ),
);
