import { createRoute, z } from '@hono/zod-openapi';
import { errors, jsonResponse, PageQuery, listOf, pageOf } from './schemas.ts';
import { serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import { auditActors, listAudit } from '../services/audit/list.ts';

const AuditEntry = z
  .object({
    id: z.string(),
    action: z.string(),
    objectType: z.string(),
    objectId: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
    at: z.string(),
    actorUserId: z.string().nullable(),
    actorTokenId: z.string().nullable(),
    actorEmail: z.string().nullable(),
    actorName: z.string().nullable(),
    requestId: z.string().nullable(),
    objectLabel: z.string().nullable().openapi({
      description:
        "The object's name in words (a site's code and name, a release's version, a person's e-mail), when it still exists",
    }),
  })
  .openapi('AuditEntry');

const auditBase = authenticatedRouter('/audit', '/audit/actors');

const AuditQuery = PageQuery.extend({
  actor: z.uuid().optional().openapi({ description: 'Only what this person did' }),
  kind: z
    .string()
    .regex(/^[a-z_]+(\.[a-z_]+)*$/, 'A kind such as site or release.publish.')
    .max(60)
    .optional()
    .openapi({
      description:
        'Only actions of this kind: site, release, bundle, user, invite, token, session… or a full action',
    }),
  from: z.iso.datetime({ offset: true }).optional().openapi({ description: 'From this instant (inclusive)' }),
  to: z.iso.datetime({ offset: true }).optional().openapi({ description: 'Until this instant (exclusive)' }),
});

export const auditRoutes = auditBase
  .openapi(
    createRoute({
      method: 'get',
      path: '/audit',
      tags: ['audit'],
      summary: 'Who changed what, newest first',
      request: { query: AuditQuery },
      responses: {
        200: jsonResponse(pageOf(AuditEntry), 'A page of the audit log'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) =>
      c.json(await listAudit({ ctx: serviceCtx(c, 'audit:read'), input: c.req.valid('query') }), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/audit/actors',
      tags: ['audit'],
      summary: 'The people who appear in the audit log (for its filter)',
      responses: {
        200: jsonResponse(
          listOf(z.object({ id: z.string(), email: z.string(), name: z.string() })),
          'People',
        ),
        ...errors(401, 403),
      },
    }),
    async (c) => c.json(await auditActors({ ctx: serviceCtx(c, 'audit:read') }), 200),
  );
