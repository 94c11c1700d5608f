import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { RegistryError, readErrorBody, type RegistryErrorKind } from './errors.ts';
import { MANIFEST_ACCEPT, MediaType, isImageManifestMediaType, isIndexMediaType } from './media-types.ts';
import {
  assertDigest,
  digestOf,
  isSupportedDigest,
  readWithin,
  verifyingStream,
  IdleTimeoutError,
} from './digest.ts';
import { isDigest, registryApiHost } from './reference.ts';
import { parseWwwAuthenticate, type AuthChallenge } from './www-authenticate.ts';
import { assertAllowedUrl, forbiddenDestination, isAllowListed, type AllowList } from './destination.ts';

export type RegistryCredentials = { username: string; password: string } | { token: string };

export interface RegistryClientOptions {
  /** Registry name as in an image reference: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  /**
   * `{ username, password }`: sent as Basic to a registry that asks for Basic, or to the token
   * service of a registry that asks for Bearer (Docker Hub, GHCR, ACR). `{ token }`: a registry
   * bearer token, sent as it is.
   */
  credentials?: RegistryCredentials;
  /**
   * `host:port` entries (`OUTPOST_REGISTRY_ALLOW_INSECURE`) that may be reached over plain HTTP and
   * at loopback or private addresses. Every other address — the registry, each redirect, the token
   * service — must be https and public (see destination.ts); anything else fails with
   * `forbidden-address` before a connection is made.
   */
  allowInsecure?: AllowList;
  /** On Node, give `guardedFetch(allowInsecure)` so names are checked after DNS resolution too. */
  fetch?: typeof globalThis.fetch;
  /** Retries after the first attempt on 429, 5xx and network errors. Default 3 (4 attempts). */
  retries?: number;
  /** Longest wait for an answer's headers, and between two chunks of a body. Default 30 s. */
  timeoutMs?: number;
  /** First backoff delay; doubles each retry, with jitter. Default 500 ms. */
  backoffMs?: number;
  /** Cap on one backoff delay. Default 10 s. */
  maxBackoffMs?: number;
  /** Cap on a `Retry-After` wait. Default 60 s. */
  maxRetryAfterMs?: number;
  userAgent?: string;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  digest: string;
  size: number;
  mediaType: string;
}

export interface ManifestResult {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
  json: ManifestJson;
}

/** The fields of an image manifest or index this client reads; the rest is kept as parsed. */
export interface ManifestJson {
  schemaVersion?: number;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: (Descriptor & { platform?: Platform & { 'os.version'?: string } })[];
  [key: string]: unknown;
}

export interface ResolvedImage {
  /** Digest of the image manifest for the platform. */
  digest: string;
  /** Digest of the index (manifest list) the reference named, when it named one. */
  indexDigest?: string;
  mediaType: string;
  manifest: ManifestJson;
  config: Descriptor;
  layers: Descriptor[];
  /** Config plus compressed layers, in bytes: what a pull transfers. */
  totalSize: number;
  platform: Platform;
}

export interface BlobOptions {
  /** Size the manifest promised; the stream fails when the bytes differ from it. */
  size?: number;
}

const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
const MAX_REDIRECTS = 10;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * A client for one registry over the Registry HTTP API v2: resolves tags to digests, streams
 * blobs with their digests verified, and does anonymous, Basic and Bearer-token auth. No Docker
 * daemon involved.
 *
 * @example
 * const client = new RegistryClient({ registry: 'docker.io' });
 * const image = await client.resolve('library/nginx', '1.27', { os: 'linux', architecture: 'arm64' });
 * const stream = await client.blob('library/nginx', image.layers[0].digest, { size: image.layers[0].size });
 */
export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: string;
  private readonly credentials: RegistryCredentials | undefined;
  private readonly allowInsecure: AllowList | undefined;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly retries: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly userAgent: string;
  /** Set once the registry asked for Basic: later requests send it up front. */
  private usesBasic = false;
  /** The registry's Bearer challenge, once seen: later scopes fetch their token up front. */
  private bearer: { realm: string; service?: string } | undefined;
  private readonly tokens = new Map<string, { token: Promise<string>; expiresAt: number }>();

  constructor(options: RegistryClientOptions) {
    let registry = options.registry.trim();
    const scheme = /^(https?):\/\//.exec(registry);
    if (scheme) registry = registry.slice(scheme[0].length);
    registry = registry.replace(/\/+$/, '');
    if (registry === '' || registry.includes('/')) {
      throw new TypeError(
        `"${options.registry}" is not a registry host (expected e.g. ghcr.io or 127.0.0.1:5000)`,
      );
    }
    this.registry = registry;
    const host = registryApiHost(registry);
    // Plain HTTP only for an allow-listed host:port (a `http://` prefix on any other is refused at the first request).
    const insecure = scheme
      ? scheme[1] === 'http'
      : isAllowListed(new URL(`http://${host}`), options.allowInsecure) && !/:443$/.test(host);
    this.baseUrl = `${insecure ? 'http' : 'https'}://${host}`;
    this.allowInsecure = options.allowInsecure;
    this.credentials = options.credentials;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.retries = Math.max(0, options.retries ?? 3);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 10_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    this.userAgent = options.userAgent ?? 'outpost-bundler';
  }

  /**
   * Resolves a tag or digest to the image manifest for one platform, choosing from an index
   * (manifest list) when the reference names one.
   *
   * @example
   * const { digest, layers } = await client.resolve('openmrs/openmrs-core', '2.7.0');
   */
  async resolve(
    repository: string,
    reference: string,
    platform: Platform = DEFAULT_PLATFORM,
  ): Promise<ResolvedImage> {
    const wanted = normalizePlatform(platform);
    const top = await this.getManifest(repository, reference);
    let image = top;
    let indexDigest: string | undefined;

    if (isIndexMediaType(top.mediaType) || (top.mediaType === '' && Array.isArray(top.json.manifests))) {
      indexDigest = top.digest;
      const entries = (top.json.manifests ?? []).filter((m) => m && typeof m.digest === 'string');
      const entry = choosePlatform(entries, wanted);
      if (!entry) {
        const available = entries
          .map((m) => m.platform)
          .filter((p): p is Platform => !!p && p.os !== 'unknown' && p.architecture !== 'unknown')
          .map(formatPlatform);
        throw new RegistryError(
          'platform-not-found',
          `${repository}:${reference} on ${this.registry} has no image for ${formatPlatform(wanted)}; ` +
            `it has ${available.length ? available.join(', ') : 'no platform-specific images'}`,
        );
      }
      image = await this.getManifest(repository, entry.digest);
      if (typeof entry.size === 'number' && entry.size !== image.bytes.byteLength) {
        throw new RegistryError(
          'digest-mismatch',
          `The manifest ${entry.digest} of ${repository} from ${this.registry} is ${image.bytes.byteLength} bytes; its index says ${entry.size}`,
        );
      }
    }

    if (!isImageManifestMediaType(image.mediaType)) {
      throw new RegistryError(
        'protocol',
        `${repository}@${image.digest} on ${this.registry} is a ${image.mediaType || 'manifest of unknown type'}, not an image manifest`,
      );
    }
    const config = descriptor(image.json.config, 'config', image.digest);
    const layers = (Array.isArray(image.json.layers) ? image.json.layers : []).map((l) =>
      descriptor(l, 'layer', image.digest),
    );

    let resolvedPlatform: Platform = wanted;
    if (!indexDigest) {
      // A single-platform image says its platform only in its config; check it so a site never
      // receives an image its machine cannot run.
      const imageConfig = await this.readConfig(repository, config);
      if (typeof imageConfig.os === 'string' && typeof imageConfig.architecture === 'string') {
        resolvedPlatform = plainPlatform(imageConfig as unknown as Platform);
        if (!platformMatches(resolvedPlatform, wanted)) {
          throw new RegistryError(
            'platform-not-found',
            `${repository}:${reference} on ${this.registry} has no image for ${formatPlatform(wanted)}; it has ${formatPlatform(resolvedPlatform)}`,
          );
        }
      }
    } else {
      const chosen = (top.json.manifests ?? []).find((m) => m.digest === image.digest)?.platform;
      if (chosen) resolvedPlatform = plainPlatform(chosen);
    }

    return {
      digest: image.digest,
      ...(indexDigest ? { indexDigest } : {}),
      mediaType: image.mediaType,
      manifest: image.json,
      config,
      layers,
      totalSize: config.size + layers.reduce((sum, l) => sum + l.size, 0),
      platform: resolvedPlatform,
    };
  }

  /**
   * Fetches a manifest or index by tag or digest, with both OCI and Docker types accepted. The
   * bytes are checked against the digest asked for, or for a tag against `Docker-Content-Digest`.
   */
  async getManifest(repository: string, reference: string): Promise<ManifestResult> {
    assertRepository(repository);
    const byDigest = isDigest(reference);
    if (byDigest) assertDigest(reference);
    else if (!TAG.test(reference)) throw new TypeError(`"${reference}" is neither a tag nor a digest`);

    const response = await this.request('GET', repository, `manifests/${reference}`, {
      accept: MANIFEST_ACCEPT,
    });
    if (!response.ok) throw await this.failure(response, { repository, reference, what: 'manifest' });

    const what = `manifest ${reference} of ${repository} from ${this.registry}`;
    const bytes = await this.readAll(response, MAX_MANIFEST_BYTES, what);
    const announced = response.headers.get('docker-content-digest')?.trim();
    let digest: string;
    if (byDigest) {
      digest = reference;
    } else {
      digest = digestOf(bytes, 'sha256');
      if (announced && isSupportedDigest(announced)) {
        const algorithm = announced.slice(0, announced.indexOf(':'));
        if (algorithm !== 'sha256') digest = digestOf(bytes, algorithm);
      }
    }
    const actual = digestOf(bytes, digest.slice(0, digest.indexOf(':')));
    if (actual !== digest) {
      throw new RegistryError(
        'digest-mismatch',
        `The ${what} does not match its digest: its bytes hash to ${actual}`,
      );
    }
    if (!byDigest && announced && isSupportedDigest(announced) && announced !== digest) {
      throw new RegistryError(
        'digest-mismatch',
        `The ${what} hashes to ${digest} but the registry says ${announced}`,
      );
    }

    let json: ManifestJson;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes)) as ManifestJson;
      if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error('not an object');
    } catch {
      throw new RegistryError('protocol', `The ${what} is not valid JSON`);
    }
    if (json.schemaVersion === 1) {
      throw new RegistryError(
        'protocol',
        `The ${what} is a Docker schema 1 manifest, which is not supported`,
      );
    }
    const contentType = response.headers.get('content-type')?.split(';')[0]?.trim();
    const mediaType = typeof json.mediaType === 'string' ? json.mediaType : (contentType ?? '');
    return { digest, mediaType, bytes, json };
  }

  /**
   * Streams a blob, following the registry's redirects to its storage. The stream verifies the
   * digest as it goes and ends with a `digest-mismatch` error (instead of closing) when the bytes
   * are wrong or their count differs from Content-Length or `options.size`.
   *
   * @example
   * const body = await client.blob('library/nginx', layer.digest, { size: layer.size });
   * await pipeline(blobToNodeStream(body), fs.createWriteStream('layer.tgz'));
   */
  async blob(
    repository: string,
    digest: string,
    options: BlobOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    assertRepository(repository);
    assertDigest(digest);
    const response = await this.request('GET', repository, `blobs/${digest}`, {});
    if (!response.ok) throw await this.failure(response, { repository, reference: digest, what: 'blob' });
    if (!response.body)
      throw new RegistryError('protocol', `The registry ${this.registry} sent blob ${digest} without a body`);
    const what = `blob ${digest} of ${repository} from ${this.registry}`;
    const contentLength = parseLength(response.headers.get('content-length'));
    if (options.size !== undefined && contentLength !== undefined && contentLength !== options.size) {
      void response.body.cancel().catch(() => {});
      throw new RegistryError(
        'digest-mismatch',
        `The ${what} is ${contentLength} bytes; its manifest says ${options.size}`,
      );
    }
    const expectedLength = contentLength ?? options.size;
    return verifyingStream(response.body, {
      digest,
      ...(expectedLength !== undefined ? { expectedLength } : {}),
      idleTimeoutMs: this.timeoutMs,
      describe: what,
      onNetworkError: (error) => this.unreachable(error, `while reading the ${what}`),
    });
  }

  /** Size of a blob if the registry has it, `null` if it does not. */
  async headBlob(repository: string, digest: string): Promise<{ size: number } | null> {
    assertRepository(repository);
    assertDigest(digest);
    const response = await this.request('HEAD', repository, `blobs/${digest}`, {});
    if (response.status === 404) return null;
    if (!response.ok) throw await this.failure(response, { repository, reference: digest, what: 'blob' });
    const size = parseLength(response.headers.get('content-length'));
    if (size === undefined)
      throw new RegistryError('protocol', `The registry ${this.registry} gave no size for blob ${digest}`);
    return { size };
  }

  // --- internals -------------------------------------------------------------------------------

  private async readConfig(repository: string, config: Descriptor): Promise<Record<string, unknown>> {
    if (config.size > MAX_CONFIG_BYTES) return {};
    const stream = await this.blob(repository, config.digest, { size: config.size });
    const reader = stream.getReader();
    const chunks: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    try {
      const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
    } catch {
      throw new RegistryError(
        'protocol',
        `The config ${config.digest} of ${repository} from ${this.registry} is not valid JSON`,
      );
    }
  }

  private async readAll(response: Response, limit: number, what: string): Promise<Uint8Array> {
    const announced = parseLength(response.headers.get('content-length'));
    if (announced !== undefined && announced > limit) {
      void response.body?.cancel().catch(() => {});
      throw new RegistryError(
        'protocol',
        `The ${what} is ${announced} bytes, more than the ${limit} allowed`,
      );
    }
    if (!response.body) return new Uint8Array();
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await readWithin(reader, this.timeoutMs);
      } catch (error) {
        throw this.unreachable(error, `while reading the ${what}`);
      }
      if (result.done) break;
      size += result.value.byteLength;
      if (size > limit) {
        void reader.cancel().catch(() => {});
        throw new RegistryError('protocol', `The ${what} is more than the ${limit} bytes allowed`);
      }
      chunks.push(result.value);
    }
    if (announced !== undefined && size !== announced) {
      throw new RegistryError(
        'digest-mismatch',
        `The ${what} ended after ${size} bytes instead of ${announced}`,
      );
    }
    return new Uint8Array(Buffer.concat(chunks));
  }

  /** One API call with auth: answers a 401 challenge once, then gives the caller the answer. */
  private async request(
    method: 'GET' | 'HEAD',
    repository: string,
    path: string,
    options: { accept?: string },
  ): Promise<Response> {
    const url = `${this.baseUrl}/v2/${repository}/${path}`;
    const scope = `repository:${repository}:pull`;
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (options.accept) headers.accept = options.accept;

    const upFront = await this.authorizationUpFront(scope);
    let response = await this.send(method, url, headers, upFront);
    if (response.status !== 401) return response;

    const challenges = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '');
    const errors = await readErrorBody(response);
    const retryWith = await this.answerChallenge(
      challenges,
      scope,
      upFront,
      errors.map((e) => e.code),
    );
    response = await this.send(method, url, headers, retryWith);
    if (response.status === 401) {
      const codes = (await readErrorBody(response)).map((e) => e.code);
      // A token that stopped being good (expired early, revoked): forget it so the next call asks anew.
      this.tokens.delete(scope);
      throw this.unauthorized(repository, codes);
    }
    return response;
  }

  private async authorizationUpFront(scope: string): Promise<string | undefined> {
    const credentials = this.credentials;
    if (credentials && 'token' in credentials) return `Bearer ${credentials.token}`;
    if (this.usesBasic && credentials) return basic(credentials);
    if (this.bearer)
      return `Bearer ${await this.token(this.bearer.realm, this.bearer.service, scope, scope)}`;
    return undefined;
  }

  private async answerChallenge(
    challenges: AuthChallenge[],
    scope: string,
    sent: string | undefined,
    codes: string[],
  ): Promise<string> {
    const credentials = this.credentials;
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basicChallenge = challenges.find((c) => c.scheme === 'basic');
    if (credentials && 'token' in credentials) throw this.unauthorized(scope, codes);
    if (bearer?.params.realm) {
      this.bearer = {
        realm: bearer.params.realm,
        ...(bearer.params.service ? { service: bearer.params.service } : {}),
      };
      if (sent?.startsWith('Bearer ')) this.tokens.delete(scope);
      const token = await this.token(
        bearer.params.realm,
        bearer.params.service,
        bearer.params.scope ?? scope,
        scope,
      );
      if (sent === `Bearer ${token}`) throw this.unauthorized(scope, codes);
      return `Bearer ${token}`;
    }
    if (basicChallenge || challenges.length === 0) {
      if (!credentials || sent?.startsWith('Basic ')) throw this.unauthorized(scope, codes);
      this.usesBasic = true;
      return basic(credentials);
    }
    throw new RegistryError(
      'protocol',
      `The registry ${this.registry} asks for ${challenges.map((c) => c.scheme).join(', ')} authentication, which this client does not support`,
      { status: 401 },
    );
  }

  /** A Bearer token for a scope from the registry's token service, cached until it expires. */
  private token(
    realm: string,
    service: string | undefined,
    requestScope: string,
    cacheKey: string,
  ): Promise<string> {
    const cached = this.tokens.get(cacheKey);
    if (cached && cached.expiresAt > Date.now()) return cached.token;
    const entry = { token: Promise.resolve(''), expiresAt: Number.POSITIVE_INFINITY };
    entry.token = this.fetchToken(realm, service, requestScope).then(
      ({ token, expiresInSeconds }) => {
        // Renew a little before the service's deadline so a token never expires mid-request.
        entry.expiresAt =
          Date.now() + Math.max(0, expiresInSeconds * 1000 - Math.min(30_000, expiresInSeconds * 100));
        return token;
      },
      (error: unknown) => {
        this.tokens.delete(cacheKey);
        throw error;
      },
    );
    this.tokens.set(cacheKey, entry);
    return entry.token;
  }

  private async fetchToken(
    realm: string,
    service: string | undefined,
    scope: string,
  ): Promise<{ token: string; expiresInSeconds: number }> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError('protocol', `The registry ${this.registry} names an invalid token service`);
    }
    if (service) url.searchParams.set('service', service);
    for (const s of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
    const credentials = this.credentials;
    const authorization = credentials && 'username' in credentials ? basic(credentials) : undefined;
    const response = await this.send(
      'GET',
      url.toString(),
      { 'user-agent': this.userAgent, accept: 'application/json' },
      authorization,
      url.host,
    );
    if (response.status === 401 || response.status === 403) {
      const codes = (await readErrorBody(response)).map((e) => e.code);
      throw new RegistryError(
        'unauthorized',
        credentials
          ? 'The registry refused the credentials'
          : `The registry ${this.registry} requires credentials`,
        { status: response.status, ...(codes[0] ? { code: codes[0] } : {}) },
      );
    }
    if (!response.ok) {
      await discard(response);
      throw new RegistryError(
        response.status === 429 || response.status >= 500 ? 'unreachable' : 'protocol',
        `The token service of ${this.registry} (${url.host}) answered ${response.status}`,
        { status: response.status },
      );
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = (await response.json()) as typeof body;
    } catch {
      throw new RegistryError(
        'protocol',
        `The token service of ${this.registry} (${url.host}) sent something that is not JSON`,
      );
    }
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || !token) {
      throw new RegistryError(
        'protocol',
        `The token service of ${this.registry} (${url.host}) sent no token`,
      );
    }
    // The spec's default lifetime when the service does not say.
    const expiresInSeconds =
      typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    return { token, expiresInSeconds };
  }

  /**
   * One HTTP exchange with retries (429, 5xx and network errors, with backoff and Retry-After)
   * and redirects followed by hand, so credentials never travel to another origin (a registry
   * redirects blobs to object storage, which rejects a foreign Authorization header).
   */
  private async send(
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

  private unauthorized(repositoryOrScope: string, codes: string[]): RegistryError {
    const code = codes[0];
    if (codes.includes('DENIED')) {
      return new RegistryError(
        'denied',
        `The registry ${this.registry} denied access to ${repositoryName(repositoryOrScope)}`,
        { status: 401, code: 'DENIED' },
      );
    }
    const message = this.credentials
      ? 'The registry refused the credentials'
      : `The registry ${this.registry} requires credentials for ${repositoryName(repositoryOrScope)}` +
        (this.bearer ? ' (or has no image by that name)' : '');
    return new RegistryError('unauthorized', message, { status: 401, ...(code ? { code } : {}) });
  }

  private unreachable(error: unknown, context: string): RegistryError {
    if (error instanceof RegistryError) return error;
    const failure = describeNetworkError(error, this.timeoutMs);
    return new RegistryError(
      'unreachable',
      `Lost the connection to the registry ${this.registry} ${context}: ${failure.reason}`,
      { cause: error },
    );
  }

  /** Turns a failed answer into the error people and code can act on. */
  private async failure(
    response: Response,
    context: { repository: string; reference: string; what: 'manifest' | 'blob' },
  ): Promise<RegistryError> {
    const { repository, reference, what } = context;
    const status = response.status;
    const errors = await readErrorBody(response);
    const codes = errors.map((e) => e.code);
    const code = codes[0];
    const extra = { status, ...(code ? { code } : {}) };
    const make = (kind: RegistryErrorKind, message: string) => new RegistryError(kind, message, extra);

    if (codes.includes('NAME_UNKNOWN'))
      return make('unknown-repository', `The registry ${this.registry} has no image named ${repository}`);
    if (codes.includes('DENIED') || status === 403)
      return make('denied', `The registry ${this.registry} denied access to ${repository}`);
    if (codes.includes('UNAUTHORIZED') || status === 401) return this.unauthorized(repository, codes);
    if (codes.includes('BLOB_UNKNOWN') || (status === 404 && what === 'blob')) {
      return make('unknown-blob', `The registry ${this.registry} has no blob ${reference} in ${repository}`);
    }
    if (codes.includes('MANIFEST_UNKNOWN') || status === 404) {
      if (isDigest(reference))
        return make(
          'unknown-manifest',
          `The registry ${this.registry} has no manifest ${reference} in ${repository}`,
        );
      // The registry answers MANIFEST_UNKNOWN for a tag whether or not the repository exists.
      if (await this.repositoryIsUnknown(repository)) {
        return make('unknown-repository', `The registry ${this.registry} has no image named ${repository}`);
      }
      return make('unknown-tag', `The registry ${this.registry} has no tag ${reference} for ${repository}`);
    }
    if (status === 429) {
      return make(
        'unreachable',
        `The registry ${this.registry} is limiting requests (429) and still was after ${this.retries + 1} attempts; try again later`,
      );
    }
    if (status >= 500) {
      return make(
        'unreachable',
        `The registry ${this.registry} failed with ${status} after ${this.retries + 1} attempts`,
      );
    }
    // The registry's own words are not repeated: an address that is not a registry must not be readable through us.
    return make(
      'protocol',
      `The registry ${this.registry} answered ${status} for the ${what} ${reference} of ${repository}`,
    );
  }

  private async repositoryIsUnknown(repository: string): Promise<boolean> {
    try {
      const response = await this.request('GET', repository, 'tags/list?n=1', {});
      if (response.ok) {
        await discard(response);
        return false;
      }
      const codes = (await readErrorBody(response)).map((e) => e.code);
      return codes.includes('NAME_UNKNOWN');
    } catch {
      return false;
    }
  }
}

/**
 * A Node.js Readable over a blob stream, for `pipeline()` and libraries that want Node streams.
 *
 * @example
 * await pipeline(blobToNodeStream(await client.blob(repo, digest)), createWriteStream(file));
 */
export function blobToNodeStream(stream: ReadableStream<Uint8Array>): Readable {
  return Readable.fromWeb(stream as unknown as NodeWebReadableStream<Uint8Array>);
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

const ARCHITECTURE_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
};

function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  const architecture =
    ARCHITECTURE_ALIASES[platform.architecture.toLowerCase()] ?? platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase();
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  if (architecture === 'arm' && variant && /^\d$/.test(variant)) variant = `v${variant}`;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** The platform as the registry declares it, without extra fields (os.version, features). */
function plainPlatform(p: Platform): Platform {
  return {
    os: p.os,
    architecture: p.architecture,
    ...(typeof p.variant === 'string' && p.variant ? { variant: p.variant } : {}),
  };
}

function platformMatches(candidate: Platform, wanted: Platform): boolean {
  const c = normalizePlatform(candidate);
  return (
    c.os === wanted.os &&
    c.architecture === wanted.architecture &&
    (wanted.variant === undefined || c.variant === wanted.variant)
  );
}

/** The index entry for a platform: exact variant when asked for, else the plainest match. */
function choosePlatform<T extends { platform?: Platform }>(entries: T[], wanted: Platform): T | undefined {
  const matches = entries.filter((e) => e.platform && platformMatches(e.platform, wanted));
  if (wanted.variant !== undefined) return matches[0];
  return matches.find((e) => !normalizePlatform(e.platform!).variant) ?? matches[0];
}

function descriptor(value: unknown, what: string, manifestDigest: string): Descriptor {
  const d = value as Partial<Descriptor> | undefined;
  if (
    !d ||
    typeof d.digest !== 'string' ||
    !isSupportedDigest(d.digest) ||
    typeof d.size !== 'number' ||
    d.size < 0
  ) {
    throw new RegistryError('protocol', `The image manifest ${manifestDigest} has an invalid ${what} entry`);
  }
  return {
    digest: d.digest,
    size: d.size,
    mediaType:
      typeof d.mediaType === 'string'
        ? d.mediaType
        : what === 'config'
          ? MediaType.OciConfig
          : MediaType.OciLayerGzip,
  };
}

function assertRepository(repository: string): void {
  if (!REPOSITORY.test(repository) || repository.length > 255) {
    throw new TypeError(`"${repository}" is not a repository name (lowercase path such as library/nginx)`);
  }
}

function repositoryName(repositoryOrScope: string): string {
  const m = /^repository:(.+):[^:]+$/.exec(repositoryOrScope);
  return m ? m[1]! : repositoryOrScope;
}

function basic(credentials: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

async function discard(response: Response): Promise<void> {
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
