// The one HTTP client of the dashboard: typed from the API's own routes (`hc<AppType>`), same-origin
// cookie for credentials, the session's CSRF token on every write, one error type for everything.
import { hc, type ClientResponse, type InferRequestType, type InferResponseType } from 'hono/client';
import type { SuccessStatusCode } from 'hono/utils/http-status';
import type { AppType } from '@outpost/api';
import { get } from 'svelte/store';
import { t } from '$lib/i18n';

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
const v1 = client.api.v1;

/** One problem reported against one field of a request body (validation failures, conflicts). */
export interface FieldProblem {
  path: string;
  message: string;
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

type SuccessBody<R> =
  R extends ClientResponse<infer T, infer S, infer _F> ? (S extends SuccessStatusCode ? T : never) : never;

async function send<R extends ClientResponse<unknown, number, string>>(
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
  return { message, fields: err.fields, status: err.status, code: err.code, requestId: err.requestId };
}

/** The message for one field of a form, if the problem names it. */
export function fieldMessage(problem: Problem | null, path: string): string | undefined {
  return problem?.fields.find((f) => f.path === path)?.message;
}

export type Me = InferResponseType<typeof v1.me.$get, 200>;
export type Language = 'en' | 'fr' | 'pt';
export type Invite = InferResponseType<typeof v1.invites.$get, 200>['items'][number];
export type InviteInput = {
  email: string;
  name?: string;
  role: Role;
  siteIds?: string[];
  language?: Language;
  expiresInDays?: number;
};
export type ReportedProblem = InferResponseType<
  (typeof v1.sites)[':id']['problems']['$get'],
  200
>['items'][number];
export type Role = Me['role'];

export type Page = { limit?: number; cursor?: string };

/** Audit log filters: a person (user id), a kind of change ("site", "release"…), a time range (ISO instants). */
export interface AuditFilter {
  actor?: string;
  kind?: string;
  from?: string;
  to?: string;
}

function pageQuery(p: Page = {}) {
  return { limit: p.limit ?? 50, ...(p.cursor ? { cursor: p.cursor } : {}) };
}

export const api = {
  auth: {
    login: (json: { email: string; password: string; org?: string }) =>
      send(v1.auth.login.$post({ json }), { mayBeSignedOut: true }),
    logout: () => send(v1.auth.logout.$post()),
  },
  // A 401 here is an answer ("signed out"), not a lost session.
  me: () => send(v1.me.$get(), { mayBeSignedOut: true }),
  /** Your own name or language. */
  updateMe: (json: { name?: string; language?: Language }) => send(v1.me.$patch({ json })),
  users: {
    list: (page?: Page) => send(v1.users.$get({ query: pageQuery(page) })),
    create: (json: { email: string; name?: string; role: Role; password?: string }) =>
      send(v1.users.$post({ json })),
    setRole: (id: string, role: Role) => send(v1.users[':id'].$patch({ param: { id }, json: { role } })),
    remove: (id: string) => send(v1.users[':id'].$delete({ param: { id } })),
  },
  tokens: {
    list: (page?: Page & { includeRevoked?: boolean }) =>
      send(
        v1.tokens.$get({
          query: { ...pageQuery(page), includeRevoked: page?.includeRevoked ? 'true' : 'false' },
        }),
      ),
    create: (json: { name: string; role: Role; expiresInDays?: number }) => send(v1.tokens.$post({ json })),
    revoke: (id: string) => send(v1.tokens[':id'].$delete({ param: { id } })),
  },
  audit: {
    list: (page?: Page & AuditFilter) => {
      const { actor, kind, from, to } = page ?? {};
      return send(
        v1.audit.$get({
          query: {
            ...pageQuery(page),
            ...(actor ? { actor } : {}),
            ...(kind ? { kind } : {}),
            ...(from ? { from } : {}),
            ...(to ? { to } : {}),
          },
        }),
      );
    },
    actors: () => send(v1.audit.actors.$get()),
  },
  sites: {
    list: (query: SiteListQuery) => send(v1.sites.$get({ query: siteQuery(query) })),
    /** Values for the filter pickers; districts narrowed to a region when one is given. */
    facets: (region?: string) => send(v1.sites.facets.$get({ query: region ? { region } : {} })),
    get: (id: string) => send(v1.sites[':id'].$get({ param: { id } })),
    /** The live rollout the site is in (wave, start, deadline), or null; coordinators may ask for their sites. */
    rollout: (id: string) => send(v1.sites[':id'].rollout.$get({ param: { id } })),
    /** Exact counts per status, version and region, in one request. */
    summary: () => send(v1.sites.summary.$get({ query: {} })),
    create: (json: NewSite) => send(v1.sites.$post({ json })),
    update: (id: string, json: SitePatch) => send(v1.sites[':id'].$patch({ param: { id }, json })),
    archive: (id: string) => send(v1.sites[':id'].archive.$post({ param: { id } })),
    restore: (id: string) => send(v1.sites[':id'].restore.$post({ param: { id } })),
    issueDeviceToken: (id: string) => send(v1.sites[':id']['device-token'].$post({ param: { id } })),
    revokeDeviceToken: (id: string) => send(v1.sites[':id']['device-token'].$delete({ param: { id } })),
    reports: (id: string, page?: Page) =>
      send(v1.sites[':id'].reports.$get({ param: { id }, query: pageQuery(page) })),
    addReport: (id: string, json: ManualReport) =>
      send(v1.sites[':id'].reports.$post({ param: { id }, json })),
    coordinators: (id: string) => send(v1.sites[':id'].coordinators.$get({ param: { id } })),
    assignCoordinator: (id: string, userId: string) =>
      send(v1.sites[':id'].coordinators[':userId'].$put({ param: { id, userId } })),
    unassignCoordinator: (id: string, userId: string) =>
      send(v1.sites[':id'].coordinators[':userId'].$delete({ param: { id, userId } })),
    /** Where the CSV of the sites matching these filters downloads from (a plain link: the browser streams it). */
    exportPath: (filters: SiteFilter) => v1.sites['export.csv'].$path({ query: filterQuery(filters) }),
    importCsv,
  },
  fleet: {
    /** Everything the dashboard shows but adoption, in one request. */
    overview: (f: FleetFilter) => send(v1.fleet.overview.$get({ query: fleetQuery(f) })),
    adoption: (f: FleetFilter, days: number) =>
      send(v1.fleet.adoption.$get({ query: { ...fleetQuery(f), days } })),
    breakdown: (f: FleetFilter, by: 'region' | 'district' | 'tag') =>
      send(v1.fleet.breakdown.$get({ query: { ...fleetQuery(f), by } })),
  },
  receipts: {
    submitCode: (json: { siteId: string; code: string }) => send(v1.receipts.$post({ json })),
    /** The receipt file's exact text: its HMAC covers the bytes as the site wrote them. */
    submitFile: (text: string) =>
      send(
        v1.receipts.file.$post({}, { headers: { 'content-type': 'application/json' }, init: { body: text } }),
      ),
  },
  releases: {
    list: (filter: ReleaseFilter = {}) =>
      send(
        v1.releases.$get({
          query: {
            ...(filter.state ? { state: filter.state } : {}),
            ...(filter.channel ? { channel: filter.channel } : {}),
          },
        }),
      ),
    get: (id: string) => send(v1.releases[':id'].$get({ param: { id } })),
    create: (json: NewRelease) => send(v1.releases.$post({ json })),
    /** Drafts only; a published release answers 409. */
    update: (id: string, json: ReleasePatch) => send(v1.releases[':id'].$patch({ param: { id }, json })),
    remove: (id: string) => send(v1.releases[':id'].$delete({ param: { id } })),
    /** Resolved in its registry while the request waits; a 422 carries the registry's reason against `reference`. */
    addImage: (id: string, json: { name: string; reference: string }) =>
      send(v1.releases[':id'].images.$post({ param: { id }, json })),
    removeImage: (id: string, imageId: string) =>
      send(v1.releases[':id'].images[':imageId'].$delete({ param: { id, imageId } })),
    /** The saved compose template rendered for a site, or for a sample site without one. */
    compose: (id: string, siteId?: string) =>
      send(v1.releases[':id'].compose.$get({ param: { id }, query: siteId ? { siteId } : {} })),
    /** What changed since the previous published release (or `from`). */
    diff: (id: string, from?: string) =>
      send(v1.releases[':id'].diff.$get({ param: { id }, query: from ? { from } : {} })),
    /** A 422 NOT_PUBLISHABLE lists the problems in `details` (see `publishProblems`). */
    publish: (id: string) => send(v1.releases[':id'].publish.$post({ param: { id } })),
    deprecate: (id: string) => send(v1.releases[':id'].deprecate.$post({ param: { id } })),
    revoke: (id: string, reason: string) =>
      send(v1.releases[':id'].revoke.$post({ param: { id }, json: { reason } })),
  },
  registryCredentials: {
    list: () => send(v1['registry-credentials'].$get()),
    /** Replaces any earlier credentials for the same registry. */
    save: (json: RegistryCredentialInput) => send(v1['registry-credentials'].$put({ json })),
    remove: (id: string) => send(v1['registry-credentials'][':id'].$delete({ param: { id } })),
  },
  contentPackages: {
    list: (page?: Page) => send(v1['content-packages'].$get({ query: pageQuery(page) })),
    upload: uploadContentPackage,
  },
  bundles: {
    /** Newest first; coordinators get their own sites' bundles only. */
    list: (q: BundleQuery = {}) =>
      send(
        v1.bundles.$get({
          query: {
            ...(q.releaseId ? { releaseId: q.releaseId } : {}),
            ...(q.siteId ? { siteId: q.siteId } : {}),
            ...(q.state ? { state: q.state } : {}),
            ...pageQuery(q),
          },
        }),
      ),
    get: (id: string) => send(v1.bundles[':id'].$get({ param: { id } })),
    /** Queued for the workers (202); sites that already have a good bundle of the release keep it. See `bundleRequestProblems`. */
    request: (json: BundleRequest) => send(v1.bundles.$post({ json })),
    /** Failed bundles only; anything else answers 409. */
    retry: (id: string) => send(v1.bundles[':id'].retry.$post({ param: { id } })),
    /** Direct links to each part, for a download manager (ready bundles only). */
    links: (id: string) => send(v1.bundles[':id'].links.$get({ param: { id }, query: {} })),
    /** The one-file download (a plain link: the session cookie is enough, and the browser can resume it). */
    downloadPath: (id: string) => `/api/v1/bundles/${encodeURIComponent(id)}/download`,
    /** A short-lived link that needs no session, for `curl -C - -o FILE 'LINK'` on the site's server. */
    siteLink: (id: string) => send(v1.bundles[':id']['site-link'].$get({ param: { id }, query: {} })),
    /** The sha256 of the one-file download (may take a while the first time: the file is read through). */
    checksum: (id: string) => send(v1.bundles[':id'].checksum.$get({ param: { id } })),
    /** The bundle's README.txt, exactly as the site gets it. */
    readme: (id: string) => send(v1.bundles[':id'].readme.$get({ param: { id } })),
    /** A release's images archives (full and deltas) and its bundles counted by state. */
    status: (releaseId: string) =>
      send(v1.releases[':id']['bundle-status'].$get({ param: { id: releaseId } })),
  },
  /** Invitations: the only way in for a new person (or one from another organisation). */
  invites: {
    list: () => send(v1.invites.$get()),
    create: (json: InviteInput) => send(v1.invites.$post({ json })),
    revoke: (id: string) => send(v1.invites[':id'].$delete({ param: { id } })),
    /** For the join page, before signing in: the token in the link is the proof. */
    lookup: (token: string) => send(v1.invites.lookup.$post({ json: { token } }), { mayBeSignedOut: true }),
    accept: (json: { token: string; password: string; name?: string; language?: Language }) =>
      send(v1.invites.accept.$post({ json }), { mayBeSignedOut: true }),
  },
  /** Problems a coordinator reports from a site; the ministry reads and resolves them on the site page. */
  problems: {
    list: (siteId: string, open = false) =>
      send(v1.sites[':id'].problems.$get({ param: { id: siteId }, query: open ? { open: 'true' } : {} })),
    report: (siteId: string, json: { description: string; errorText?: string }) =>
      send(v1.sites[':id'].problems.$post({ param: { id: siteId }, json })),
    resolve: (siteId: string, problemId: string) =>
      send(v1.sites[':id'].problems[':problemId'].resolve.$post({ param: { id: siteId, problemId } })),
  },
  signingKeys: {
    /** The active key first, then the retired ones. */
    list: () => send(v1['signing-keys'].$get()),
    /** Owners and admins; the old key is retired (bundles it signed still verify with it). */
    rotate: () => send(v1['signing-keys'].rotate.$post()),
  },
  rollouts: {
    list: () => send(v1.rollouts.$get()),
    get: (id: string) => send(v1.rollouts[':id'].$get({ param: { id } })),
    /** What a plan would do; nothing is written. */
    preview: (json: RolloutPlan) => send(v1.rollouts.preview.$post({ json })),
    create: (json: RolloutPlan & { draft?: boolean }) => send(v1.rollouts.$post({ json })),
    attention: (id: string, after?: string) =>
      send(
        v1.rollouts[':id'].attention.$get({
          param: { id },
          query: { limit: '200', ...(after ? { after } : {}) },
        }),
      ),
    /** The attention list as CSV (a plain link: the session cookie is enough). */
    attentionCsvPath: (id: string) => `/api/v1/rollouts/${encodeURIComponent(id)}/attention.csv`,
    pause: (id: string, reason?: string) =>
      send(v1.rollouts[':id'].pause.$post({ param: { id }, json: reason ? { reason } : {} })),
    resume: (id: string, deadlineAt?: string) =>
      send(v1.rollouts[':id'].resume.$post({ param: { id }, json: deadlineAt ? { deadlineAt } : {} })),
    advance: (id: string) => send(v1.rollouts[':id'].advance.$post({ param: { id } })),
    cancel: (id: string, reason?: string) =>
      send(v1.rollouts[':id'].cancel.$post({ param: { id }, json: reason ? { reason } : {} })),
    schedule: (id: string) => send(v1.rollouts[':id'].schedule.$post({ param: { id } })),
    retry: (id: string, siteIds?: string[]) =>
      send(v1.rollouts[':id'].retry.$post({ param: { id }, json: siteIds ? { siteIds } : {} })),
    exclude: (id: string, siteId: string) =>
      send(v1.rollouts[':id'].exclude.$post({ param: { id }, json: { siteId } })),
    rollback: (id: string) => send(v1.rollouts[':id'].rollback.$post({ param: { id }, json: {} })),
  },
  blackoutDates: {
    list: () => send(v1['blackout-dates'].$get()),
    add: (json: { startsOn: string; endsOn: string; reason?: string }) =>
      send(v1['blackout-dates'].$post({ json })),
    remove: (id: string) => send(v1['blackout-dates'][':id'].$delete({ param: { id } })),
  },
  webhooks: {
    list: () => send(v1.webhooks.$get()),
    create: (json: { url: string; events: WebhookEvent[] }) => send(v1.webhooks.$post({ json })),
    remove: (id: string) => send(v1.webhooks[':id'].$delete({ param: { id } })),
    deliveries: (id: string) => send(v1.webhooks[':id'].deliveries.$get({ param: { id }, query: {} })),
  },
};

type ListQuery = NonNullable<InferRequestType<typeof v1.sites.$get>['query']>;
type ImportQuery = InferRequestType<typeof v1.sites.import.$post>['query'];

export type SiteStatus = NonNullable<ListQuery['status']>;
export type FleetOverview = InferResponseType<typeof v1.fleet.overview.$get, 200>;
export type FleetAdoption = InferResponseType<typeof v1.fleet.adoption.$get, 200>;
export type FleetBreakdownRow = FleetOverview['regions'][number];
export type FleetFigure = FleetOverview['summary']['sites'];
export type Connectivity = NonNullable<ListQuery['connectivity']>;
export type SiteSort = NonNullable<ListQuery['sort']>;
export type ImportMode = ImportQuery['mode'];

/** The filters of the site list, shared by the list, the counts and the CSV export. */
export interface SiteFilter {
  q?: string;
  region?: string;
  district?: string;
  tag?: string;
  connectivity?: Connectivity;
  version?: string;
  status?: SiteStatus;
  silentDays?: number;
  archived?: boolean;
  /** Behind the target by 1, 2 or 3 (3 or more) versions. */
  behind?: 1 | 2 | 3;
  /** Reports a content package, compose file or scripts other than its release carries. */
  drift?: 'content' | 'compose' | 'scripts';
}

export interface SiteListQuery extends SiteFilter {
  sort?: SiteSort;
  order?: 'asc' | 'desc';
  limit?: number;
  cursor?: string;
}

function filterQuery(f: SiteFilter) {
  return {
    ...(f.q ? { q: f.q } : {}),
    ...(f.region ? { region: f.region } : {}),
    ...(f.district ? { district: f.district } : {}),
    ...(f.tag ? { tag: f.tag } : {}),
    ...(f.connectivity ? { connectivity: f.connectivity } : {}),
    ...(f.version ? { version: f.version } : {}),
    ...(f.status ? { status: f.status } : {}),
    ...(f.silentDays ? { silentDays: f.silentDays } : {}),
    ...(f.archived ? { archived: 'true' as const } : {}),
    ...(f.behind ? { behind: String(f.behind) as '1' | '2' | '3' } : {}),
    ...(f.drift ? { drift: f.drift } : {}),
  };
}

/** The filters every fleet figure narrows by. */
export interface FleetFilter {
  region?: string;
  district?: string;
  tag?: string;
  connectivity?: Connectivity;
  silentDays?: number;
}

function fleetQuery(f: FleetFilter) {
  return {
    ...(f.region ? { region: f.region } : {}),
    ...(f.district ? { district: f.district } : {}),
    ...(f.tag ? { tag: f.tag } : {}),
    ...(f.connectivity ? { connectivity: f.connectivity } : {}),
    ...(f.silentDays ? { silentDays: f.silentDays } : {}),
  };
}

function siteQuery(q: SiteListQuery) {
  return {
    ...filterQuery(q),
    ...(q.sort ? { sort: q.sort } : {}),
    ...(q.order ? { order: q.order } : {}),
    ...pageQuery(q),
  };
}

/** The outcome of a CSV import: 200 (done, possibly with bad rows listed) or 422 (all-or-nothing refused the file). */
export interface ImportOutcome {
  report: ImportReport;
  /** True when nothing was written because some rows are bad (all-or-nothing mode). */
  refused: boolean;
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
function uploadFile(
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

export interface ImportOptions extends UploadOptions {
  mode: ImportMode;
  dryRun: boolean;
}

/**
 * Uploads a CSV file as the raw body of POST /sites/import, with progress. Failures other than
 * a refused all-or-nothing import reject with an ApiError, like every other call.
 */
async function importCsv(file: Blob, opts: ImportOptions): Promise<ImportOutcome> {
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
async function uploadContentPackage(
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

export type User = Awaited<ReturnType<typeof api.users.list>>['items'][number];
export type ApiToken = Awaited<ReturnType<typeof api.tokens.list>>['items'][number];
export type NewApiToken = Awaited<ReturnType<typeof api.tokens.create>>;
export type AuditEntry = Awaited<ReturnType<typeof api.audit.list>>['items'][number];
export type Site = Awaited<ReturnType<typeof api.sites.get>>;
export type SiteRollout = Awaited<ReturnType<typeof api.sites.rollout>>['rollout'];
export type SitePage = Awaited<ReturnType<typeof api.sites.list>>;
export type SiteFacets = Awaited<ReturnType<typeof api.sites.facets>>;
export type SiteReport = Awaited<ReturnType<typeof api.sites.reports>>['items'][number];
export type SiteCoordinator = Awaited<ReturnType<typeof api.sites.coordinators>>['items'][number];
export type NewSite = InferRequestType<typeof v1.sites.$post>['json'];
export type SitePatch = InferRequestType<(typeof v1.sites)[':id']['$patch']>['json'];
export type ManualReport = InferRequestType<(typeof v1.sites)[':id']['reports']['$post']>['json'];
export type NewDeviceToken = Awaited<ReturnType<typeof api.sites.issueDeviceToken>>;
export type ImportReport = InferResponseType<typeof v1.sites.import.$post, 200>;
export type ImportIssue = ImportReport['errors'][number];
export type ReceiptResult = Awaited<ReturnType<typeof api.receipts.submitCode>>;

type ReleaseListQuery = NonNullable<InferRequestType<typeof v1.releases.$get>['query']>;
export type ReleaseState = NonNullable<ReleaseListQuery['state']>;
export interface ReleaseFilter {
  state?: ReleaseState;
  channel?: string;
}
export type ReleaseSummary = Awaited<ReturnType<typeof api.releases.list>>['items'][number];
export type Release = Awaited<ReturnType<typeof api.releases.get>>;
export type ReleaseImage = Release['images'][number];
export type NewRelease = InferRequestType<typeof v1.releases.$post>['json'];
export type ReleasePatch = InferRequestType<(typeof v1.releases)[':id']['$patch']>['json'];
export type ComposePreview = Awaited<ReturnType<typeof api.releases.compose>>;
export type ReleaseDiff = Awaited<ReturnType<typeof api.releases.diff>>;
export type RegistryCredential = Awaited<ReturnType<typeof api.registryCredentials.list>>['items'][number];
/** A zip of site content (forms, concepts, configuration) that a release carries into every bundle. */
export type ContentPackage = InferResponseType<(typeof v1)['content-packages']['$post'], 201>;
export type RegistryCredentialInput = InferRequestType<(typeof v1)['registry-credentials']['$put']>['json'];

export type Bundle = Awaited<ReturnType<typeof api.bundles.get>>;
export type BundleState = Bundle['state'];
export type BundleRequest = InferRequestType<typeof v1.bundles.$post>['json'];
export type BundleRequestResult = Awaited<ReturnType<typeof api.bundles.request>>;
export type BundleMode = NonNullable<BundleRequest['mode']>;
export type BundleLinks = Awaited<ReturnType<typeof api.bundles.links>>;
export type BundleStatus = Awaited<ReturnType<typeof api.bundles.status>>;
export type ImageArchive = BundleStatus['archives'][number];
export type SigningKey = Awaited<ReturnType<typeof api.signingKeys.list>>['items'][number];
export interface BundleQuery extends Page {
  releaseId?: string;
  siteId?: string;
  state?: BundleState;
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

export const ROLES: readonly Role[] = ['owner', 'admin', 'operator', 'viewer', 'coordinator'];

/** Mirrors the API's rule: owners and admins manage people and tokens and read the audit log. */
export function canManageOrg(role: Role | undefined): boolean {
  return role === 'owner' || role === 'admin';
}

/** Mirrors the API's `canGrant`: only an owner hands out owner; owners and admins hand out the rest. */
export function grantableRoles(actor: Role | undefined): Role[] {
  if (actor === 'owner') return [...ROLES];
  if (actor === 'admin') return ROLES.filter((r) => r !== 'owner');
  return [];
}

/** Mirrors the API's `fleet:write`: owners, admins and operators register and edit sites. */
export function canWriteFleet(role: Role | undefined): boolean {
  return role === 'owner' || role === 'admin' || role === 'operator';
}

/** Mirrors the API's `fleet:write` for releases: owners, admins and operators create, edit and publish them. */
export function canWriteReleases(role: Role | undefined): boolean {
  return canWriteFleet(role);
}

/** Mirrors the API's `keys:manage`: owners and admins rotate the bundle signing key. */
export function canManageKeys(role: Role | undefined): boolean {
  return role === 'owner' || role === 'admin';
}

/** Mirrors the API's `receipts:submit`: everyone but viewers (coordinators on their own sites). */
export function canSubmitReceipts(role: Role | undefined): boolean {
  return role !== undefined && role !== 'viewer';
}

export type RolloutPlan = InferRequestType<typeof v1.rollouts.preview.$post>['json'];
export type WaveSelector = RolloutPlan['waves'][number]['selector'];
export type RolloutPreview = InferResponseType<typeof v1.rollouts.preview.$post, 200>;
export type Rollout = InferResponseType<(typeof v1.rollouts)[':id']['$get'], 200>;
export type RolloutSummary = InferResponseType<typeof v1.rollouts.$get, 200>['items'][number];
export type AttentionItem = InferResponseType<
  (typeof v1.rollouts)[':id']['attention']['$get'],
  200
>['items'][number];
export type WebhookEvent = InferRequestType<typeof v1.webhooks.$post>['json']['events'][number];
export type Webhook = InferResponseType<typeof v1.webhooks.$get, 200>['items'][number];
export type WebhookDelivery = InferResponseType<
  (typeof v1.webhooks)[':id']['deliveries']['$get'],
  200
>['items'][number];
export type BlackoutDate = InferResponseType<(typeof v1)['blackout-dates']['$get'], 200>['items'][number];
export type TargetState = keyof Rollout['totals'];
