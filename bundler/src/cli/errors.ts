/**
 * What the CLI tells a person when something stops it: one line, no stack trace. Commands throw
 * `CliError`; `describeError` turns anything else that is known (network, disk) into one too.
 */
export class CliError extends Error {
  override name = 'CliError';
  /** Exit code: 1 for a failed job (verification problems, failed bundles), 2 for a wrong command line. */
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, 2);
  }
}

const NETWORK = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

/** The errno-style code of an error or of the error that caused it (fetch wraps socket errors). */
export function errorCode(error: unknown): string | undefined {
  for (
    let e = error as { code?: unknown; cause?: unknown } | undefined, i = 0;
    e && i < 5;
    e = e.cause as typeof e, i++
  ) {
    if (typeof e.code === 'string') return e.code;
  }
  return undefined;
}

export function isNetworkError(error: unknown): boolean {
  const code = errorCode(error);
  return (
    (code !== undefined && NETWORK.has(code)) ||
    (error instanceof TypeError && error.message === 'fetch failed')
  );
}

/** One line for a person; `path` names the file being written when the error is about the disk. */
export function describeError(error: unknown): string {
  if (error instanceof CliError) return error.message;
  const code = errorCode(error);
  const e = error as { message?: string; path?: string };
  if (code === 'ENOSPC')
    return `The disk is full${e.path ? ` (writing ${e.path})` : ''}: free some space and run the same command again; it carries on where it stopped.`;
  if (code === 'EACCES' || code === 'EPERM')
    return `Not allowed to write or read ${e.path ?? 'a file'}: check the folder's permissions.`;
  if (code === 'ENOENT' && e.path) return `${e.path} does not exist.`;
  if (code === 'EROFS') return `${e.path ?? 'The target'} is on a read-only disk.`;
  return e.message ?? String(error);
}

/** `1.2 GB`, `340 kB`: decimal units, as disks and download pages count. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
