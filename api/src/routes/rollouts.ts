import { createRoute, z } from '@hono/zod-openapi';
import type { AppContext } from './app-env.ts';
import { errors, IdParam, jsonBody, jsonResponse, listOf, optionalJsonBody } from './schemas.ts';
import { serviceCtx, authenticatedRouter, authenticateOnce } from './auth-middleware.ts';
import { csvAttachment } from './csv.ts';
import { AppError, ForbiddenError, ValidationError } from '../lib/errors.ts';
import type { Permission } from '../services/auth/roles.ts';
import { CreateRolloutInput, PlanInput, PolicyInput } from './rollout-input.ts';
import { previewRollout } from '../services/rollouts/preview.ts';
import { createRollout } from '../services/rollouts/create.ts';
import { getRollout, listRollouts } from '../services/rollouts/view.ts';
import { exportAttentionCsv, listAttention } from '../services/rollouts/attention.ts';
import {
  advanceRollout,
  cancelRollout,
  excludeSite,
  pauseRollout,
  resumeRollout,
  retryTargets,
  scheduleDraft,
} from '../services/rollouts/controls.ts';
import { rollbackRollout } from '../services/rollouts/rollback.ts';
import { siteRollout } from '../services/rollouts/site-rollout.ts';
import { TARGET_STATES, ROLLOUT_STATES, WAVE_STATES } from '../services/rollouts/machine.ts';
import { addBlackout, deleteBlackout, listBlackouts } from '../services/rollouts/blackouts.ts';
import {
  createWebhook,
  deleteWebhook,
  listDeliveries,
  listWebhooks,
  WEBHOOK_EVENTS,
} from '../services/rollouts/webhooks.ts';

/** Rollouts are the ministry team's: coordinators (who see only their own sites) do not plan or watch them. */
function ctxFor(c: AppContext, permission: Permission) {
  const ctx = serviceCtx(c, permission);
  if (ctx.actor.role === 'coordinator')
    throw new ForbiddenError(
      'Rollouts are planned and followed by the ministry team; coordinators see their own sites.',
    );
  return ctx;
}

const Counts = z
  .object(
    Object.fromEntries([...TARGET_STATES, 'healthy'].map((s) => [s, z.number()])) as Record<
      (typeof TARGET_STATES)[number] | 'healthy',
      z.ZodNumber
    >,
  )
  .openapi('RolloutCounts');
const Policy = z.object({
  successThreshold: z.number(),
  failureThreshold: z.number(),
  autoAdvance: z.boolean(),
  soakMinutes: z.number(),
  bundleLeadHours: z.number(),
  buildBundles: z.boolean(),
});
const Selector = z.record(z.string(), z.unknown());
const Wave = z.object({
  id: z.string(),
  position: z.number(),
  name: z.string(),
  selector: Selector,
  state: z.enum(WAVE_STATES),
  startsAt: z.string(),
  deadlineAt: z.string(),
  openedAt: z.string().nullable(),
  closedAt: z.string().nullable(),
  bundlesRequestedAt: z.string().nullable(),
  bundleNote: z.string().nullable(),
  reason: z.string().nullable(),
  counts: Counts,
  total: z.number(),
  successShare: z.number().nullable(),
  failureShare: z.number().nullable(),
});
const Rollout = z
  .object({
    id: z.string(),
    name: z.string(),
    state: z.enum(ROLLOUT_STATES),
    policy: Policy,
    seed: z.string(),
    rollbackOf: z.string().nullable(),
    pausedReason: z.string().nullable(),
    release: z.object({ id: z.string(), version: z.string(), state: z.string() }),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    waves: z.array(Wave),
    totals: Counts,
    total: z.number(),
    timeline: z.array(
      z.object({
        id: z.string(),
        kind: z.string(),
        waveId: z.string().nullable(),
        siteId: z.string().nullable(),
        from: z.string().nullable(),
        to: z.string().nullable(),
        reason: z.string().nullable(),
        actor: z.string(),
        actorEmail: z.string().nullable(),
        at: z.string(),
      }),
    ),
  })
  .openapi('Rollout');
const RolloutSummary = z
  .object({
    id: z.string(),
    name: z.string(),
    state: z.enum(ROLLOUT_STATES),
    release: z.object({ id: z.string(), version: z.string() }),
    rollbackOf: z.string().nullable(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    waves: z.number(),
    wavesDone: z.number(),
    counts: Counts,
    total: z.number(),
  })
  .openapi('RolloutSummary');
const PreviewSite = z.object({
  id: z.string(),
  code: z.string(),
  name: z.string(),
  region: z.string().nullable(),
  connectivity: z.string(),
  reportedVersion: z.string().nullable(),
  bytes: z.number(),
  delta: z.boolean(),
  downloadSeconds: z.number().nullable(),
  conflict: z.string().nullable(),
});
const Preview = z
  .object({
    release: z.object({
      id: z.string(),
      version: z.string(),
      state: z.string(),
      fullBytes: z.number(),
      bundlable: z.boolean(),
    }),
    seed: z.string(),
    sitesInFleet: z.number(),
    unassigned: z.number(),
    unknownCodes: z.array(z.string()),
    waves: z.array(
      z.object({
        position: z.number(),
        name: z.string(),
        startsAt: z.string(),
        deadlineAt: z.string(),
        sites: z.number(),
        alreadyOnRelease: z.number(),
        toInstall: z.number(),
        sneakernet: z.number(),
        deltas: z.number(),
        bytes: z.number(),
        medianDownloadSeconds: z.number().nullable(),
        maxDownloadSeconds: z.number().nullable(),
        unknownBandwidth: z.number(),
        conflicts: z.number(),
        sample: z.array(PreviewSite),
      }),
    ),
    conflicts: z.array(
      z.object({ siteId: z.string(), code: z.string(), rolloutId: z.string(), rolloutName: z.string() }),
    ),
    conflictCount: z.number(),
  })
  .openapi('RolloutPreview');
const Attention = z
  .object({
    kind: z.enum(['failed', 'rolled_back', 'overdue', 'silent', 'problem_report']),
    siteId: z.string(),
    code: z.string(),
    name: z.string(),
    region: z.string().nullable(),
    district: z.string().nullable(),
    connectivity: z.string(),
    contactName: z.string().nullable(),
    contactPhone: z.string().nullable(),
    wave: z.string(),
    targetState: z.string(),
    reason: z.string().nullable(),
    since: z.string(),
    lastReport: z.object({
      version: z.string().nullable(),
      status: z.string().nullable(),
      at: z.string().nullable(),
    }),
    download: z.object({
      bundleState: z.string().nullable(),
      downloadedBytes: z.number(),
      complete: z.boolean(),
      lastAt: z.string().nullable(),
    }),
  })
  .openapi('RolloutAttentionItem');
const Moved = z.object({ id: z.string(), state: z.string() });
const Reason = z.object({ reason: z.string().trim().max(500).optional() }).strict();
const Blackout = z
  .object({
    id: z.string(),
    startsOn: z.string(),
    endsOn: z.string(),
    reason: z.string(),
    createdAt: z.string(),
  })
  .openapi('BlackoutDate');
const Day = z.iso.date();
const Webhook = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.string()),
    active: z.boolean(),
    createdAt: z.string(),
  })
  .openapi('Webhook');
const Delivery = z
  .object({
    id: z.string(),
    event: z.string(),
    state: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number(),
    lastStatus: z.number().nullable(),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    nextAttemptAt: z.string(),
    deliveredAt: z.string().nullable(),
    payload: z.record(z.string(), z.unknown()),
  })
  .openapi('WebhookDelivery');

const base = authenticatedRouter(
  '/rollouts',
  '/rollouts/*',
  '/blackout-dates',
  '/blackout-dates/*',
  '/webhooks',
  '/webhooks/*',
);
base.use('/sites/:id/rollout', authenticateOnce);

const SiteRollout = z
  .object({
    rollout: z
      .object({
        name: z.string(),
        state: z.enum(ROLLOUT_STATES),
        version: z.string(),
        wave: z.string(),
        waveState: z.enum(WAVE_STATES),
        startsAt: z.string(),
        deadlineAt: z.string(),
        targetState: z.enum(TARGET_STATES),
      })
      .nullable()
      .openapi({ description: 'The live rollout the site is in (scheduled, running or paused), or null' }),
  })
  .openapi('SiteRollout');

const controlResponses = {
  200: jsonResponse(Moved.passthrough(), 'Done'),
  ...errors(400, 401, 403, 404, 409, 422),
};
const control = <P extends string>(path: P, summary: string) =>
  createRoute({
    method: 'post',
    path: `/rollouts/{id}/${path}` as `/rollouts/{id}/${P}`,
    tags: ['rollouts'],
    summary,
    request: { params: IdParam },
    responses: controlResponses,
  });
// Control bodies are optional and read by optionalJson (below); the schema here documents them.
const controlWithBody = <P extends string, B extends z.ZodType>(path: P, summary: string, body: B) =>
  createRoute({
    method: 'post',
    path: `/rollouts/{id}/${path}` as `/rollouts/{id}/${P}`,
    tags: ['rollouts'],
    summary,
    request: { params: IdParam, body: optionalJsonBody(body) },
    responses: controlResponses,
  });
/** DELETE of one object by id: 204, nothing to say. */
const removeRoute = <P extends string>(path: P, tag: string, summary: string) =>
  createRoute({
    method: 'delete',
    path,
    tags: [tag],
    summary,
    request: { params: IdParam },
    responses: { 204: { description: 'Removed' }, ...errors(400, 401, 403, 404) },
  });
const ResumeInput = z.object({ deadlineAt: z.iso.datetime({ offset: true }).optional() }).strict();
const RetryInput = z.object({ siteIds: z.array(z.uuid()).max(100_000).optional() }).strict();
const RollbackInput = z
  .object({
    releaseId: z.uuid().optional(),
    deadlineHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 90)
      .optional(),
  })
  .strict();

export const rolloutRoutes = base
  .openapi(
    createRoute({
      method: 'get',
      path: '/sites/{id}/rollout',
      tags: ['rollouts'],
      summary:
        'The live rollout a site is in: release, wave, start and deadline (anyone who sees the site, coordinators included)',
      request: { params: IdParam },
      responses: { 200: jsonResponse(SiteRollout, 'The rollout, or null'), ...errors(401, 404) },
    }),
    async (c) =>
      c.json(
        await siteRollout({ ctx: serviceCtx(c, 'fleet:read'), input: { siteId: c.req.valid('param').id } }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/rollouts/preview',
      tags: ['rollouts'],
      summary:
        'What a plan would do: sites per wave, bytes and download times, sneakernet sites, conflicts (nothing is written)',
      request: { body: jsonBody(PlanInput) },
      responses: { 200: jsonResponse(Preview, 'The preview'), ...errors(400, 401, 403, 404, 409) },
    }),
    async (c) =>
      c.json(await previewRollout({ ctx: ctxFor(c, 'fleet:write'), input: c.req.valid('json') }), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/rollouts',
      tags: ['rollouts'],
      summary: 'Create a rollout from a plan and schedule it (or save a draft)',
      request: { body: jsonBody(CreateRolloutInput) },
      responses: {
        201: jsonResponse(
          z.object({ id: z.string(), state: z.string(), seed: z.string(), sites: z.number() }),
          'Created',
        ),
        ...errors(400, 401, 403, 404, 409, 422),
      },
    }),
    async (c) =>
      c.json(await createRollout({ ctx: ctxFor(c, 'fleet:write'), input: c.req.valid('json') }), 201),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/rollouts',
      tags: ['rollouts'],
      summary: 'Rollouts, newest first, with counts per target state',
      responses: {
        200: jsonResponse(listOf(RolloutSummary), 'Rollouts'),
        ...errors(401, 403),
      },
    }),
    async (c) => c.json({ items: await listRollouts({ ctx: ctxFor(c, 'fleet:read') }) }, 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/rollouts/{id}',
      tags: ['rollouts'],
      summary: 'A rollout: policy, waves with live counts, timeline',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Rollout, 'The rollout'), ...errors(400, 401, 403, 404) },
    }),
    async (c) => c.json(await getRollout({ ctx: ctxFor(c, 'fleet:read'), input: c.req.valid('param') }), 200),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/rollouts/{id}/attention',
      tags: ['rollouts'],
      summary: 'Sites needing attention: failed, rolled back, overdue, silent',
      request: {
        params: IdParam,
        query: z.object({
          limit: z.coerce.number().int().min(1).max(500).default(100),
          after: z.string().max(64).optional(),
        }),
      },
      responses: {
        200: jsonResponse(
          z.object({ items: z.array(Attention), nextAfter: z.string().nullable() }),
          'A page, by site code',
        ),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) =>
      c.json(
        await listAttention({
          ctx: ctxFor(c, 'fleet:read'),
          input: { ...c.req.valid('param'), ...c.req.valid('query') },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/rollouts/{id}/attention.csv',
      tags: ['rollouts'],
      summary: 'The attention list as CSV, for field teams',
      request: { params: IdParam },
      responses: {
        200: { description: 'CSV', content: { 'text/csv': { schema: z.string() } } },
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const file = await exportAttentionCsv({ ctx: ctxFor(c, 'fleet:read'), input: c.req.valid('param') });
      return csvAttachment(c, file);
    },
  )
  .openapi(controlWithBody('pause', 'Pause: no further site is asked to install', Reason), async (c) =>
    c.json(
      await pauseRollout({
        ctx: ctxFor(c, 'fleet:write'),
        input: { ...c.req.valid('param'), ...(await optionalJson(c, Reason)) },
      }),
      200,
    ),
  )
  .openapi(
    controlWithBody(
      'resume',
      'Resume: paused and failed waves open again (optionally with a new deadline)',
      ResumeInput,
    ),
    async (c) =>
      c.json(
        await resumeRollout({
          ctx: ctxFor(c, 'fleet:write'),
          input: { ...c.req.valid('param'), ...(await optionalJson(c, ResumeInput)) },
        }),
        200,
      ),
  )
  .openapi(control('advance', 'Advance now: the current wave counts as done and the next opens'), async (c) =>
    c.json(await advanceRollout({ ctx: ctxFor(c, 'fleet:write'), input: c.req.valid('param') }), 200),
  )
  .openapi(controlWithBody('cancel', 'Cancel: no more sites are asked; sites are freed', Reason), async (c) =>
    c.json(
      await cancelRollout({
        ctx: ctxFor(c, 'fleet:write'),
        input: { ...c.req.valid('param'), ...(await optionalJson(c, Reason)) },
      }),
      200,
    ),
  )
  .openapi(control('schedule', 'Schedule a draft'), async (c) =>
    c.json(await scheduleDraft({ ctx: ctxFor(c, 'fleet:write'), input: c.req.valid('param') }), 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/rollouts/{id}/retry',
      tags: ['rollouts'],
      summary: 'Try failed, rolled-back and overdue sites again (all, or the ones named)',
      request: { params: IdParam, body: optionalJsonBody(RetryInput) },
      responses: {
        200: jsonResponse(z.object({ id: z.string(), retried: z.number() }), 'Done'),
        ...errors(400, 401, 403, 404, 409),
      },
    }),
    async (c) =>
      c.json(
        await retryTargets({
          ctx: ctxFor(c, 'fleet:write'),
          input: { ...c.req.valid('param'), ...(await optionalJson(c, RetryInput)) },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/rollouts/{id}/exclude',
      tags: ['rollouts'],
      summary: 'Take one site out of the rollout',
      request: {
        params: IdParam,
        body: jsonBody(
          z.object({ siteId: z.uuid(), reason: z.string().trim().max(500).optional() }).strict(),
        ),
      },
      responses: {
        200: jsonResponse(z.object({ id: z.string(), siteId: z.string(), state: z.string() }), 'Excluded'),
        ...errors(400, 401, 403, 404, 409),
      },
    }),
    async (c) =>
      c.json(
        await excludeSite({
          ctx: ctxFor(c, 'fleet:write'),
          input: { ...c.req.valid('param'), ...c.req.valid('json') },
        }),
        200,
      ),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/rollouts/{id}/rollback',
      tags: ['rollouts'],
      summary:
        'Roll back: a new rollout of the previous release to exactly the sites that installed this one',
      request: { params: IdParam, body: optionalJsonBody(RollbackInput) },
      responses: {
        201: jsonResponse(
          z.object({
            id: z.string(),
            state: z.string(),
            sites: z.number(),
            rollbackOf: z.string(),
            releaseId: z.string(),
          }),
          'The rollback rollout',
        ),
        ...errors(400, 401, 403, 404, 409, 422),
      },
    }),
    async (c) => {
      const out = await rollbackRollout({
        ctx: ctxFor(c, 'fleet:write'),
        input: { ...c.req.valid('param'), ...(await optionalJson(c, RollbackInput)) },
      });
      return c.json(
        {
          id: out.id,
          state: out.state,
          sites: out.sites,
          rollbackOf: out.rollbackOf,
          releaseId: out.releaseId,
        },
        201,
      );
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/blackout-dates',
      tags: ['rollouts'],
      summary: 'Days on which no wave opens and no site is asked to install',
      responses: {
        200: jsonResponse(listOf(Blackout), 'Blackout dates'),
        ...errors(401, 403),
      },
    }),
    async (c) => c.json({ items: await listBlackouts({ ctx: ctxFor(c, 'fleet:read') }) }, 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/blackout-dates',
      tags: ['rollouts'],
      summary: 'Add blackout dates (UTC days, inclusive)',
      request: {
        body: jsonBody(
          z
            .object({ startsOn: Day, endsOn: Day, reason: z.string().trim().max(200).default('') })
            .strict()
            .refine((b) => b.endsOn >= b.startsOn, {
              message: 'The last day comes on or after the first.',
              path: ['endsOn'],
            }),
        ),
      },
      responses: { 201: jsonResponse(Blackout, 'Added'), ...errors(400, 401, 403) },
    }),
    async (c) =>
      c.json(await addBlackout({ ctx: ctxFor(c, 'fleet:write'), input: c.req.valid('json') }), 201),
  )
  .openapi(removeRoute('/blackout-dates/{id}', 'rollouts', 'Remove blackout dates'), async (c) => {
    await deleteBlackout({ ctx: ctxFor(c, 'fleet:write'), input: c.req.valid('param') });
    return c.body(null, 204);
  })
  .openapi(
    createRoute({
      method: 'get',
      path: '/webhooks',
      tags: ['webhooks'],
      summary: 'Webhooks of the organisation',
      responses: {
        200: jsonResponse(listOf(Webhook), 'Webhooks'),
        ...errors(401, 403),
      },
    }),
    async (c) => c.json({ items: await listWebhooks({ ctx: ctxFor(c, 'tokens:manage') }) }, 200),
  )
  .openapi(
    createRoute({
      method: 'post',
      path: '/webhooks',
      tags: ['webhooks'],
      summary: 'Add a webhook; its signing secret is shown once',
      request: {
        body: jsonBody(
          z
            .object({
              url: z.string().trim().min(1).max(2000),
              events: z.array(z.enum(WEBHOOK_EVENTS)).min(1),
            })
            .strict()
            .openapi('CreateWebhookInput'),
        ),
      },
      responses: {
        201: jsonResponse(Webhook.extend({ secret: z.string() }), 'Created'),
        ...errors(400, 401, 403),
      },
    }),
    async (c) =>
      c.json(
        await createWebhook({
          ctx: ctxFor(c, 'tokens:manage'),
          box: c.var.deps.secretBox,
          input: c.req.valid('json'),
          allowHttp: c.var.deps.allowHttpWebhooks ?? false,
        }),
        201,
      ),
  )
  .openapi(removeRoute('/webhooks/{id}', 'webhooks', 'Remove a webhook'), async (c) => {
    await deleteWebhook({ ctx: ctxFor(c, 'tokens:manage'), input: c.req.valid('param') });
    return c.body(null, 204);
  })
  .openapi(
    createRoute({
      method: 'get',
      path: '/webhooks/{id}/deliveries',
      tags: ['webhooks'],
      summary: 'The delivery log of a webhook, newest first',
      request: {
        params: IdParam,
        query: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
      },
      responses: {
        200: jsonResponse(listOf(Delivery), 'Deliveries'),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) =>
      c.json(
        {
          items: await listDeliveries({
            ctx: ctxFor(c, 'tokens:manage'),
            input: { ...c.req.valid('param'), ...c.req.valid('query') },
          }),
        },
        200,
      ),
  );

/** Control bodies are optional: no body (or an empty one) is `{}`; a body given must be valid. */
async function optionalJson<T extends z.ZodType>(c: AppContext, schema: T): Promise<z.infer<T>> {
  const text = await c.req.text();
  if (!text.trim()) return schema.parse({});
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AppError('invalid', 'MALFORMED_JSON', 'The body is not valid JSON.');
  }
  const r = schema.safeParse(parsed);
  if (!r.success) {
    throw new ValidationError(
      'The request body is not valid.',
      r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    );
  }
  return r.data;
}

export { PolicyInput };
