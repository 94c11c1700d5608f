import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { AppEnv } from './app-env.ts';
import { errors, jsonBody, jsonResponse } from './schemas.ts';
import { authenticate, serviceCtx } from './auth-middleware.ts';
import { RateLimiter } from '../lib/rate-limit.ts';
import { AppError } from '../lib/errors.ts';
import { submitReceiptCode, submitReceiptFile } from '../services/receipts/submit.ts';
import { RECEIPT_OUTCOMES } from '../services/receipts/code.ts';

const ReceiptCodeInput = z
  .object({
    siteId: z.uuid(),
    code: z.string().min(1).max(64).openapi({ example: '8AAZ-8XJM-ZZAE-WWJS' }),
  })
  .strict()
  .openapi('ReceiptCodeInput');

const ReceiptResult = z
  .object({
    duplicate: z
      .boolean()
      .openapi({ description: 'True when this receipt was already recorded; nothing new was written' }),
    site: z.object({ id: z.string(), code: z.string() }),
    version: z.string(),
    outcome: z.enum(RECEIPT_OUTCOMES),
    at: z.string(),
    report: z.object({ id: z.string(), source: z.string(), receivedAt: z.string() }).loose(),
  })
  .openapi('ReceiptResult');

const WRONG_CODES_PER_HOUR = 10;

export function receiptRoutes() {
  const failures = new RateLimiter(WRONG_CODES_PER_HOUR, 3600_000);
  const base = new OpenAPIHono<AppEnv>();
  base.use('/receipts', authenticate);
  base.use('/receipts/*', authenticate);
  return base
    .openapi(
      createRoute({
        method: 'post',
        path: '/receipts',
        tags: ['receipts'],
        summary: 'Confirm an install with the receipt code the site printed',
        description:
          'See docs/receipt-codes.md. A mistyped code is refused before any check against the key; repeating a recorded code is harmless.',
        request: { body: jsonBody(ReceiptCodeInput) },
        responses: {
          201: jsonResponse(ReceiptResult, 'Recorded'),
          200: jsonResponse(ReceiptResult, 'Already recorded earlier'),
          ...errors(400, 401, 403, 404, 409, 429),
          422: {
            description: 'The code does not match this site',
            content: { 'application/json': { schema: z.any() } },
          },
        },
      }),
      async (c) => {
        const r = await submitReceiptCode({
          ctx: serviceCtx(c, 'receipts:submit'),
          deps: { box: c.var.deps.secretBox, failures },
          input: c.req.valid('json'),
        });
        return r.duplicate ? c.json(r, 200) : c.json(r, 201);
      },
    )
    .openapi(
      createRoute({
        method: 'post',
        path: '/receipts/file',
        tags: ['receipts'],
        summary: 'Upload the receipt file the install wrote (its exact bytes, application/json)',
        responses: {
          201: jsonResponse(ReceiptResult, 'Recorded'),
          200: jsonResponse(ReceiptResult, 'Already recorded earlier'),
          ...errors(400, 401, 403, 404, 413, 429),
          422: {
            description: 'The file was changed or is not for this site',
            content: { 'application/json': { schema: z.any() } },
          },
        },
      }),
      async (c) => {
        if (!/^application\/json\b/i.test(c.req.header('content-type') ?? '')) {
          throw new AppError(
            'unsupported-media',
            'UNSUPPORTED_MEDIA_TYPE',
            'Send the receipt file as application/json, exactly as the site wrote it.',
          );
        }
        const r = await submitReceiptFile({
          ctx: serviceCtx(c, 'receipts:submit'),
          deps: { box: c.var.deps.secretBox, failures },
          input: { text: await c.req.text() },
        });
        return r.duplicate ? c.json(r, 200) : c.json(r, 201);
      },
    );
}
