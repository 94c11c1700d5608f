import { createRoute, z } from '@hono/zod-openapi';
import { errors, jsonBody, jsonResponse } from './schemas.ts';
import { authenticatedRouter, serviceCtx } from './auth-middleware.ts';
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

/** A code and a file answer alike: 201 the first time, 200 when that receipt was recorded already. */
const recorded = {
  201: jsonResponse(ReceiptResult, 'Recorded'),
  200: jsonResponse(ReceiptResult, 'Already recorded earlier'),
};

export function receiptRoutes() {
  const failures = new RateLimiter(WRONG_CODES_PER_HOUR, 3600_000);
  const base = authenticatedRouter('/receipts', '/receipts/*');
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
          ...recorded,
          ...errors(400, 401, 403, 404, 409, 429),
          422: jsonResponse(z.any(), 'The code does not match this site'),
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
          ...recorded,
          ...errors(400, 401, 403, 404, 413, 429),
          422: jsonResponse(z.any(), 'The file was changed or is not for this site'),
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
