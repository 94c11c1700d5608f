import { z } from 'zod';
import { allowInsecureRegistries } from './lib/env-fields.ts';

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((v) => ['1', 'true', 'yes'].includes(v));

/** Every variable Outpost reads, checked once at the entry point; a bad value stops the start. */
export const NodeEnv = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8787),
    HOST: z.string().default('0.0.0.0'),
    OUTPOST_DATA_DIR: z.string().default('./.outpost'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    DATABASE_DRIVER: z.enum(['pglite', 'pg', 'neon']).optional(),
    NEON_WS_RELAY: z.string().optional(),
    S3_ENDPOINT: z.url().optional(),
    S3_BUCKET: z.string().min(3).default('outpost'),
    S3_REGION: z.string().default('us-east-1'),
    S3_ACCESS_KEY_ID: z.string().optional(),
    S3_SECRET_ACCESS_KEY: z.string().optional(),
    S3_FORCE_PATH_STYLE: bool.optional(),
    /** The object store's address as download managers reach it, for presigned links (default S3_ENDPOINT). */
    S3_PUBLIC_ENDPOINT: z.url().optional(),
    /** A connection to the object store silent this long is given up (builds fail and retry; downloads break off and resume). */
    S3_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().min(5).max(3600).default(300),
    OUTPOST_ORG_NAME: z.string().min(1).default('My organisation'),
    OUTPOST_ADMIN_EMAIL: z.email().optional(),
    OUTPOST_ADMIN_PASSWORD: z
      .string()
      .min(10, 'OUTPOST_ADMIN_PASSWORD needs at least 10 characters')
      .optional(),
    OUTPOST_SECRET_KEY: z.string().optional(),
    OUTPOST_SECURE_COOKIES: z.enum(['auto', 'true', 'false']).default('auto'),
    OUTPOST_WEB_DIR: z.string().optional(),
    OUTPOST_DEMO: bool.optional(),
    /** Where the demo's registry listens on loopback (its release pins images at this address, so keep it fixed). */
    OUTPOST_DEMO_REGISTRY_PORT: z.coerce.number().int().min(1).max(65535).default(5055),
    /** Bundle build runners inside this process (0: builds run only in `npm run build-runner` processes). */
    OUTPOST_WORKERS: z.coerce.number().int().min(0).max(16).default(1),
    /** The address sites reach the API at, written into bundles (`OUTPOST_API_URL` in the site's .env). */
    OUTPOST_PUBLIC_URL: z.url().optional(),
    /** How long a build runner holds a job without renewing; a dead runner's jobs are taken up after it. */
    OUTPOST_WORKER_LEASE_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
    OUTPOST_REGISTRY_ALLOW_INSECURE: allowInsecureRegistries,
    /** Behind a reverse proxy: take the client's address from X-Forwarded-For (sign-in throttling). */
    OUTPOST_TRUST_PROXY: bool.optional(),
    /** Sends invitation e-mails when set: smtp://user:pass@host:587 or smtps://…:465 (nodemailer URL). */
    SMTP_URL: z.url().optional(),
    /** The From address of those e-mails. */
    SMTP_FROM: z.string().min(3).default('Outpost <outpost@localhost>'),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    // Seconds between rollout scheduler ticks (waves opened, thresholds judged, webhooks sent); 0 turns it off.
    OUTPOST_SCHEDULER_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
  })
  .refine((e) => (e.DATABASE_DRIVER !== 'pg' && e.DATABASE_DRIVER !== 'neon') || e.DATABASE_URL, {
    message: 'DATABASE_URL is required when DATABASE_DRIVER is pg or neon',
    path: ['DATABASE_URL'],
  });

export type NodeEnv = z.infer<typeof NodeEnv>;

export function parseNodeEnv(raw: Record<string, string | undefined>): NodeEnv {
  const clean = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== ''));
  const r = NodeEnv.safeParse(clean);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`Outpost cannot start: the environment is not valid.\n${lines}`);
  }
  return r.data;
}
