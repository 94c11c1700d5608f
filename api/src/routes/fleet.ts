import { createRoute, z } from '@hono/zod-openapi';
import { errors, jsonResponse, listOf } from './schemas.ts';
import { serviceCtx, authenticatedRouter } from './auth-middleware.ts';
import { CONNECTIVITY } from '../services/sites/input.ts';
import { LAYERS } from '../services/fleet/drift.ts';
import {
  fleetBreakdown,
  fleetOverview,
  fleetSummaryFigures,
  sitesBehindMost,
  STATUSES,
} from '../services/fleet/figures.ts';
import { fleetAdoption } from '../services/fleet/adoption.ts';
import { siteFacets } from '../services/sites/facets.ts';

/** Every fleet figure narrows by these, the site list's filters of the same names. */
export const FleetQuery = z.object({
  region: z.string().trim().min(1).max(100).optional(),
  district: z.string().trim().min(1).max(100).optional(),
  tag: z.string().trim().min(1).max(50).optional(),
  connectivity: z.enum(CONNECTIVITY).optional(),
  silentDays: z.coerce.number().int().min(1).max(3650).optional().openapi({
    description: 'A site is silent when its last report is older than this many days (default 7)',
  }),
});

const ListFilter = z
  .object({
    region: z.string().optional(),
    district: z.string().optional(),
    tag: z.string().optional(),
    connectivity: z.enum(CONNECTIVITY).optional(),
    silentDays: z.number().optional(),
    status: z.enum(STATUSES as [string, ...string[]]).optional(),
    version: z.string().optional(),
    behind: z.number().optional(),
    drift: z.enum(LAYERS).optional(),
  })
  .openapi('SiteListFilter', {
    description: "The query of GET /sites (and of the web's site list) that lists exactly the sites counted",
  });

const Figure = z.object({ count: z.number(), filter: ListFilter.nullable() }).openapi('FleetFigure');

const Figures = {
  sites: Figure,
  status: z.record(z.enum(STATUSES as [string, ...string[]]), Figure),
  behind: z.array(Figure.extend({ by: z.number().openapi({ description: '1, 2, or 3 meaning 3 or more' }) })),
  drift: z.record(z.enum(LAYERS), Figure).openapi({
    description:
      'Sites whose reported content package, compose file or scripts differ from what their release carries',
  }),
  versions: z.array(
    z.object({
      version: z.string().nullable(),
      count: z.number(),
      filter: ListFilter.nullable(),
      revoked: z.boolean(),
    }),
  ),
  meanVersionsBehind: z.number(),
  behindShare: z.number(),
};

const Summary = z
  .object({
    ...Figures,
    latestVersion: z.string().nullable(),
    silentDays: z.number(),
    generatedAt: z.string(),
  })
  .openapi('FleetSummaryFigures');
const BreakdownRow = z
  .object({
    key: z.object({
      region: z.string().nullable().optional(),
      district: z.string().nullable().optional(),
      tag: z.string().nullable().optional(),
    }),
    ...Figures,
  })
  .openapi('FleetBreakdownRow');
const SiteBrief = z.object({
  id: z.string(),
  code: z.string(),
  name: z.string(),
  region: z.string().nullable(),
  district: z.string().nullable(),
  reportedVersion: z.string().nullable(),
  reportedAt: z.string().nullable(),
});
const BehindSite = SiteBrief.extend({
  targetVersion: z.string().nullable(),
  versionsBehind: z.number(),
}).openapi('FleetBehindSite');

const Overview = z
  .object({
    summary: Summary,
    regions: z.array(BreakdownRow),
    behindMost: z.array(BehindSite),
    silent: z.array(SiteBrief),
  })
  .openapi('FleetOverview');
const Adoption = z
  .object({
    days: z.array(z.string()),
    reporting: z.array(z.number()).openapi({
      description: "Per day, the sites in view that had reported by then (the share's denominator)",
    }),
    series: z.array(z.object({ version: z.string(), counts: z.array(z.number()), filter: ListFilter })),
  })
  .openapi('FleetAdoption');
// The same shape as GET /sites/facets answers.
const Facets = z.object({
  regions: z.array(z.string()),
  districts: z.array(z.string()),
  tags: z.array(z.string()),
  versions: z.array(z.string()),
});

export const fleetRoutes = authenticatedRouter('/fleet/*')
  .openapi(
    createRoute({
      method: 'get',
      path: '/fleet/dashboard',
      tags: ['fleet'],
      summary:
        "The dashboard's first load in one request: the overview, the adoption curve and the filters' values",
      description:
        'What GET /fleet/overview, GET /fleet/adoption and GET /sites/facets (narrowed by `region`) answer for the same query. ' +
        'On a slow link each request costs a round trip, and a browser opens six connections at most.',
      request: {
        query: FleetQuery.extend({
          limit: z.coerce.number().int().min(1).max(100).default(10),
          days: z.coerce.number().int().min(1).max(730).default(90),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({ overview: Overview, adoption: Adoption, facets: Facets }).openapi('FleetDashboard'),
          'Figures',
        ),
        ...errors(400, 401),
      },
    }),
    async (c) => {
      const ctx = serviceCtx(c, 'fleet:read');
      const { days, limit, ...filter } = c.req.valid('query');
      const [overview, adoption, facets] = await Promise.all([
        fleetOverview({ ctx, input: { ...filter, limit } }),
        fleetAdoption({ ctx, input: { ...filter, days } }),
        siteFacets({ ctx, input: filter.region ? { region: filter.region } : {} }),
      ]);
      return c.json({ overview, adoption, facets }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/fleet/overview',
      tags: ['fleet'],
      summary: 'The dashboard in one request: summary, regions, sites behind the most, longest silent',
      request: { query: FleetQuery.extend({ limit: z.coerce.number().int().min(1).max(100).default(10) }) },
      responses: {
        200: jsonResponse(Overview, 'Figures'),
        ...errors(400, 401),
      },
    }),
    async (c) =>
      c.json(await fleetOverview({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/fleet/summary',
      tags: ['fleet'],
      summary: 'Sites per status, versions behind, layer drift and reported release',
      request: { query: FleetQuery },
      responses: { 200: jsonResponse(Summary, 'Figures'), ...errors(400, 401) },
    }),
    async (c) =>
      c.json(
        await fleetSummaryFigures({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/fleet/distribution',
      tags: ['fleet'],
      summary: 'Sites by reported release',
      request: { query: FleetQuery },
      responses: {
        200: jsonResponse(
          z.object({ versions: Figures.versions, sites: Figure }).openapi('FleetDistribution'),
          'Figures',
        ),
        ...errors(400, 401),
      },
    }),
    async (c) => {
      const s = await fleetSummaryFigures({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') });
      return c.json({ versions: s.versions, sites: s.sites }, 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/fleet/breakdown',
      tags: ['fleet'],
      summary: 'The fleet by region, district or tag, the most behind first',
      request: { query: FleetQuery.extend({ by: z.enum(['region', 'district', 'tag']).default('region') }) },
      responses: {
        200: jsonResponse(
          z
            .object({ by: z.enum(['region', 'district', 'tag']), rows: z.array(BreakdownRow) })
            .openapi('FleetBreakdown'),
          'Figures',
        ),
        ...errors(400, 401),
      },
    }),
    async (c) =>
      c.json(await fleetBreakdown({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/fleet/adoption',
      tags: ['fleet'],
      summary: 'Sites on each release at the end of each day (UTC), from the report history',
      request: { query: FleetQuery.extend({ days: z.coerce.number().int().min(1).max(730).default(90) }) },
      responses: {
        200: jsonResponse(Adoption, 'Figures'),
        ...errors(400, 401),
      },
    }),
    async (c) =>
      c.json(await fleetAdoption({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/fleet/behind',
      tags: ['fleet'],
      summary: 'The sites furthest behind their target',
      request: { query: FleetQuery.extend({ limit: z.coerce.number().int().min(1).max(100).default(20) }) },
      responses: {
        200: jsonResponse(listOf(BehindSite).openapi('FleetBehind'), 'Sites'),
        ...errors(400, 401),
      },
    }),
    async (c) =>
      c.json(await sitesBehindMost({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') }), 200),
  );
