import { z } from 'zod';
import { parseAllowInsecure } from '@outpost/bundler';

/**
 * `OUTPOST_REGISTRY_ALLOW_INSECURE`, read the same way on Node and on Workers: a `host:port` list of
 * self-hosted registries the server may reach over plain HTTP or at loopback, private or link-local
 * addresses; every other registry address must be https and public.
 */
export const allowInsecureRegistries = z
  .string()
  .transform((v, ctx) => {
    try {
      return parseAllowInsecure(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  })
  .default([]);
