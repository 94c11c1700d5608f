// One HTTP exchange with a registry or its token service: every hop checked against the allowed
// destinations, redirects followed by hand, retries with backoff and Retry-After, and network
// failures put into words. Knows nothing of auth or of the Registry API's paths.
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from './errors.ts';
import { IdleTimeoutError } from './digest.ts';
import { assertAllowedUrl, forbiddenDestination, type AllowList } from './destination.ts';

export interface TransportOptions {
  /** The registry's name, for messages. */
  registry: string;
  allowInsecure: AllowList | undefined;
  fetch: typeof globalThis.fetch;
  /** Retries after the first attempt on 429, 5xx and network errors. */
  retries: number;
  /** Longest wait for an answer's headers. */
  timeoutMs: number;
  /** First backoff delay; doubles each retry, with jitter. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Cap on a `Retry-After` wait. */
  maxRetryAfterMs: number;
}

const MAX_REDIRECTS = 10;

export class RegistryTransport {
  readonly retries: number;
  readonly timeoutMs: number;
  private readonly registry: string;
  private readonly allowInsecure: AllowList | undefined;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxRetryAfterMs: number;

  constructor(options: TransportOptions) {
    this.registry = options.registry;
    this.allowInsecure = options.allowInsecure;
    this.fetchImpl = options.fetch;
    this.retries = options.retries;
    this.timeoutMs = options.timeoutMs;
    this.backoffMs = options.backoffMs;
    this.maxBackoffMs = options.maxBackoffMs;
    this.maxRetryAfterMs = options.maxRetryAfterMs;
  }

  /**
   * One HTTP exchange with retries (429, 5xx and network errors, with backoff and Retry-After)
   * and redirects followed by hand, so credentials never travel to another origin (a registry
   * redirects blobs to object storage, which rejects a foreign Authorization header).
   */
  async send(
    method: 'GET' | 'HEAD',
    url: string,
    headers: Record<string, string>,
    authorization: string | undefined,
    host = this.registry,
  ): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.followRedirects(method, url, headers, authorization);
      } catch (error) {
        const forbidden = forbiddenIn(error);
        if (forbidden) throw forbidden;
        const failure = describeNetworkError(error, this.timeoutMs);
        if (!failure.retryable || attempt >= this.retries) {
          throw new RegistryError('unreachable', `Cannot reach the registry ${host}: ${failure.reason}`, {
            cause: error,
          });
        }
        await sleep(this.backoff(attempt));
        continue;
      }
      if ((response.status === 429 || response.status >= 500) && attempt < this.retries) {
        const wait =
          retryAfterMs(response.headers.get('retry-after'), this.maxRetryAfterMs) ?? this.backoff(attempt);
        await discard(response);
        await sleep(wait);
        continue;
      }
      return response;
    }
  }

  /** A connection lost while reading a body, as the error to throw. */
  unreachable(error: unknown, context: string): RegistryError {
    if (error instanceof RegistryError) return error;
    const failure = describeNetworkError(error, this.timeoutMs);
    return new RegistryError(
      'unreachable',
      `Lost the connection to the registry ${this.registry} ${context}: ${failure.reason}`,
      { cause: error },
    );
  }

  private async followRedirects(
    method: 'GET' | 'HEAD',
    url: string,
    headers: Record<string, string>,
    authorization: string | undefined,
  ): Promise<Response> {
    let current = new URL(url);
    const origin = current.origin;
    for (let hop = 0; ; hop++) {
      // Every hop is checked: a registry, a token service or a redirect may name any address.
      assertAllowedUrl(current, this.allowInsecure);
      const sendHeaders = { ...headers };
      if (authorization && current.origin === origin) sendHeaders.authorization = authorization;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new IdleTimeoutError(this.timeoutMs)), this.timeoutMs);
      let response: Response;
      try {
        response = await this.fetchImpl(current, {
          method,
          headers: sendHeaders,
          redirect: 'manual',
          signal: controller.signal,
        });
      } finally {
        clearTimeout(timer);
      }
      const location = response.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(response.status) || !location) return response;
      await discard(response);
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryError(
          'protocol',
          `The registry ${this.registry} redirected more than ${MAX_REDIRECTS} times for ${url}`,
        );
      }
      try {
        current = new URL(location, current);
      } catch {
        throw forbiddenDestination('the redirect');
      }
    }
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}

/** Drops an answer's body unread. */
export async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // The body is of no use; a failure to drop it is not worth reporting.
  }
}

/** Milliseconds to wait from a `Retry-After` header (seconds or HTTP date), capped. */
export function retryAfterMs(value: string | null, cap: number): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  let ms: number;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const date = Date.parse(trimmed);
    if (Number.isNaN(date)) return undefined;
    ms = Math.max(0, date - Date.now());
  }
  return Math.min(ms, cap);
}

const NOT_RETRYABLE = new Set([
  'ENOTFOUND',
  'ERR_INVALID_URL',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'the connection was reset',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved (DNS failure)',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  EPIPE: 'the connection was closed',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'the answer stalled',
  UND_ERR_SOCKET: 'the connection was closed',
  ERR_SSL_WRONG_VERSION_NUMBER:
    'TLS failed (is it plain HTTP? then add it to OUTPOST_REGISTRY_ALLOW_INSECURE)',
};

/** The destination refusal in an error's cause chain (a refused DNS answer surfaces as fetch's TypeError). */
function forbiddenIn(error: unknown): RegistryError | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 6; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof RegistryError && e.kind === 'forbidden-address') return e;
    if ((e as { code?: unknown }).code === 'EOUTPOSTFORBIDDEN')
      return forbiddenDestination(
        String((e as Error).message).replace(/ is not an allowed registry address$/, ''),
      );
  }
  return undefined;
}

function describeNetworkError(error: unknown, timeoutMs: number): { reason: string; retryable: boolean } {
  if (error instanceof RegistryError) return { reason: error.message, retryable: false };
  const chain: unknown[] = [];
  for (let e: unknown = error; e && chain.length < 5; e = (e as { cause?: unknown }).cause) {
    chain.push(e);
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors[0]) chain.push(errors[0]);
  }
  for (const e of chain) {
    if (e instanceof IdleTimeoutError) return { reason: `no answer within ${timeoutMs} ms`, retryable: true };
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code))
        return { reason: `its TLS certificate is not trusted (${code})`, retryable: false };
      if (REASONS[code] || code.startsWith('E') || code.startsWith('UND_ERR')) {
        return { reason: REASONS[code] ?? code, retryable: !NOT_RETRYABLE.has(code) };
      }
    }
  }
  if (error instanceof Error && error.name === 'AbortError')
    return { reason: `no answer within ${timeoutMs} ms`, retryable: true };
  const last = chain[chain.length - 1];
  return { reason: last instanceof Error ? last.message : String(error), retryable: true };
}
