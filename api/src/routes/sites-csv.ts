import { createRoute, z } from '@hono/zod-openapi';
import { ErrorEnvelope, errors } from './schemas.ts';
import { authenticatedRouter, serviceCtx } from './auth-middleware.ts';
import { csvAttachment } from './csv.ts';
import { SiteFilterQuery } from './sites.ts';
import { AppError } from '../lib/errors.ts';
import { IMPORT_LIMITS, IMPORT_MODES, importSitesCsv } from '../services/sites/csv-import.ts';
import { exportSitesCsv } from '../services/sites/csv-export.ts';

/** The import streams its own body (up to `IMPORT_LIMITS.maxBytes`), so app.ts exempts it from the global body limit. */
export const SITE_IMPORT_PATH = '/api/v1/sites/import';

const ImportQuery = z.object({
  mode: z
    .enum(IMPORT_MODES, {
      error:
        'Choose mode=all-or-nothing (any bad row and nothing is written) or mode=partial (good rows are written).',
    })
    .openapi({
      description:
        '`all-or-nothing`: any bad row and nothing is written (422). `partial`: good rows are written, bad ones reported.',
    }),
  dryRun: z
    .enum(['true', 'false'])
    .optional()
    .transform((v) => v === 'true')
    .openapi({ description: 'Validate and count exactly as an import would, then roll back.' }),
});

const ImportIssue = z
  .object({
    row: z
      .number()
      .openapi({ description: 'Spreadsheet row: the header is row 1, the first data row is 2.' }),
    column: z.string().nullable(),
    message: z.string(),
  })
  .openapi('SiteImportIssue');

const ImportReport = z
  .object({
    mode: z.enum(IMPORT_MODES),
    dryRun: z.boolean(),
    rows: z.number(),
    created: z.number(),
    updated: z.number(),
    unchanged: z.number(),
    failed: z.number(),
    errors: z.array(ImportIssue).openapi({ description: `The first ${IMPORT_LIMITS.maxReported} problems.` }),
    errorsTruncated: z.boolean(),
    warnings: z.array(ImportIssue),
    warningsTruncated: z.boolean(),
  })
  .openapi('SiteImportReport');

const envelope = (description: string) => ({
  description,
  content: { 'application/json': { schema: ErrorEnvelope } },
});

function requireUtf8Csv(contentType: string | undefined) {
  const [type = '', ...params] = (contentType ?? '').split(';').map((p) => p.trim().toLowerCase());
  const charset = params
    .find((p) => p.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/"/g, '');
  if (type !== 'text/csv' || (charset && charset !== 'utf-8' && charset !== 'utf8')) {
    throw new AppError(
      'unsupported-media',
      'UNSUPPORTED_MEDIA_TYPE',
      'Send the file as the body, with Content-Type: text/csv (UTF-8).',
    );
  }
}

export const siteCsvRoutes = authenticatedRouter('/sites/import', '/sites/export.csv')
  .openapi(
    createRoute({
      method: 'post',
      path: '/sites/import',
      tags: ['sites'],
      summary: 'Create or update sites from a CSV file (upsert by code)',
      description:
        'The body is the CSV file itself, streamed. Columns (any order, names case-insensitive): code, name, region, district, ' +
        'facility_type, tags (separated by ; or |), connectivity, bandwidth_kbps, timezone, language (en, fr or pt), maintenance_window, latitude, longitude, ' +
        'contact_name, contact_phone, contact_email; the read-only columns of the export are ignored. An empty cell clears the field ' +
        '(or sets its default); a column left out is not touched on existing sites.',
      request: {
        query: ImportQuery,
        body: {
          required: true,
          content: { 'text/csv': { schema: z.string().openapi({ format: 'binary' }) } },
        },
      },
      responses: {
        200: {
          description: 'Imported (partial mode: with the rows that were not)',
          content: { 'application/json': { schema: ImportReport } },
        },
        ...errors(400, 401, 403, 413),
        415: envelope('The body is not text/csv in UTF-8'),
        422: envelope(
          'all-or-nothing: some rows are bad and nothing was written; `error.details` is the SiteImportReport',
        ),
      },
    }),
    async (c) => {
      const ctx = serviceCtx(c, 'fleet:write');
      const { mode, dryRun } = c.req.valid('query');
      requireUtf8Csv(c.req.header('content-type'));
      const declared = Number(c.req.header('content-length'));
      if (declared > IMPORT_LIMITS.maxBytes)
        throw new AppError(
          'too-large',
          'BODY_TOO_LARGE',
          `The file is larger than ${IMPORT_LIMITS.maxBytes} bytes; split it.`,
        );
      const body = c.req.raw.body;
      if (!body)
        throw new AppError(
          'invalid',
          'CSV_HEADER',
          'The file is empty; the first row must name the columns (code, name, …).',
        );
      return c.json(await importSitesCsv({ ctx, input: { body, mode, dryRun } }), 200);
    },
  )
  .openapi(
    createRoute({
      method: 'get',
      path: '/sites/export.csv',
      tags: ['sites'],
      summary: 'The sites matching the list filters, as CSV (re-importable)',
      request: { query: SiteFilterQuery },
      responses: {
        200: {
          description:
            'CSV: the import columns, then reported_version, reported_status, reported_at, target_version, status',
          content: { 'text/csv': { schema: z.string() } },
        },
        ...errors(400, 401),
      },
    }),
    async (c) => {
      const file = await exportSitesCsv({ ctx: serviceCtx(c, 'fleet:read'), input: c.req.valid('query') });
      return csvAttachment(c, file);
    },
  );
