/**
 * What went wrong, in the domain's words. Services and libraries throw these; they know nothing of
 * HTTP, and `app.onError` gives each kind its status (invalid → 400 … unavailable → 503) and the
 * error envelope. `code` and the message go on the wire as they are.
 */
export type ErrorKind =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'gone'
  | 'too-large'
  | 'unsupported-media'
  | 'range-not-satisfiable'
  | 'unprocessable'
  | 'rate-limited'
  | 'unavailable';

/** A domain error with a code of its own; the classes below are the common ones with their usual code. */
export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The one shape of `details` for problems with particular fields: a list, as validation failures use. */
export function fieldIssue(path: string, message: string, extra: Record<string, unknown> = {}) {
  return [{ path, message, ...extra }];
}

export class NotFoundError extends AppError {
  constructor(what: string, id?: string) {
    super('not-found', 'NOT_FOUND', id ? `No ${what} with id ${id}.` : `No such ${what}.`);
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: unknown) {
    super('invalid', 'VALIDATION_FAILED', message, details);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, details?: unknown) {
    super('conflict', 'CONFLICT', message, details);
  }
}

export class UnauthenticatedError extends AppError {
  constructor(message = 'Sign in or send a valid API token.', code = 'UNAUTHENTICATED') {
    super('unauthenticated', code, message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'Your role does not allow this.') {
    super('forbidden', 'FORBIDDEN', message);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('rate-limited', 'TOO_MANY_REQUESTS', message);
  }
}

/** A byte range that starts past the end of a stored object of `size` bytes (null: not known). */
export class RangeNotSatisfiableError extends AppError {
  constructor(readonly size: number | null) {
    super('range-not-satisfiable', 'RANGE_NOT_SATISFIABLE', 'The range starts past the end of the file.');
  }
}

/** A unique constraint refused the write (PostgreSQL 23505), on any driver (some wrap it in `cause`). */
export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; cause?: { code?: string } } | null;
  return err?.code === '23505' || err?.cause?.code === '23505';
}
