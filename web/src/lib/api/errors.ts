// Failures: the ApiError every call throws, and the one place it becomes words for the user.
import { get } from 'svelte/store';
import { t, type Translate } from '$lib/i18n';

/** One problem reported against one field of a request body (validation failures, conflicts). */
export interface FieldProblem {
  path: string;
  message: string;
  /** For a broken size limit (the API's validation details): `too_small` or `too_big`… */
  code?: string;
  /** …what was measured (`string`, `array`, `number`, …)… */
  origin?: string;
  /** …and the bound, included or not. */
  minimum?: number;
  maximum?: number;
  inclusive?: boolean;
  /** For a value not in its format (`invalid_format`): which, e.g. `email`. */
  format?: string;
}

/** Every failure of an API call: an error envelope from the server, or no answer at all (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null = null,
    readonly fields: FieldProblem[] = [],
    /** `error.details` as sent, for answers that carry more than field problems (e.g. an import report). */
    readonly details: unknown = undefined,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  static fromEnvelope(status: number, body: unknown): ApiError {
    const e = (
      body as { error?: { code?: unknown; message?: unknown; requestId?: unknown; details?: unknown } } | null
    )?.error;
    if (!e || typeof e.message !== 'string') {
      return new ApiError(status, 'UNEXPECTED', `Outpost answered with status ${status} and no explanation.`);
    }
    return new ApiError(
      status,
      String(e.code ?? 'UNKNOWN'),
      e.message,
      typeof e.requestId === 'string' ? e.requestId : null,
      fieldProblems(e.message, e.details),
      e.details,
    );
  }
}

// Validation failures carry `[{path, message}]`; some domain errors carry `{field}` naming the one culprit.
function fieldProblems(message: string, details: unknown): FieldProblem[] {
  if (Array.isArray(details)) {
    return details.filter(
      (d): d is FieldProblem => typeof d?.path === 'string' && typeof d?.message === 'string',
    );
  }
  const field = (details as { field?: unknown } | null)?.field;
  return typeof field === 'string' ? [{ path: field, message }] : [];
}

/** What the user should read about a failure, and which fields it concerns. */
export interface Problem {
  message: string;
  fields: FieldProblem[];
  status: number;
  code: string;
  requestId: string | null;
}

/**
 * The one place an error becomes words for the user: the error code in the person's language
 * (errors.code.<CODE> in the catalogues), else the API's own (English) message.
 */
export function handleError(err: unknown): Problem {
  const tr = get(t);
  if (!(err instanceof ApiError)) {
    console.error(err);
    return { message: tr('errors.client'), fields: [], status: 0, code: 'CLIENT', requestId: null };
  }
  let message = tr(`errors.code.${err.code}`, { default: err.message });
  if (err.code === 'VALIDATION_FAILED' && err.fields.length > 0) message = tr('errors.someFields');
  else if (err.status === 403 && err.code === 'FORBIDDEN') message = `${message} ${tr('errors.askAdmin')}`;
  const fields = err.fields.map((f) => ({ ...f, message: fieldWords(tr, f) ?? f.message }));
  return { message, fields, status: err.status, code: err.code, requestId: err.requestId };
}

/** What a size limit was counted in, as the catalogues name it (`errors.field.tooSmall.characters`). */
const MEASURES: Record<string, 'characters' | 'items' | 'number'> = {
  string: 'characters',
  array: 'items',
  set: 'items',
  number: 'number',
  int: 'number',
};

/**
 * A field's problem in the person's language (the API says it in English) when it is one the
 * catalogues word — a broken size limit, an e-mail address that is not one — or undefined.
 */
function fieldWords(tr: Translate, f: FieldProblem): string | undefined {
  if (f.code === 'invalid_format' && f.format === 'email') return tr('errors.field.email');
  const measure = f.origin ? MEASURES[f.origin] : undefined;
  if (!measure) return undefined;
  // Lengths and counts are always inclusive; a number's bound may not be (`> 0`).
  const variant = measure === 'number' && f.inclusive === false ? 'numberExclusive' : measure;
  // At least one character: the field was left empty.
  if (f.code === 'too_small' && measure === 'characters' && f.minimum === 1)
    return tr('errors.field.required');
  if (f.code === 'too_small' && typeof f.minimum === 'number')
    return tr(`errors.field.tooSmall.${variant}`, { values: { minimum: f.minimum } });
  if (f.code === 'too_big' && typeof f.maximum === 'number')
    return tr(`errors.field.tooBig.${variant}`, { values: { maximum: f.maximum } });
  return undefined;
}

/** The message for one field of a form, if the problem names it. */
export function fieldMessage(problem: Problem | null, path: string): string | undefined {
  return problem?.fields.find((f) => f.path === path)?.message;
}

/** `aria-invalid` for an input whose path the problem names; absent (not "false") on a valid one. */
export function ariaInvalid(problem: Problem | null, path: string): 'true' | undefined {
  return fieldMessage(problem, path) ? 'true' : undefined;
}

/** One site a bundle request could not be made for, and why (from a 422 UNKNOWN_SITES or DELTA_BASE_UNKNOWN). */
export interface SiteProblem {
  site: string;
  message: string;
}

/** The sites named by a refused bundle request, or null for any other failure. */
export function bundleRequestProblems(err: unknown): SiteProblem[] | null {
  if (
    !(err instanceof ApiError) ||
    !['UNKNOWN_SITES', 'DELTA_BASE_UNKNOWN'].includes(err.code) ||
    !Array.isArray(err.details)
  )
    return null;
  return err.details
    .map((d: { code?: unknown; value?: unknown; message?: unknown }) => ({
      site: typeof d?.code === 'string' ? d.code : typeof d?.value === 'string' ? d.value : '',
      message: typeof d?.message === 'string' ? d.message : '',
    }))
    .filter((d) => d.site !== '');
}

/** One reason a draft cannot be published yet; `line` points into the compose template. */
export interface PublishProblem {
  path: string;
  message: string;
  line?: number;
}

/** The problems of a 422 NOT_PUBLISHABLE answer to `api.releases.publish`, or null for any other failure. */
export function publishProblems(err: unknown): PublishProblem[] | null {
  if (!(err instanceof ApiError) || err.code !== 'NOT_PUBLISHABLE' || !Array.isArray(err.details))
    return null;
  return err.details
    .filter((d): d is PublishProblem => typeof d?.path === 'string' && typeof d?.message === 'string')
    .map((d) => ({
      path: d.path,
      message: d.message,
      ...(typeof d.line === 'number' ? { line: d.line } : {}),
    }));
}
