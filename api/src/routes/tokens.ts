import { createRoute, z } from '@hono/zod-openapi';
import { errors, IdParam, jsonBody, jsonResponse, PageQuery, Role, pageOf } from './schemas.ts';
import { serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import { createToken, listTokens, revokeToken } from '../services/tokens/tokens.ts';

const ApiToken = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string(),
    role: Role,
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi('ApiToken');

const CreateTokenInput = z
  .object({
    name: z.string().trim().min(1).max(100),
    role: Role,
    expiresInDays: z.number().int().min(1).max(3650).optional(),
  })
  .strict()
  .openapi('CreateTokenInput');

export const tokenRoutes = authenticatedRouter('/tokens', '/tokens/*')
  .openapi(
    createRoute({
      method: 'get',
      path: '/tokens',
      tags: ['tokens'],
      summary: 'API tokens of the organisation (never their secrets)',
      request: { query: PageQuery.extend({ includeRevoked: z.enum(['true', 'false']).optional() }) },
      responses: {
        200: jsonResponse(pageOf(ApiToken), 'A page of tokens'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(
        await listTokens({
          ctx: serviceCtx(c, 'tokens:manage'),
          input: { ...q, includeRevoked: q.includeRevoked === 'true' },
        }),
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/tokens',
      tags: ['tokens'],
      summary: 'Create an API token; the secret is shown once',
      request: { body: jsonBody(CreateTokenInput) },
      responses: {
        201: jsonResponse(ApiToken.extend({ token: z.string() }), 'Created'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) =>
      c.json(await createToken({ ctx: serviceCtx(c, 'tokens:manage'), input: c.req.valid('json') }), 201),
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/tokens/{id}',
      tags: ['tokens'],
      summary: 'Revoke an API token',
      request: { params: IdParam },
      responses: { 200: jsonResponse(ApiToken, 'Revoked'), ...errors(401, 403, 404) },
    }),
    async (c) =>
      c.json(
        await revokeToken({
          ctx: serviceCtx(c, 'tokens:manage'),
          input: { tokenId: c.req.valid('param').id },
        }),
        200,
      ),
  );
