import { createRoute, z } from '@hono/zod-openapi';
import { errors, IdParam, jsonBody, jsonResponse, listOf, okResponse } from './schemas.ts';
import { serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import {
  deleteRegistryCredential,
  listRegistryCredentials,
  saveRegistryCredential,
} from '../services/registries/credentials.ts';

const RegistryCredential = z
  .object({
    id: z.string(),
    registry: z.string(),
    username: z.string().nullable(),
    kind: z.enum(['basic', 'token']),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('RegistryCredential');

const SaveInput = z
  .union([
    z
      .object({
        registry: z.string().trim().min(1).max(253),
        username: z.string().min(1).max(256),
        password: z.string().min(1).max(4096),
      })
      .strict(),
    z.object({ registry: z.string().trim().min(1).max(253), token: z.string().min(1).max(8192) }).strict(),
  ])
  .openapi('SaveRegistryCredentialInput');

export const registryRoutes = authenticatedRouter('/registry-credentials', '/registry-credentials/*')
  .openapi(
    createRoute({
      method: 'get',
      path: '/registry-credentials',
      tags: ['releases'],
      summary: 'Registries the organisation has credentials for (never the secrets)',
      responses: {
        200: jsonResponse(listOf(RegistryCredential), 'Credentials'),
        ...errors(401, 403),
      },
    }),
    async (c) =>
      c.json({ items: await listRegistryCredentials({ ctx: serviceCtx(c, 'users:manage') }) }, 200),
  )
  .openapi(
    createRoute({
      method: 'put',
      path: '/registry-credentials',
      tags: ['releases'],
      summary: 'Set the credentials for a registry (replaces earlier ones); sealed at rest',
      request: { body: jsonBody(SaveInput) },
      responses: { 200: jsonResponse(RegistryCredential, 'Saved'), ...errors(400, 401, 403) },
    }),
    async (c) =>
      c.json(
        await saveRegistryCredential({
          ctx: serviceCtx(c, 'users:manage'),
          box: c.var.deps.secretBox,
          input: c.req.valid('json'),
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/registry-credentials/{id}',
      tags: ['releases'],
      summary: 'Forget the credentials for a registry',
      request: { params: IdParam },
      responses: {
        200: okResponse('Deleted'),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      await deleteRegistryCredential({
        ctx: serviceCtx(c, 'users:manage'),
        input: { id: c.req.valid('param').id },
      });
      return c.json({ ok: true as const }, 200);
    },
  );
