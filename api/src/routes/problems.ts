import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from './app-env.ts';
import { errors, jsonBody, jsonResponse, listOf } from './schemas.ts';
import { serviceCtx, authenticateOnce } from './auth-middleware.ts';
import { listProblems, reportProblem, resolveProblem } from '../services/problems/problems.ts';

const Problem = z
  .object({
    id: z.string(),
    siteId: z.string(),
    description: z.string(),
    errorText: z.string(),
    version: z.string().nullable(),
    reportedBy: z.object({ email: z.string(), name: z.string() }).nullable(),
    createdAt: z.string(),
    resolvedAt: z.string().nullable(),
  })
  .openapi('SiteProblem');

// Printable text only (newlines and tabs allowed): what reaches the ministry's page stays plain.
const plain = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]*$/, 'Use plain text.');

const ReportProblemInput = z
  .object({
    description: plain(4000).trim().min(1, 'Say what went wrong.'),
    errorText: plain(8000).optional().openapi({ description: 'The error the site showed, as seen' }),
  })
  .strict()
  .openapi('ReportProblemInput');

const SiteParam = z.object({ id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }) });
const ProblemParam = SiteParam.extend({
  problemId: z.uuid().openapi({ param: { name: 'problemId', in: 'path' } }),
});

const base = new OpenAPIHono<AppEnv>();
base.use('/sites/:id/problems', authenticateOnce);
base.use('/sites/:id/problems/*', authenticateOnce);

export const problemRoutes = base
  .openapi(
    createRoute({
      method: 'get',
      path: '/sites/{id}/problems',
      tags: ['sites'],
      summary: 'Problems reported from the site, open ones first',
      request: { params: SiteParam, query: z.object({ open: z.enum(['true', 'false']).optional() }) },
      responses: {
        200: jsonResponse(listOf(Problem), 'Problems'),
        ...errors(400, 401, 404),
      },
    }),
    async (c) =>
      c.json(
        await listProblems({
          ctx: serviceCtx(c, 'fleet:read'),
          input: { siteId: c.req.valid('param').id, open: c.req.valid('query').open === 'true' },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/sites/{id}/problems',
      tags: ['sites'],
      summary: 'Report a problem at the site (what went wrong, and the error shown)',
      request: { params: SiteParam, body: jsonBody(ReportProblemInput) },
      responses: { 201: jsonResponse(Problem, 'Reported'), ...errors(400, 401, 403, 404) },
    }),
    async (c) =>
      c.json(
        await reportProblem({
          ctx: serviceCtx(c, 'receipts:submit'),
          input: { siteId: c.req.valid('param').id, ...c.req.valid('json') },
        }),
        201,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/sites/{id}/problems/{problemId}/resolve',
      tags: ['sites'],
      summary: 'Mark a problem dealt with',
      request: { params: ProblemParam },
      responses: { 200: jsonResponse(Problem, 'Resolved'), ...errors(401, 403, 404) },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(
        await resolveProblem({
          ctx: serviceCtx(c, 'fleet:write'),
          input: { siteId: p.id, problemId: p.problemId },
        }),
        200,
      );
    },
  );
