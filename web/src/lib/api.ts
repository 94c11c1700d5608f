// The one HTTP client of the dashboard: one typed verb per API call, grouped by feature, and the
// types of what they answer. How it talks (./api/transport), what a failure becomes
// (./api/errors), file uploads (./api/uploads) and the role rules (./api/roles) live beside it.
import type { InferRequestType, InferResponseType } from 'hono/client';
import { send, v1 } from './api/transport';
import { importCsv, uploadContentPackage, type ImportReport } from './api/uploads';

export { configureApi, type UploadOptions } from './api/transport';
export * from './api/errors';
export * from './api/roles';
export {
  type ContentPackage,
  type ImportMode,
  type ImportOptions,
  type ImportOutcome,
  type ImportReport,
} from './api/uploads';

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

export type SiteStatus = NonNullable<ListQuery['status']>;
export type FleetOverview = InferResponseType<typeof v1.fleet.overview.$get, 200>;
export type FleetAdoption = InferResponseType<typeof v1.fleet.adoption.$get, 200>;
export type FleetBreakdownRow = FleetOverview['regions'][number];
export type FleetFigure = FleetOverview['summary']['sites'];
export type Connectivity = NonNullable<ListQuery['connectivity']>;
export type SiteSort = NonNullable<ListQuery['sort']>;

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
