import { z } from '@hono/zod-openapi';
import { ROLES } from '../db/schema/index.ts';

export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'NOT_FOUND' }),
      message: z.string(),
      requestId: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error');

const errorBodies = {
  400: 'The request is malformed or fails validation',
  401: 'Not signed in, or the token is invalid, expired or revoked',
  403: 'Signed in, but the role does not allow this',
  404: 'No such object in this organisation',
  409: 'Conflicts with the current state',
  410: 'Gone: used, expired or withdrawn',
  413: 'The body is too large',
  416: 'The byte range asked for is outside the file',
  422: 'Understood, but cannot be done with this data',
  429: 'Too many requests',
} as const;

/** Error responses for the OpenAPI document; every one uses the envelope. */
export function errors<S extends keyof typeof errorBodies>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: errorBodies[s],
        content: { 'application/json': { schema: ErrorEnvelope } },
      },
    ]),
  ) as unknown as {
    [K in S]: { description: string; content: { 'application/json': { schema: typeof ErrorEnvelope } } };
  };
}

export function jsonBody<T extends z.ZodType>(schema: T) {
  return { required: true, content: { 'application/json': { schema } } } as const;
}

/** A body the caller may leave out; the handler reads it (rollouts' optionalJson), the schema documents it. */
export function optionalJsonBody<T extends z.ZodType>(schema: T) {
  return { required: false, content: { 'application/json': { schema } } } as const;
}

export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } } as const;
}

/** `{ ok: true }`: the answer of an action that has nothing else to say. */
export function okResponse(description: string) {
  return jsonResponse(z.object({ ok: z.literal(true) }), description);
}

/** `{ items }`: a list answered whole. */
export function listOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item) });
}

/** `{ items, nextCursor }`: one page of a list; `nextCursor` (null on the last page) asks for the next. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

export const Role = z.enum(ROLES).openapi('Role');
export const IdParam = z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }) });
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(512).optional(),
});
export const Email = z.email().max(254);
/** The web app's languages (web/src/lib/i18n). */
export const Language = z.enum(['en', 'fr', 'pt']).openapi('Language');
export const Password = z.string().min(10, 'Use at least 10 characters.').max(256);
