import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { eq } from 'drizzle-orm';
import type { AppEnv } from './env.ts';
import { errors, jsonBody, jsonResponse } from './schemas.ts';
import { resolveDeviceToken } from '../services/sites/device-token.ts';
import { appendReport } from '../services/sites/report.ts';
import { releases, sites } from '../db/schema/index.ts';
import { TooManyRequestsError, UnauthenticatedError } from '../lib/errors.ts';
import { RateLimiter } from '../lib/rate-limit.ts';

const CheckinInput = z.object({
  version: z.string().trim().min(1).max(100).openapi({ description: 'Release the site runs; unknown versions are recorded as sent', example: '2.4.1' }),
  status: z.enum(['healthy', 'degraded', 'failed', 'installing']),
  healthChecks: z.array(z.object({ name: z.string().min(1).max(100), ok: z.boolean(), message: z.string().max(500).optional() }).strict()).max(50).default([]),
  dockerVersion: z.string().max(50).optional(),
  imageStore: z.string().max(50).optional().openapi({ description: 'overlay2 (classic) or containerd', example: 'overlay2' }),
  composeVersion: z.string().max(50).optional(),
  diskFreeBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  idempotencyKey: z.string().min(8).max(128).regex(/^[\w.:-]+$/, 'Use letters, digits and . _ : - only.'),
  reportedAt: z.iso.datetime({ offset: true }).optional().openapi({ description: "The site's clock; informational" }),
}).strict().openapi('CheckinInput');

const CheckinResult = z.object({
  reportId: z.string(),
  duplicate: z.boolean().openapi({ description: 'True when this idempotency key was seen before; nothing new was recorded' }),
  receivedAt: z.string(),
  site: z.object({ code: z.string() }),
  targetVersion: z.string().nullable().openapi({ description: 'The version this site should run, when a rollout has set one' }),
}).openapi('CheckinResult');

export function checkinRoutes() {
  const limiters = new WeakMap<object, RateLimiter>();
  return new OpenAPIHono<AppEnv>()
    .openapi(createRoute({
      method: 'post', path: '/checkin', tags: ['sites'], summary: "A site's server reports what it runs (device token)",
      security: [{ deviceToken: [] }],
      request: { body: jsonBody(CheckinInput) },
      responses: { 200: jsonResponse(CheckinResult, 'Recorded (or a repeat of an earlier check-in)'), ...errors(400, 401, 413, 429) },
    }), async (c) => {
      const auth = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
      if (!auth) throw new UnauthenticatedError('Send the site\'s device token as "Authorization: Bearer opd_…".', 'INVALID_DEVICE_TOKEN');
      const site = await resolveDeviceToken(c.var.db, auth[1]!);
      const deps = c.var.deps;
      let limiter = limiters.get(deps);
      if (!limiter) limiters.set(deps, limiter = new RateLimiter(deps.checkinsPerMinute ?? 30, 60_000));
      const wait = limiter.hit(site.id);
      if (wait) throw new TooManyRequestsError('This site is checking in too often. Wait a minute.', wait);
      const b = c.req.valid('json');
      const receivedAt = new Date();
      const { report, duplicate } = await appendReport(c.var.db, {
        orgId: site.orgId, siteId: site.id, source: 'heartbeat', version: b.version, status: b.status,
        healthChecks: b.healthChecks, dockerVersion: b.dockerVersion, imageStore: b.imageStore,
        composeVersion: b.composeVersion, diskFreeBytes: b.diskFreeBytes, idempotencyKey: b.idempotencyKey,
        // "Last seen" uses the server's clock: site clocks drift, and a wrong one must not hide a site.
        reportedAt: receivedAt,
        details: b.reportedAt ? { siteClock: b.reportedAt } : {},
      });
      const [target] = await c.var.db.select({ version: releases.version }).from(sites)
        .innerJoin(releases, eq(releases.id, sites.targetReleaseId)).where(eq(sites.id, site.id)).limit(1);
      return c.json({
        reportId: report.id, duplicate, receivedAt: report.receivedAt.toISOString(),
        site: { code: site.code }, targetVersion: target?.version ?? null,
      }, 200);
    });
}
