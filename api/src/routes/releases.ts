import { createRoute, z } from '@hono/zod-openapi';
import { errors, IdParam, jsonBody, jsonResponse, listOf, okResponse } from './schemas.ts';
import { serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import { ContentPackageBrief } from './content-packages.ts';
import { listReleases, releaseDiff } from '../services/releases/list.ts';
import { loadRelease, toReleaseView } from '../services/releases/view.ts';
import {
  addReleaseImage,
  createRelease,
  deleteDraft,
  deprecateRelease,
  publishRelease,
  removeReleaseImage,
  revokeRelease,
  updateRelease,
} from '../services/releases/write.ts';
import { composeCheck, composePreview } from '../services/releases/compose-release.ts';

const STATES = ['draft', 'published', 'deprecated', 'revoked'] as const;
const Layer = z.object({ digest: z.string(), size: z.number(), mediaType: z.string() });
const Image = z
  .object({
    id: z.string(),
    name: z.string(),
    reference: z.string(),
    registry: z.string(),
    repository: z.string(),
    digest: z.string(),
    indexDigest: z.string().nullable(),
    mediaType: z.string(),
    platform: z.string(),
    pinned: z.string(),
    config: Layer,
    layers: z.array(Layer),
    totalSize: z.number(),
  })
  .openapi('ReleaseImage');
const Summary = z.object({
  id: z.string(),
  version: z.string(),
  channel: z.string(),
  state: z.enum(STATES),
  platform: z.string(),
  edgeScriptsVersion: z.string().nullable(),
  contentPackageId: z.string().nullable(),
  createdAt: z.string(),
  publishedAt: z.string().nullable(),
  deprecatedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  revokedReason: z.string().nullable(),
  imageCount: z.number(),
  totalSize: z.number(),
});
const Release = Summary.extend({
  notes: z.string(),
  composeTemplate: z.string().nullable(),
  images: z.array(Image),
  contentPackage: ContentPackageBrief.nullable(),
}).openapi('Release');

const Platform = z
  .string()
  .regex(
    /^[a-z0-9]+\/[a-z0-9]+(\/[a-z0-9]+)?$/,
    'Write the platform as os/architecture, e.g. linux/amd64 or linux/arm64/v8.',
  );
const Fields = {
  channel: z
    .string()
    .trim()
    .min(1)
    .max(40)
    .regex(/^[a-z0-9-]+$/, 'Use lower-case letters, digits and dashes (e.g. stable, pilot).'),
  notes: z.string().max(100_000),
  platform: Platform,
  edgeScriptsVersion: z.string().trim().min(1).max(64),
  composeTemplate: z.string().max(200_000),
  contentPackageId: z.uuid().nullable(),
};
const CreateReleaseInput = z
  .object({
    version: z.string().trim().min(1).max(64),
    channel: Fields.channel.optional(),
    notes: Fields.notes.optional(),
    platform: Fields.platform.optional(),
    edgeScriptsVersion: Fields.edgeScriptsVersion.optional(),
    composeTemplate: Fields.composeTemplate.optional(),
    contentPackageId: Fields.contentPackageId.optional(),
  })
  .strict()
  .openapi('CreateReleaseInput');
const UpdateReleaseInput = CreateReleaseInput.omit({ version: true })
  .partial()
  .strict()
  .openapi('UpdateReleaseInput');
const AddImageInput = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(63)
      .regex(
        /^[a-z0-9][a-z0-9_-]*$/,
        'Use lower-case letters, digits, - and _ (the template refers to it as {{ image.<name> }}).',
      ),
    reference: z
      .string()
      .trim()
      .min(1)
      .max(512)
      .openapi({ example: 'openmrs/openmrs-reference-application-3-backend:3.0.0' }),
  })
  .strict()
  .openapi('AddImageInput');
const ImageParams = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }),
  imageId: z.uuid().openapi({ param: { name: 'imageId', in: 'path' } }),
});
const Diff = z
  .object({
    from: z.object({ id: z.string(), version: z.string() }).nullable(),
    added: z.array(z.object({ name: z.string(), reference: z.string(), digest: z.string() })),
    changed: z.array(
      z.object({
        name: z.string(),
        from: z.object({ reference: z.string(), digest: z.string() }),
        to: z.object({ reference: z.string(), digest: z.string() }),
      }),
    ),
    removed: z.array(z.object({ name: z.string(), reference: z.string(), digest: z.string() })),
    deltaSize: z
      .number()
      .openapi({ description: 'Bytes of layers the base release does not have: what a delta bundle costs' }),
    fullSize: z.number(),
    newLayers: z.number(),
  })
  .openapi('ReleaseDiff');

export const releaseRoutes = authenticatedRouter('/releases', '/releases/*')
  .openapi(
    createRoute({
      method: 'get',
      path: '/releases',
      tags: ['releases'],
      summary: 'Releases, newest version first, with how many newer live versions each is behind',
      request: {
        query: z.object({
          state: z.enum(STATES).optional(),
          channel: z.string().max(40).optional(),
          version: z.string().trim().min(1).max(64).optional().openapi({
            description: 'Only this version (a leading v is ignored: v2.4.1 finds 2.4.1)',
            example: '2.4.1',
          }),
        }),
      },
      responses: {
        200: jsonResponse(listOf(Summary.extend({ behindLatest: z.number() })), 'Releases'),
        ...errors(400, 401),
      },
    }),
    async (c) =>
      c.json(
        { items: await listReleases({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }) },
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/releases',
      tags: ['releases'],
      summary: 'Create a draft release',
      request: { body: jsonBody(CreateReleaseInput) },
      responses: { 201: jsonResponse(Release, 'Created'), ...errors(400, 401, 403, 409) },
    }),
    async (c) =>
      c.json(await createRelease({ ctx: serviceCtx(c, 'fleet:write'), input: c.req.valid('json') }), 201),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/releases/{id}',
      tags: ['releases'],
      summary: 'A release with its images, sizes and content package',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Release, 'The release'), ...errors(400, 401, 404) },
    }),
    async (c) => {
      const ctx = serviceCtx(c, 'fleet:read');
      return c.json(toReleaseView(await loadRelease(ctx, c.req.valid('param').id)), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/releases/{id}',
      tags: ['releases'],
      summary: 'Edit a draft (notes, channel, compose template, content package…)',
      request: { params: IdParam, body: jsonBody(UpdateReleaseInput) },
      responses: { 200: jsonResponse(Release, 'Updated'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) =>
      c.json(
        await updateRelease({
          ctx: serviceCtx(c, 'fleet:write'),
          input: { releaseId: c.req.valid('param').id, patch: c.req.valid('json') },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/releases/{id}',
      tags: ['releases'],
      summary: 'Delete a draft',
      request: { params: IdParam },
      responses: {
        200: okResponse('Deleted'),
        ...errors(400, 401, 403, 404, 409),
      },
    }),
    async (c) => {
      await deleteDraft({ ctx: serviceCtx(c, 'fleet:write'), input: { releaseId: c.req.valid('param').id } });
      return c.json({ ok: true as const }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/releases/{id}/images',
      tags: ['releases'],
      summary: 'Add an image by reference; resolved now to a digest in its registry',
      request: { params: IdParam, body: jsonBody(AddImageInput) },
      responses: {
        201: jsonResponse(Release, 'Added'),
        ...errors(400, 401, 403, 404, 409),
        422: {
          description: 'The registry does not have it, refused the credentials, or cannot be reached',
          content: { 'application/json': { schema: z.any() } },
        },
      },
    }),
    async (c) =>
      c.json(
        await addReleaseImage({
          ctx: serviceCtx(c, 'fleet:write'),
          box: c.var.deps.secretBox,
          resolver: c.var.deps.imageResolver,
          input: { releaseId: c.req.valid('param').id, ...c.req.valid('json') },
        }),
        201,
      ),
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/releases/{id}/images/{imageId}',
      tags: ['releases'],
      summary: 'Remove an image from a draft',
      request: { params: ImageParams },
      responses: { 200: jsonResponse(Release, 'Removed'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(
        await removeReleaseImage({
          ctx: serviceCtx(c, 'fleet:write'),
          input: { releaseId: p.id, imageId: p.imageId },
        }),
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/releases/{id}/compose',
      tags: ['releases'],
      summary: 'The compose file rendered for a site (or a sample site), with validation problems',
      request: { params: IdParam, query: z.object({ siteId: z.uuid().optional() }) },
      responses: {
        200: jsonResponse(
          z
            .object({
              ok: z.boolean(),
              rendered: z.string().nullable(),
              site: z.object({ id: z.string().nullable(), code: z.string() }),
              errors: z.array(
                z.object({
                  line: z.number(),
                  column: z.number().optional(),
                  path: z.string().optional(),
                  message: z.string(),
                }),
              ),
              warnings: z.array(z.object({ line: z.number().optional(), message: z.string() }).loose()),
            })
            .openapi('ComposePreview'),
          'Preview',
        ),
        ...errors(400, 401, 404),
      },
    }),
    async (c) => {
      const ctx = serviceCtx(c, 'fleet:read');
      return c.json(
        await composePreview({
          ctx,
          input: { releaseId: c.req.valid('param').id, siteId: c.req.valid('query').siteId },
        }),
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/releases/{id}/diff',
      tags: ['releases'],
      summary: 'What changed since the previous release (or ?from=)',
      request: { params: IdParam, query: z.object({ from: z.uuid().optional() }) },
      responses: { 200: jsonResponse(Diff, 'Diff'), ...errors(400, 401, 404) },
    }),
    async (c) =>
      c.json(
        await releaseDiff({
          ctx: serviceCtx(c, 'fleet:read'),
          input: { releaseId: c.req.valid('param').id, fromReleaseId: c.req.valid('query').from },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/releases/{id}/publish',
      tags: ['releases'],
      summary: 'Publish a draft: immutable from now on',
      request: { params: IdParam },
      responses: {
        200: jsonResponse(Release, 'Published'),
        ...errors(400, 401, 403, 404, 409),
        422: {
          description: 'Not publishable yet; details list what is missing or wrong (with template lines)',
          content: { 'application/json': { schema: z.any() } },
        },
      },
    }),
    async (c) =>
      c.json(
        await publishRelease({
          ctx: serviceCtx(c, 'fleet:write'),
          input: { releaseId: c.req.valid('param').id },
          check: composeCheck,
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/releases/{id}/deprecate',
      tags: ['releases'],
      summary: 'Mark a published release as deprecated (still installable)',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Release, 'Deprecated'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) =>
      c.json(
        await deprecateRelease({
          ctx: serviceCtx(c, 'fleet:write'),
          input: { releaseId: c.req.valid('param').id },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/releases/{id}/revoke',
      tags: ['releases'],
      summary: 'Revoke: never bundled or rolled out again; sites on it need action',
      request: {
        params: IdParam,
        body: jsonBody(
          z
            .object({ reason: z.string().trim().min(3).max(2000) })
            .strict()
            .openapi('RevokeInput'),
        ),
      },
      responses: { 200: jsonResponse(Release, 'Revoked'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) =>
      c.json(
        await revokeRelease({
          ctx: serviceCtx(c, 'fleet:write'),
          store: c.var.deps.objectStore,
          input: { releaseId: c.req.valid('param').id, reason: c.req.valid('json').reason },
        }),
        200,
      ),
  );
