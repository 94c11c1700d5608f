import type { paths } from './api-types.generated.ts';
import { CliError, isNetworkError } from './errors.ts';

export interface ApiOptions {
  /** The Outpost server, e.g. `https://outpost.example.org` (a trailing `/api/v1` is accepted). */
  server: string;
  /** An API token (Settings → API tokens); sent as a bearer token, never printed. */
  token: string;
  fetch?: typeof globalThis.fetch;
}

interface ErrorEnvelope {
  error?: { code?: string; message?: string; details?: unknown };
}

/** A failed API call, with the server's error code; `describe` has already made the message plain. */
export class ApiError extends CliError {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/**
 * The few API calls the CLI makes, with the errors a person can act on: a server that cannot be
 * reached, a token it refuses (401) or a role that may not (403), and the server's own message otherwise.
 */
export class OutpostApi {
  readonly base: string;
  private readonly token: string;
  private readonly fetchImpl: typeof globalThis.fetch;

  constructor(options: ApiOptions) {
    let url: URL;
    try {
      url = new URL(options.server);
    } catch {
      throw new CliError(
        `"${options.server}" is not a server address; give one like https://outpost.example.org`,
        2,
      );
    }
    this.base = url
      .toString()
      .replace(/\/+$/, '')
      .replace(/\/api\/v1$/, '');
    this.token = options.token;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  /** A raw request to `/api/v1/<path>` (or an absolute URL) with the token; network failures become one plain line. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const url = /^https?:/.test(path) ? path : `${this.base}/api/v1${path}`;
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.token}`);
    headers.set('user-agent', 'outpost-cli');
    try {
      return await this.fetchImpl(url, { ...init, headers });
    } catch (error) {
      if (isNetworkError(error))
        throw new CliError(
          `Cannot reach the Outpost server at ${this.base}: ${networkReason(error)}. Check the address (--server or OUTPOST_URL) and the network.`,
        );
      throw error;
    }
  }

  async json<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
    const { json, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (json !== undefined) headers.set('content-type', 'application/json');
    const res = await this.request(path, {
      ...rest,
      headers,
      ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
    });
    if (!res.ok) throw await this.failure(res);
    return (await res.json()) as T;
  }

  /** The error a non-2xx response stands for. */
  async failure(res: Response): Promise<ApiError> {
    let body: ErrorEnvelope = {};
    try {
      body = (await res.json()) as ErrorEnvelope;
    } catch {
      /* not JSON: a proxy's page */
    }
    const code = body.error?.code ?? null;
    const message = body.error?.message;
    if (res.status === 401) {
      return new ApiError(
        'The server refused the API token (401): check OUTPOST_TOKEN or --token; tokens are made in Outpost → Settings → API tokens.',
        401,
        code,
      );
    }
    if (res.status === 403)
      return new ApiError(
        `The API token may not do this (403)${message ? `: ${message}` : ''}; use a token with a role that may.`,
        403,
        code,
      );
    if (!message)
      return new ApiError(
        `The server answered ${res.status} ${res.statusText}${res.status === 404 ? ` — is ${this.base} an Outpost server?` : ''}`,
        res.status,
        code,
      );
    return new ApiError(message, res.status, code, body.error?.details);
  }
}

function networkReason(error: unknown): string {
  const codes: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'the name could not be looked up',
    ECONNRESET: 'the connection was cut',
    ETIMEDOUT: 'no answer in time',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
  };
  for (
    let e = error as { code?: string; cause?: unknown } | undefined, i = 0;
    e && i < 5;
    e = e.cause as typeof e, i++
  ) {
    if (e.code && codes[e.code]) return codes[e.code]!;
  }
  const cause = (error as { cause?: { message?: string } }).cause?.message;
  return cause ? cause.replace(/^Error: /, '') : 'no connection';
}

// ---- The API's shapes the CLI reads: from its OpenAPI document (api-types.generated.ts) ----

/** The JSON body of a response to `method path` with `status`, as the API's OpenAPI document gives it. */
export type ApiJson<P extends keyof paths, M extends 'get' | 'post', S extends number> = paths[P][M] extends {
  responses: { [K in S]: { content: { 'application/json': infer T } } };
}
  ? T
  : never;

export type BundleView = ApiJson<'/api/v1/bundles/{id}', 'get', 200>;
export type BuildState = BundleView['state'];
export type ReleaseSummary = ApiJson<'/api/v1/releases', 'get', 200>['items'][number];
export type RequestBundlesResult = ApiJson<'/api/v1/bundles', 'post', 202>;
export type BundleLinks = ApiJson<'/api/v1/bundles/{id}/links', 'get', 200>;
export type BundlePage = ApiJson<'/api/v1/bundles', 'get', 200>;
export type BundleStatus = ApiJson<'/api/v1/releases/{id}/bundle-status', 'get', 200>;

/** The release of this version, or an error that lists the versions there are. */
export async function findRelease(api: OutpostApi, version: string): Promise<ReleaseSummary> {
  const { items: matches } = await api.json<{ items: ReleaseSummary[] }>(
    `/releases?version=${encodeURIComponent(version)}`,
  );
  const found = matches.find((r) => r.version === version) ?? matches[0];
  if (!found) {
    const { items } = await api.json<{ items: ReleaseSummary[] }>('/releases');
    const known = items
      .filter((r) => r.state !== 'draft')
      .map((r) => r.version)
      .slice(0, 10);
    throw new CliError(
      `There is no release ${version} in this organisation${known.length ? ` (published: ${known.join(', ')})` : ''}.`,
    );
  }
  return found;
}

/** POST /bundles, with an unknown site named plainly. */
export async function requestBundles(
  api: OutpostApi,
  input: Record<string, unknown>,
): Promise<RequestBundlesResult> {
  try {
    return await api.json<RequestBundlesResult>('/bundles', { method: 'POST', json: input });
  } catch (error) {
    if (error instanceof ApiError && error.code === 'UNKNOWN_SITES' && Array.isArray(error.details)) {
      const values = (error.details as { value?: string }[]).map((d) => d.value).filter(Boolean);
      throw new CliError(
        `Unknown site${values.length === 1 ? '' : 's'}: ${values.join(', ')} (or archived); nothing was asked for.`,
      );
    }
    throw error;
  }
}

/** Every bundle of a release, page by page (the list is filtered by the server, 500 at a time). */
export async function listReleaseBundles(api: OutpostApi, releaseId: string): Promise<BundleView[]> {
  const out: BundleView[] = [];
  let cursor: string | null = null;
  do {
    const page: BundlePage = await api.json(
      `/bundles?releaseId=${releaseId}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}
