import { z } from '@hono/zod-openapi';

/** The plan of a rollout, shared by preview and create (and so by the OpenAPI document). */
const names = (what: string) =>
  z.array(z.string().trim().min(1).max(100)).max(500).optional().openapi({ description: what });

export const WaveSelectorInput = z
  .object({
    all: z.boolean().optional().openapi({ description: 'Every site not taken by an earlier wave' }),
    regions: names('Sites in any of these regions'),
    districts: names('Sites in any of these districts'),
    tags: names('Sites with any of these tags'),
    siteCodes: z
      .array(z.string().trim().min(1).max(64))
      .max(10_000)
      .optional()
      .openapi({ description: 'These sites, by code (added to what the filters match)' }),
    excludeCodes: z
      .array(z.string().trim().min(1).max(64))
      .max(10_000)
      .optional()
      .openapi({ description: 'Never these sites' }),
    share: z
      .number()
      .gt(0, 'A share is more than 0 %.')
      .max(100, 'A share is at most 100 %.')
      .optional()
      .openapi({ description: 'Percent of the matching sites, chosen reproducibly from the rollout seed' }),
    count: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .openapi({ description: 'At most this many of the matching sites, chosen reproducibly' }),
  })
  .strict()
  .refine(
    (s) =>
      s.all ||
      (s.regions?.length ?? 0) +
        (s.districts?.length ?? 0) +
        (s.tags?.length ?? 0) +
        (s.siteCodes?.length ?? 0) >
        0,
    {
      message: 'A wave needs a selector: all remaining sites, regions, districts, tags or site codes.',
    },
  )
  .refine((s) => s.share === undefined || s.count === undefined, {
    message: 'Give a share or a count, not both.',
  })
  .openapi('WaveSelector');

export const WaveInput = z
  .object({
    name: z.string().trim().min(1).max(100),
    selector: WaveSelectorInput,
    startsAt: z.iso.datetime({ offset: true }),
    deadlineAt: z.iso.datetime({ offset: true }),
  })
  .strict()
  .refine((w) => Date.parse(w.deadlineAt) > Date.parse(w.startsAt), {
    message: 'The deadline comes after the start.',
    path: ['deadlineAt'],
  });

export const PolicyInput = z
  .object({
    successThreshold: z
      .number()
      .gt(0, 'The success threshold is a share above 0.')
      .max(1, 'The success threshold is a share of at most 1 (100 %).')
      .default(0.95),
    failureThreshold: z
      .number()
      .gt(0, 'The failure threshold is a share above 0.')
      .max(1, 'The failure threshold is a share of at most 1 (100 %).')
      .default(0.1),
    autoAdvance: z.boolean().default(true),
    soakMinutes: z
      .number()
      .int()
      .min(0)
      .max(60 * 24 * 30)
      .default(60),
    bundleLeadHours: z
      .number()
      .int()
      .min(0)
      .max(24 * 90)
      .default(72),
    buildBundles: z.boolean().default(true),
  })
  .strict()
  .openapi('RolloutPolicy');

export const PlanInput = z
  .object({
    name: z.string().trim().min(1).max(200),
    releaseId: z.uuid(),
    seed: z
      .string()
      .trim()
      .min(1)
      .max(64)
      .regex(/^[\w.-]+$/)
      .optional()
      .openapi({ description: 'Makes the share/count choice reproducible; preview answers the one it used' }),
    policy: PolicyInput.default({
      successThreshold: 0.95,
      failureThreshold: 0.1,
      autoAdvance: true,
      soakMinutes: 60,
      bundleLeadHours: 72,
      buildBundles: true,
    }),
    waves: z.array(WaveInput).min(1, 'A rollout needs at least one wave.').max(20),
  })
  .strict()
  .openapi('RolloutPlan');
export type PlanInput = z.infer<typeof PlanInput>;

export const CreateRolloutInput = PlanInput.extend({
  draft: z
    .boolean()
    .default(false)
    .openapi({ description: 'Save without scheduling (no site is reserved yet)' }),
}).openapi('CreateRolloutInput');
export type CreateRolloutInput = z.infer<typeof CreateRolloutInput>;
