// How the dashboard talks to the API: the typed client (`hc<AppType>`), same-origin cookie for
// credentials, the session's CSRF token on every write, and every failure as an ApiError.
import { hc, type ClientResponse } from 'hono/client';
import type { SuccessStatusCode } from 'hono/utils/http-status';
import type { AppType } from '@outpost/api';
import { get } from 'svelte/store';
import { t } from '$lib/i18n';
import { ApiError } from './errors';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

interface ApiHooks {
  /** The CSRF token of the current session, sent as `x-csrf-token` on writes. */
  csrfToken(): string | null;
  /** Called on a 401 from any call that needs a session: it is gone, go to /login. */
  unauthenticated(): void;
}

let hooks: ApiHooks = { csrfToken: () => null, unauthenticated: () => {} };

/** Wires the client to the session (done once by `session.svelte.ts`, which owns the token). */
export function configureApi(h: ApiHooks) {
  hooks = h;
}

function apiFetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const method = (init.method ?? 'GET').toUpperCase();
  const csrf = hooks.csrfToken();
  if (WRITE_METHODS.has(method) && csrf) headers.set('x-csrf-token', csrf);
  return fetch(input, { ...init, headers, credentials: 'same-origin' });
}

const client = hc<AppType>('/', { fetch: apiFetch });
export const v1 = client.api.v1;

type SuccessBody<R> =
  R extends ClientResponse<infer T, infer S, infer _F> ? (S extends SuccessStatusCode ? T : never) : never;

export async function send<R extends ClientResponse<unknown, number, string>>(
  pending: Promise<R>,
  opts: { mayBeSignedOut?: boolean } = {},
): Promise<SuccessBody<R>> {
  let res: R;
  try {
    res = await pending;
  } catch {
    throw new ApiError(0, 'NETWORK', 'Outpost cannot be reached. Check the connection and try again.');
  }
  if (res.ok) return (await res.json()) as SuccessBody<R>;
  const body: unknown = await res.json().catch(() => null);
  const err = ApiError.fromEnvelope(res.status, body);
  if (res.status === 401 && !opts.mayBeSignedOut) hooks.unauthenticated();
  throw err;
}

/** Progress and cancelling for a file sent as a raw request body. */
export interface UploadOptions {
  /** Bytes of the file sent so far (fetch cannot report upload progress; XMLHttpRequest can). */
  onProgress?: (sent: number, total: number) => void;
  /** The whole file is sent; the server is working on it. */
  onUploaded?: () => void;
  signal?: AbortSignal;
}

/**
 * POSTs a file as the raw body, with the session's CSRF token and upload progress. Resolves with
 * whatever the server answered (the caller decides what is a success); rejects only when there was
 * no answer: a broken connection (NETWORK) or a cancel (ABORTED, with `cancelled` as its message).
 */
export function uploadFile(
  path: string,
  file: Blob,
  contentType: string,
  opts: UploadOptions & { cancelled: string },
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('content-type', contentType);
    const csrf = hooks.csrfToken();
    if (csrf) xhr.setRequestHeader('x-csrf-token', csrf);
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.upload.onload = () => opts.onUploaded?.();
    xhr.onerror = () => reject(new ApiError(0, 'NETWORK', get(t)('errors.uploadInterrupted')));
    xhr.onabort = () => reject(new ApiError(0, 'ABORTED', opts.cancelled));
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON: described by fromEnvelope */
      }
      if (xhr.status === 401) hooks.unauthenticated();
      resolve({ status: xhr.status, body });
    };
    opts.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}
