import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from './env.ts';
import { errors, jsonResponse, PageQuery } from './schemas.ts';
import { authenticate, serviceCtx } from './auth-middleware.ts';
import { listAudit } from '../services/audit/list.ts';

const AuditEntry = z.object({
  id: z.string(), action: z.string(), objectType: z.string(), objectId: z.string().nullable(),
  details: z.record(z.string(), z.unknown()), at: z.string(), actorUserId: z.string().nullable(),
  actorTokenId: z.string().nullable(), actorEmail: z.string().nullable(), requestId: z.string().nullable(),
}).openapi('AuditEntry');

const auditBase = new OpenAPIHono<AppEnv>();
auditBase.use('/audit', authenticate);

export const auditRoutes = auditBase
  .openapi(createRoute({
    method: 'get', path: '/audit', tags: ['audit'], summary: 'Who changed what, newest first',
    request: { query: PageQuery },
    responses: { 200: jsonResponse(z.object({ items: z.array(AuditEntry), nextCursor: z.string().nullable() }), 'A page of the audit log'), ...errors(400, 401, 403) },
  }), async (c) => c.json(await listAudit({ ctx: serviceCtx(c, 'audit:read'), input: c.req.valid('query') }), 200));
