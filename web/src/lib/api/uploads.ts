// Files sent as a raw request body with progress (fetch cannot report upload progress): the CSV
// import of sites and content packages.
import type { InferRequestType, InferResponseType } from 'hono/client';
import { get } from 'svelte/store';
import { t } from '$lib/i18n';
import { ApiError } from './errors';
import { uploadFile, v1, type UploadOptions } from './transport';

type ImportQuery = InferRequestType<typeof v1.sites.import.$post>['query'];
export type ImportMode = ImportQuery['mode'];
export type ImportReport = InferResponseType<typeof v1.sites.import.$post, 200>;
/** A zip of site content (forms, concepts, configuration) that a release carries into every bundle. */
export type ContentPackage = InferResponseType<(typeof v1)['content-packages']['$post'], 201>;

/** The outcome of a CSV import: 200 (done, possibly with bad rows listed) or 422 (all-or-nothing refused the file). */
export interface ImportOutcome {
  report: ImportReport;
  /** True when nothing was written because some rows are bad (all-or-nothing mode). */
  refused: boolean;
}

export interface ImportOptions extends UploadOptions {
  mode: ImportMode;
  dryRun: boolean;
}

/**
 * Uploads a CSV file as the raw body of POST /sites/import, with progress. Failures other than
 * a refused all-or-nothing import reject with an ApiError, like every other call.
 */
export async function importCsv(file: Blob, opts: ImportOptions): Promise<ImportOutcome> {
  const path = v1.sites.import.$path({
    query: { mode: opts.mode, ...(opts.dryRun ? { dryRun: 'true' as const } : {}) },
  });
  const { status, body } = await uploadFile(path, file, 'text/csv; charset=utf-8', {
    ...opts,
    cancelled: get(t)('errors.uploadCancelledCsv'),
  });
  if (status === 200) return { report: body as ImportReport, refused: false };
  const err = ApiError.fromEnvelope(status, body);
  if (status === 422 && isImportReport(err.details)) return { report: err.details, refused: true };
  throw err;
}

/** Uploads a .zip as a new content package (its name and version in the query), with progress. */
export async function uploadContentPackage(
  file: Blob,
  opts: UploadOptions & { name: string; version: string },
): Promise<ContentPackage> {
  const path = v1['content-packages'].$path({ query: { name: opts.name, version: opts.version } });
  const { status, body } = await uploadFile(path, file, 'application/zip', {
    ...opts,
    cancelled: get(t)('errors.uploadCancelledPackage'),
  });
  if (status >= 200 && status < 300) return body as ContentPackage;
  throw ApiError.fromEnvelope(status, body);
}

function isImportReport(d: unknown): d is ImportReport {
  return (
    typeof d === 'object' &&
    d !== null &&
    Array.isArray((d as ImportReport).errors) &&
    typeof (d as ImportReport).rows === 'number'
  );
}
