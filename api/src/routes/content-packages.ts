import { createRoute, z } from '@hono/zod-openapi';
import { ErrorEnvelope, errors, IdParam, jsonResponse, PageQuery, pageOf } from './schemas.ts';
import { serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import { AppError } from '../lib/errors.ts';
import {
  getContentPackage,
  listContentPackages,
  uploadContentPackage,
} from '../services/releases/content.ts';

/** Uploads stream their own body (up to `maxContentPackageBytes`), so app.ts exempts this path from the JSON body limit. */
export const CONTENT_UPLOAD_PATH = '/api/v1/content-packages';
export const DEFAULT_MAX_CONTENT_BYTES = 512 * 1024 * 1024;

/** What a release shows of its content package (routes/releases.ts). */
export const ContentPackageBrief = z.object({
  id: z.string(),
  name: z.string(),
  version: z.string(),
  sha256: z.string(),
  size: z.number(),
  entries: z.number(),
});
const ContentPackage = ContentPackageBrief.extend({
  uncompressedSize: z.number(),
  createdBy: z.string().nullable(),
  createdAt: z.string(),
}).openapi('ContentPackage');

export const contentPackageRoutes = authenticatedRouter('/content-packages', '/content-packages/*')
  .openapi(
    createRoute({
      method: 'post',
      path: '/content-packages',
      tags: ['releases'],
      summary: 'Upload a content package (.zip, streamed; stored once by its sha256)',
      description:
        'The body is the zip file itself (`Content-Type: application/zip`). It is checked while it streams: a zip, no absolute or `..` paths, no encryption, CRCs right, no zip bombs.',
      request: {
        query: z.object({ name: z.string().max(128), version: z.string().max(64) }),
        body: {
          required: true,
          content: { 'application/zip': { schema: z.string().openapi({ format: 'binary' }) } },
        },
      },
      responses: {
        201: jsonResponse(ContentPackage, 'Stored'),
        ...errors(400, 401, 403, 409, 413),
        415: {
          description: 'Not application/zip',
          content: { 'application/json': { schema: ErrorEnvelope } },
        },
      },
    }),
    async (c) => {
      const ctx = serviceCtx(c, 'fleet:write');
      const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (!['application/zip', 'application/x-zip-compressed', 'application/octet-stream'].includes(type)) {
        throw new AppError(
          'unsupported-media',
          'UNSUPPORTED_MEDIA_TYPE',
          'Send the .zip file as the body, with Content-Type: application/zip.',
        );
      }
      const maxBytes = c.var.deps.maxContentPackageBytes ?? DEFAULT_MAX_CONTENT_BYTES;
      if (Number(c.req.header('content-length')) > maxBytes)
        throw new AppError('too-large', 'BODY_TOO_LARGE', `The package is larger than ${maxBytes} bytes.`);
      const body = c.req.raw.body;
      if (!body)
        throw new AppError(
          'invalid',
          'CONTENT_INVALID',
          'The upload is empty: send the .zip file as the body.',
        );
      const q = c.req.valid('query');
      return c.json(
        await uploadContentPackage({
          ctx,
          store: c.var.deps.objectStore,
          input: { name: q.name, version: q.version, body, maxBytes },
        }),
        201,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/content-packages',
      tags: ['releases'],
      summary: 'Content packages, newest first',
      request: { query: PageQuery },
      responses: {
        200: jsonResponse(pageOf(ContentPackage), 'A page of packages'),
        ...errors(400, 401),
      },
    }),
    async (c) =>
      c.json(
        await listContentPackages({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/content-packages/{id}',
      tags: ['releases'],
      summary: 'One content package',
      request: { params: IdParam },
      responses: { 200: jsonResponse(ContentPackage, 'The package'), ...errors(400, 401, 404) },
    }),
    async (c) => c.json(await getContentPackage(serviceCtx(c, 'fleet:read'), c.req.valid('param').id), 200),
  );
