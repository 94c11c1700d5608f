import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from './app-env.ts';
import { errors, jsonBody, jsonResponse } from './schemas.ts';
import { DEVICE_TOKEN_PREFIX } from '../services/sites/device-token.ts';
import type { CheckinBatcher } from '../services/sites/checkin.ts';
import { ENROLMENT_TOKEN_PREFIX, exchangeEnrolmentToken } from '../services/sites/enrol.ts';
import type { Db } from '../db/types.ts';
import { TooManyRequestsError, UnauthenticatedError } from '../lib/errors.ts';
import { RateLimiter } from '../lib/rate-limit.ts';

export const CheckinInput = z
  .object({
    version: z.string().trim().min(1).max(100).openapi({
      description: 'Release the site runs; unknown versions are recorded as sent',
      example: '2.4.1',
    }),
    status: z.enum(['healthy', 'degraded', 'failed', 'installing']),
    healthChecks: z
      .array(
        z
          .object({
            name: z.string().min(1).max(100),
            ok: z.boolean(),
            message: z.string().max(500).optional(),
          })
          .strict(),
      )
      .max(50)
      .default([]),
    dockerVersion: z.string().max(50).optional(),
    imageStore: z
      .string()
      .max(50)
      .optional()
      .openapi({ description: 'overlay2 (classic) or containerd', example: 'overlay2' }),
    composeVersion: z.string().max(50).optional(),
    contentPackageVersion: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .optional()
      .openapi({ description: 'Version of the content package installed at the site', example: '2024.11' }),
    edgeScriptsVersion: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .optional()
      .openapi({ description: 'Version of the Outpost scripts at the site', example: '1.4.0' }),
    composeSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'The SHA-256 of the compose file, 64 lowercase hexadecimal digits.')
      .optional()
      .openapi({
        description: 'SHA-256 of the docker-compose.yml the site runs',
        example: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      }),
    diskFreeBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    idempotencyKey: z
      .string()
      .min(8)
      .max(128)
      .regex(/^[\w.:-]+$/, 'Use letters, digits and . _ : - only.'),
    reportedAt: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: "The site's clock; informational" }),
  })
  .strict()
  .openapi('CheckinInput');

const CheckinResult = z
  .object({
    reportId: z.string(),
    duplicate: z
      .boolean()
      .openapi({ description: 'True when this idempotency key was seen before; nothing new was recorded' }),
    receivedAt: z.string(),
    site: z.object({ code: z.string() }),
    targetVersion: z.string().nullable().openapi({
      description:
        'The version this site should install now, when a rollout asks it to (null while held, see installHold)',
    }),
    installHold: z
      .enum(['rollout_paused', 'awaiting_retry', 'blackout', 'maintenance_window'])
      .nullable()
      .openapi({
        description:
          'Why a site that has a target is not asked to install it right now: its rollout is paused, its install failed and waits for a retry, a blackout date, or outside its maintenance window',
      }),
  })
  .openapi('CheckinResult');

export const EnrolInput = z
  .object({
    enrolmentToken: z
      .string()
      .min(10)
      .max(200)
      .regex(
        new RegExp(`^${ENROLMENT_TOKEN_PREFIX}[A-Za-z0-9_-]+$`),
        "Send the token from the bundle's site/enrolment-token file (it starts with ope_).",
      )
      .openapi({ description: "The one-time token from the bundle's site/enrolment-token" }),
  })
  .strict()
  .openapi('EnrolInput');

const EnrolResult = z
  .object({
    deviceToken: z
      .string()
      .openapi({ description: "The site's new device token (shown once; any earlier one stops working)" }),
    site: z.object({ id: z.string(), code: z.string() }),
  })
  .openapi('EnrolResult');

const ENROL_REFUSED: Record<'invalid' | 'used' | 'expired', string> = {
  invalid: 'This enrolment token is not valid (or its site is archived).',
  used: "This enrolment token was already used, or a newer bundle's token was. Ask an administrator for the site's device token.",
  expired:
    "This enrolment token has expired with its bundle. Ask an administrator for the site's device token.",
};

const INVALID = 'This device token is not valid: it was revoked or replaced, or the site is archived.';

/** `checkins` gives the check-in batcher of a database; the app builds it with its dependencies. */
export function checkinRoutes({ checkins }: { checkins: (db: Db) => CheckinBatcher }) {
  let enrolLimiter: RateLimiter | null = null;
  return new OpenAPIHono<AppEnv>()
    .openapi(
      createRoute({
        method: 'post',
        path: '/enrol',
        tags: ['sites'],
        summary: "A site's installer exchanges its bundle's one-time enrolment token for a device token",
        request: { body: jsonBody(EnrolInput) },
        responses: { 200: jsonResponse(EnrolResult, 'The device token (once)'), ...errors(400, 401, 429) },
      }),
      async (c) => {
        enrolLimiter ??= new RateLimiter(c.var.deps.checkinsPerMinute ?? 30, 60_000);
        const { enrolmentToken } = c.req.valid('json');
        const wait = enrolLimiter.hit(enrolmentToken.slice(0, 24));
        if (wait) throw new TooManyRequestsError('Too many tries with this token. Wait a minute.', wait);
        const o = await exchangeEnrolmentToken(c.var.db, {
          token: enrolmentToken,
          requestId: c.var.requestId,
        });
        if (!o.ok)
          throw new UnauthenticatedError(
            ENROL_REFUSED[o.reason],
            o.reason === 'expired'
              ? 'ENROLMENT_EXPIRED'
              : o.reason === 'used'
                ? 'ENROLMENT_USED'
                : 'INVALID_ENROLMENT_TOKEN',
          );
        return c.json({ deviceToken: o.deviceToken, site: o.site }, 200);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/checkin',
        tags: ['sites'],
        summary: "A site's server reports what it runs (device token)",
        security: [{ deviceToken: [] }],
        request: { body: jsonBody(CheckinInput) },
        responses: {
          200: jsonResponse(CheckinResult, 'Recorded (or a repeat of an earlier check-in)'),
          ...errors(400, 401, 413, 429),
        },
      }),
      async (c) => {
        const auth = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
        if (!auth || !auth[1]!.startsWith(DEVICE_TOKEN_PREFIX)) {
          throw new UnauthenticatedError(
            'Send the site\'s device token as "Authorization: Bearer opd_…".',
            'INVALID_DEVICE_TOKEN',
          );
        }
        const o = await checkins(c.var.db).submit(auth[1]!, c.req.valid('json'));
        if (!o.ok && o.reason === 'invalid-token')
          throw new UnauthenticatedError(INVALID, 'INVALID_DEVICE_TOKEN');
        if (!o.ok)
          throw new TooManyRequestsError('This site is checking in too often. Wait a minute.', o.retryAfter);
        return c.json(
          {
            reportId: o.reportId,
            duplicate: o.duplicate,
            receivedAt: o.receivedAt.toISOString(),
            site: { code: o.siteCode },
            targetVersion: o.targetVersion,
            installHold: o.installHold,
          },
          200,
        );
      },
    );
}
