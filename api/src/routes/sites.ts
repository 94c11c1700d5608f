import { createRoute, z } from '@hono/zod-openapi';
import type { AppContext } from './app-env.ts';
import { errors, IdParam, jsonBody, jsonResponse, listOf, okResponse, pageOf } from './schemas.ts';
import { serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import { CONNECTIVITY, SITE_LANGUAGES, CreateSiteInput, UpdateSiteInput } from '../services/sites/input.ts';
import { listSites, SITE_SORTS } from '../services/sites/list.ts';
import { loadSite, toSiteView } from '../services/sites/scope.ts';
import { createSite, setSiteArchived, updateSite } from '../services/sites/write.ts';
import { issueDeviceToken, revokeDeviceToken } from '../services/sites/device-token.ts';
import { listReports, recordManualReport } from '../services/sites/report.ts';
import { assignCoordinator, listCoordinators } from '../services/sites/coordinators.ts';
import { siteFacets } from '../services/sites/facets.ts';
import { fleetSummary } from '../services/sites/summary.ts';
import { LAYERS } from '../services/fleet/drift.ts';

export const SITE_STATUSES = [
  'on_target',
  'behind',
  'ahead',
  'failed',
  'revoked',
  'never_reported',
  'silent',
  'no_target',
] as const;

const Site = z
  .object({
    id: z.string(),
    code: z.string(),
    name: z.string(),
    region: z.string().nullable(),
    district: z.string().nullable(),
    facilityType: z.string().nullable(),
    tags: z.array(z.string()),
    connectivity: z.enum(CONNECTIVITY),
    bandwidthKbps: z.number().nullable(),
    timezone: z.string(),
    language: z.enum(SITE_LANGUAGES),
    maintenanceWindow: z.string().nullable(),
    latitude: z.number().nullable(),
    longitude: z.number().nullable(),
    contactName: z.string().nullable(),
    contactPhone: z.string().nullable(),
    contactEmail: z.string().nullable(),
    reportedVersion: z.string().nullable(),
    reportedReleaseId: z.string().nullable(),
    reportedStatus: z.string().nullable(),
    reportedAt: z.string().nullable(),
    reportedContentVersion: z.string().nullable(),
    reportedScriptsVersion: z.string().nullable(),
    reportedComposeSha256: z.string().nullable(),
    targetReleaseId: z.string().nullable(),
    targetVersion: z.string().nullable(),
    status: z.enum(SITE_STATUSES),
    deviceToken: z.object({ prefix: z.string().nullable(), issuedAt: z.string().nullable() }).nullable(),
    hasReceiptKey: z.boolean(),
    archivedAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Site');

const Report = z
  .object({
    id: z.string(),
    source: z.enum(['heartbeat', 'receipt_code', 'receipt_file', 'manual']),
    version: z.string().nullable(),
    releaseId: z.string().nullable(),
    status: z.string(),
    healthChecks: z.array(z.object({ name: z.string(), ok: z.boolean(), message: z.string().optional() })),
    dockerVersion: z.string().nullable(),
    imageStore: z.string().nullable(),
    composeVersion: z.string().nullable(),
    contentPackageVersion: z.string().nullable(),
    edgeScriptsVersion: z.string().nullable(),
    composeSha256: z.string().nullable(),
    diskFreeBytes: z.number().nullable(),
    details: z.record(z.string(), z.unknown()),
    reportedAt: z.string(),
    receivedAt: z.string(),
    actorEmail: z.string().nullable(),
  })
  .openapi('SiteReport');

/** Filters shared by the list and the CSV export. */
export const SiteFilterQuery = z.object({
  q: z.string().trim().max(100).optional(),
  region: z.string().max(100).optional(),
  district: z.string().max(100).optional(),
  tag: z.string().max(50).optional(),
  connectivity: z.enum(CONNECTIVITY).optional(),
  version: z.string().max(100).optional(),
  status: z.enum(SITE_STATUSES).optional(),
  silentDays: z.coerce.number().int().min(1).max(3650).optional(),
  archived: z
    .enum(['true', 'false'])
    .optional()
    .transform((v) => v === 'true'),
  behind: z
    .enum(['1', '2', '3'])
    .optional()
    .transform((v) => (v ? (Number(v) as 1 | 2 | 3) : undefined))
    .openapi({ description: 'Behind the target by 1, 2 or 3 (meaning 3 or more) published versions' }),
  drift: z.enum(LAYERS).optional().openapi({
    description: 'The site reports a content package, compose file or scripts other than its release carries',
  }),
});

const ListQuery = SiteFilterQuery.extend({
  sort: z.enum(SITE_SORTS).default('code'),
  order: z.enum(['asc', 'desc']).default('asc'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(1024).optional(),
});

const SiteIdParam = IdParam;
const CoordinatorParams = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }),
  userId: z.uuid().openapi({ param: { name: 'userId', in: 'path' } }),
});

const ManualReportInput = z
  .object({
    version: z.string().trim().min(1).max(100),
    status: z.enum(['installed', 'failed', 'rolled_back', 'healthy', 'degraded']),
    note: z.string().max(2000).optional(),
    at: z.iso.datetime({ offset: true }).optional(),
  })
  .strict()
  .openapi('ManualReportInput');

const ok = okResponse('Done');

/** Archive and restore: one verb, the flag set by the path. */
const archiveRoute = <P extends 'archive' | 'restore'>(path: P, summary: string, done: string) =>
  createRoute({
    method: 'post',
    path: `/sites/{id}/${path}` as `/sites/{id}/${P}`,
    tags: ['sites'],
    summary,
    request: { params: SiteIdParam },
    responses: { 200: jsonResponse(Site, done), ...errors(400, 401, 403, 404) },
  });
const setArchived = (c: AppContext, siteId: string, archived: boolean) =>
  setSiteArchived({ ctx: serviceCtx(c, 'fleet:write'), input: { siteId, archived } });

/** Assign and unassign: PUT and DELETE of the same path, one verb with the flag the method sets. */
const coordinatorRoute = <M extends 'put' | 'delete'>(method: M, summary: string) =>
  createRoute({
    method,
    path: '/sites/{id}/coordinators/{userId}',
    tags: ['sites'],
    summary,
    request: { params: CoordinatorParams },
    responses: { 200: ok, ...errors(400, 401, 403, 404) },
  });
const assign = (c: AppContext, p: { id: string; userId: string }, assigned: boolean) =>
  assignCoordinator({
    ctx: serviceCtx(c, 'users:manage'),
    input: { siteId: p.id, userId: p.userId, assigned },
  });

export const siteRoutes = authenticatedRouter('/sites', '/sites/*')
  .openapi(
    createRoute({
      method: 'get',
      path: '/sites',
      tags: ['sites'],
      summary: 'List sites with filters, search, sort and cursor pagination',
      request: { query: ListQuery },
      responses: {
        200: jsonResponse(
          z.object({
            items: z.array(Site),
            total: z.number(),
            totalIsExact: z.boolean().openapi({
              description:
                'false when more than 1,000 sites match; total is then 1,000 (GET /sites/summary counts the whole fleet)',
            }),
            nextCursor: z.string().nullable(),
          }),
          'A page of sites',
        ),
        ...errors(400, 401),
      },
    }),
    async (c) =>
      c.json(await listSites({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sites/facets',
      tags: ['sites'],
      summary: 'Values for the filter pickers (districts narrowed by ?region=)',
      request: { query: z.object({ region: z.string().max(100).optional() }) },
      responses: {
        200: jsonResponse(
          z.object({
            regions: z.array(z.string()),
            districts: z.array(z.string()),
            tags: z.array(z.string()),
            versions: z.array(z.string()),
          }),
          'Facets',
        ),
        ...errors(401),
      },
    }),
    async (c) =>
      c.json(await siteFacets({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sites/summary',
      tags: ['sites'],
      summary: 'Fleet at a glance: sites per status, reported version and region',
      request: { query: z.object({ silentDays: z.coerce.number().int().min(1).max(3650).optional() }) },
      responses: {
        200: jsonResponse(
          z
            .object({
              total: z.number(),
              silentDays: z.number(),
              byStatus: z.record(z.enum(SITE_STATUSES), z.number()),
              byVersion: z.array(z.object({ version: z.string().nullable(), sites: z.number() })),
              byRegion: z.array(z.object({ region: z.string().nullable(), sites: z.number() })),
            })
            .openapi('FleetSummary'),
          'Counts',
        ),
        ...errors(400, 401),
      },
    }),
    async (c) =>
      c.json(await fleetSummary({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/sites',
      tags: ['sites'],
      summary: 'Register a site',
      request: { body: jsonBody(CreateSiteInput.openapi('CreateSiteInput')) },
      responses: { 201: jsonResponse(Site, 'Created'), ...errors(400, 401, 403, 409) },
    }),
    async (c) =>
      c.json(await createSite({ ctx: serviceCtx(c, 'fleet:write'), input: c.req.valid('json') }), 201),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sites/{id}',
      tags: ['sites'],
      summary: 'One site',
      request: { params: SiteIdParam },
      responses: { 200: jsonResponse(Site, 'The site'), ...errors(400, 401, 404) },
    }),
    async (c) => {
      const r = await loadSite(serviceCtx(c, 'fleet:read'), c.req.valid('param').id, {
        includeArchived: true,
      });
      return c.json(toSiteView(r.site, r.targetVersion, new Date(), r.reportedRevoked), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'patch',
      path: '/sites/{id}',
      tags: ['sites'],
      summary: 'Edit a site',
      request: { params: SiteIdParam, body: jsonBody(UpdateSiteInput.openapi('UpdateSiteInput')) },
      responses: { 200: jsonResponse(Site, 'Updated'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) =>
      c.json(
        await updateSite({
          ctx: serviceCtx(c, 'fleet:write'),
          input: { siteId: c.req.valid('param').id, patch: c.req.valid('json') },
        }),
        200,
      ),
  )
  .openapi(
    archiveRoute(
      'archive',
      'Archive a site (hidden from the fleet; its device token stops working)',
      'Archived',
    ),
    async (c) => c.json(await setArchived(c, c.req.valid('param').id, true), 200),
  )
  .openapi(archiveRoute('restore', 'Bring an archived site back', 'Restored'), async (c) =>
    c.json(await setArchived(c, c.req.valid('param').id, false), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/sites/{id}/device-token',
      tags: ['sites'],
      summary: 'Issue or rotate the device token (shown once)',
      request: { params: SiteIdParam },
      responses: {
        201: jsonResponse(
          z.object({ token: z.string(), prefix: z.string() }),
          'The new token; the previous one stops working',
        ),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) =>
      c.json(
        await issueDeviceToken({
          ctx: serviceCtx(c, 'fleet:write'),
          box: c.var.deps.secretBox,
          input: { siteId: c.req.valid('param').id },
        }),
        201,
      ),
  )
  .openapi(
    createRoute({
      method: 'delete',
      path: '/sites/{id}/device-token',
      tags: ['sites'],
      summary: 'Revoke the device token',
      request: { params: SiteIdParam },
      responses: { 200: ok, ...errors(400, 401, 403, 404) },
    }),
    async (c) => {
      await revokeDeviceToken({
        ctx: serviceCtx(c, 'fleet:write'),
        input: { siteId: c.req.valid('param').id },
      });
      return c.json({ ok: true as const }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sites/{id}/reports',
      tags: ['sites'],
      summary: 'History of what the site reported, newest first',
      request: {
        params: SiteIdParam,
        query: z.object({
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: z.string().max(512).optional(),
        }),
      },
      responses: {
        200: jsonResponse(pageOf(Report), 'A page of reports'),
        ...errors(400, 401, 404),
      },
    }),
    async (c) =>
      c.json(
        await listReports({
          ctx: serviceCtx(c, 'fleet:read'),
          input: { siteId: c.req.valid('param').id, ...c.req.valid('query') },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/sites/{id}/reports',
      tags: ['sites'],
      summary: 'Record a report by hand (e.g. confirmed by phone call)',
      request: { params: SiteIdParam, body: jsonBody(ManualReportInput) },
      responses: { 201: jsonResponse(Report, 'Recorded'), ...errors(400, 401, 403, 404) },
    }),
    async (c) =>
      c.json(
        await recordManualReport({
          ctx: serviceCtx(c, 'fleet:write'),
          input: { siteId: c.req.valid('param').id, ...c.req.valid('json') },
        }),
        201,
      ),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sites/{id}/coordinators',
      tags: ['sites'],
      summary: 'Coordinators assigned to the site',
      request: { params: SiteIdParam },
      responses: {
        200: jsonResponse(
          listOf(z.object({ id: z.string(), email: z.string(), name: z.string() })),
          'Coordinators',
        ),
        ...errors(400, 401, 404),
      },
    }),
    async (c) =>
      c.json(
        {
          items: await listCoordinators({
            ctx: serviceCtx(c, 'fleet:read'),
            input: { siteId: c.req.valid('param').id },
          }),
        },
        200,
      ),
  )
  .openapi(coordinatorRoute('put', 'Assign a coordinator to the site'), async (c) => {
    await assign(c, c.req.valid('param'), true);
    return c.json({ ok: true as const }, 200);
  })
  .openapi(coordinatorRoute('delete', 'Unassign a coordinator'), async (c) => {
    await assign(c, c.req.valid('param'), false);
    return c.json({ ok: true as const }, 200);
  });
