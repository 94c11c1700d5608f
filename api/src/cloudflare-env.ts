import { z } from 'zod';
import { allowInsecureRegistries } from './lib/env-fields.ts';
import { parseSecretKey } from './lib/secret-box.ts';

/** The static-assets binding (`[assets] binding = "ASSETS"` in wrangler.toml). */
export interface AssetsFetcher {
  fetch(request: Request): Promise<Response>;
}

/**
 * Every variable, secret and binding the Cloudflare entry reads, checked once per isolate. Secrets
 * (`DATABASE_URL`, the S3 keys) come from `wrangler secret put`; the rest from `[vars]`.
 */
export const CloudflareEnv = z
  .object({
    DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
    S3_ENDPOINT: z.url().optional(),
    S3_BUCKET: z.string().min(3).default('outpost'),
    S3_REGION: z.string().min(1).default('auto'),
    S3_ACCESS_KEY_ID: z.string().min(1).optional(),
    S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
    S3_PUBLIC_ENDPOINT: z.url().optional(),
    // Where people reach the API, for the links it hands out (default: the request's origin).
    OUTPOST_PUBLIC_URL: z.url().optional(),
    OUTPOST_SECURE_COOKIES: z.enum(['auto', 'true', 'false']).default('auto'),
    OUTPOST_REGISTRY_ALLOW_INSECURE: allowInsecureRegistries,
    // 32 random bytes, base64 (`openssl rand -base64 32`); seals receipt keys and other secrets at rest.
    OUTPOST_SECRET_KEY: z.string().transform((v, ctx) => {
      try {
        return parseSecretKey(v);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be 32 bytes, base64 (openssl rand -base64 32)' });
        return z.NEVER;
      }
    }),
    // Development only: `host:port` of a WebSocket→TCP relay in front of a plain PostgreSQL
    // (wrangler dev against a local database). Never set in production, where Neon's proxy answers.
    NEON_WS_RELAY: z
      .string()
      .regex(/^[\w.-]+:\d{1,5}$/, 'must be host:port')
      .optional(),
    ASSETS: z
      .custom<AssetsFetcher>(
        (v) => typeof (v as AssetsFetcher | undefined)?.fetch === 'function',
        'must be an assets binding',
      )
      .optional(),
  })
  .refine((e) => Boolean(e.S3_ACCESS_KEY_ID) === Boolean(e.S3_SECRET_ACCESS_KEY), {
    message: 'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together',
    path: ['S3_SECRET_ACCESS_KEY'],
  });

export type CloudflareEnv = z.infer<typeof CloudflareEnv>;

export type ParsedCloudflareEnv = { ok: true; env: CloudflareEnv } | { ok: false; problems: string[] };

/**
 * Parses the bindings. Problems name the variable and the rule it breaks, never its value:
 * they are shown to callers and written to the log, and some of these values are secrets.
 */
export function parseCloudflareEnv(raw: unknown): ParsedCloudflareEnv {
  const clean = Object.fromEntries(
    Object.entries((raw ?? {}) as Record<string, unknown>).filter(([, v]) => v !== ''),
  );
  const r = CloudflareEnv.safeParse(clean);
  if (r.success) return { ok: true, env: r.data };
  return {
    ok: false,
    problems: r.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`),
  };
}
