import { createRoute, z } from '@hono/zod-openapi';
import {
  Email,
  errors,
  IdParam,
  jsonBody,
  jsonResponse,
  PageQuery,
  Password,
  Role,
  okResponse,
  pageOf,
} from './schemas.ts';
import { serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import { createUser } from '../services/users/create.ts';
import { listUsers } from '../services/users/list.ts';
import { removeUser, updateUserRole } from '../services/users/update.ts';

const User = z
  .object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    role: Role,
    createdAt: z.string(),
    disabled: z.boolean(),
  })
  .openapi('User');

const CreateUserInput = z
  .object({
    email: Email,
    name: z.string().max(200).optional(),
    role: Role,
    password: Password.optional().openapi({
      description: 'Omit to have a password generated and returned once',
    }),
  })
  .strict()
  .openapi('CreateUserInput');

const UpdateUserInput = z.object({ role: Role }).strict().openapi('UpdateUserInput');

export const userRoutes = authenticatedRouter('/users', '/users/*')
  .openapi(
    createRoute({
      method: 'get',
      path: '/users',
      tags: ['users'],
      summary: 'People in the organisation',
      request: { query: PageQuery },
      responses: {
        200: jsonResponse(pageOf(User), 'A page of users'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) =>
      c.json(await listUsers({ ctx: serviceCtx(c, 'users:manage'), input: c.req.valid('query') }), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/users',
      tags: ['users'],
      summary: 'Create a user (or add an existing account) with a role',
      request: { body: jsonBody(CreateUserInput) },
      responses: {
        201: jsonResponse(
          z.object({ user: User, initialPassword: z.string().nullable() }),
          'Created; a generated password is shown once',
        ),
        ...errors(400, 401, 403, 409),
      },
    }),
    async (c) => {
      const ctx = serviceCtx(c, 'users:manage');
      const r = await createUser({ ctx, input: c.req.valid('json') });
      return c.json({ user: { ...r.user, disabled: false }, initialPassword: r.initialPassword }, 201);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/users/{id}',
      tags: ['users'],
      summary: "Change a user's role",
      request: { params: IdParam, body: jsonBody(UpdateUserInput) },
      responses: { 200: jsonResponse(User, 'Updated'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) =>
      c.json(
        await updateUserRole({
          ctx: serviceCtx(c, 'users:manage'),
          input: { userId: c.req.valid('param').id, role: c.req.valid('json').role },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/users/{id}',
      tags: ['users'],
      summary: 'Remove a user from the organisation',
      request: { params: IdParam },
      responses: {
        200: okResponse('Removed'),
        ...errors(401, 403, 404, 409),
      },
    }),
    async (c) => {
      await removeUser({ ctx: serviceCtx(c, 'users:manage'), input: { userId: c.req.valid('param').id } });
      return c.json({ ok: true as const }, 200);
    },
  );
