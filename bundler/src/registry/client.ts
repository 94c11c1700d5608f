import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { RegistryError, readErrorBody, type RegistryErrorKind } from './errors.ts';
import { MANIFEST_ACCEPT, MediaType, isImageManifestMediaType, isIndexMediaType } from './media-types.ts';
import { assertDigest, digestOf, isSupportedDigest, readWithin, verifyingStream } from './digest.ts';
import { isDigest, registryApiHost } from './reference.ts';
import { parseWwwAuthenticate } from './www-authenticate.ts';
import { isAllowListed, type AllowList } from './destination.ts';
import { RegistryAuth, type RegistryCredentials } from './auth.ts';
import { RegistryTransport, discard } from './transport.ts';
import {
  DEFAULT_PLATFORM,
  choosePlatform,
  formatPlatform,
  normalizePlatform,
  plainPlatform,
  platformMatches,
  type Platform,
} from './platform.ts';

// The public surface stays here: callers import the client, its types and these helpers from client.ts.
export type { RegistryCredentials } from './auth.ts';
export { formatPlatform, type Platform } from './platform.ts';
export { retryAfterMs } from './transport.ts';

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

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * A client for one registry over the Registry HTTP API v2: resolves tags to digests, streams
 * blobs with their digests verified, and does anonymous, Basic and Bearer-token auth. No Docker
 * daemon involved. Auth is in auth.ts, the HTTP exchange (retries, redirects, destinations) in
 * transport.ts and platform matching in platform.ts; this file is the Registry API itself.
 *
 * @example
 * const client = new RegistryClient({ registry: 'docker.io' });
 * const image = await client.resolve('library/nginx', '1.27', { os: 'linux', architecture: 'arm64' });
 * const stream = await client.blob('library/nginx', image.layers[0].digest, { size: image.layers[0].size });
 */
export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: string;
  private readonly userAgent: string;
  private readonly transport: RegistryTransport;
  private readonly auth: RegistryAuth;

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
    this.userAgent = options.userAgent ?? 'outpost-bundler';
    this.transport = new RegistryTransport({
      registry,
      allowInsecure: options.allowInsecure,
      fetch: options.fetch ?? globalThis.fetch,
      retries: Math.max(0, options.retries ?? 3),
      timeoutMs: options.timeoutMs ?? 30_000,
      backoffMs: options.backoffMs ?? 500,
      maxBackoffMs: options.maxBackoffMs ?? 10_000,
      maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
    });
    this.auth = new RegistryAuth({
      registry,
      credentials: options.credentials,
      userAgent: this.userAgent,
      transport: this.transport,
    });
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
      idleTimeoutMs: this.transport.timeoutMs,
      describe: what,
      onNetworkError: (error) => this.transport.unreachable(error, `while reading the ${what}`),
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
        result = await readWithin(reader, this.transport.timeoutMs);
      } catch (error) {
        throw this.transport.unreachable(error, `while reading the ${what}`);
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

    const upFront = await this.auth.authorizationUpFront(scope);
    let response = await this.transport.send(method, url, headers, upFront);
    if (response.status !== 401) return response;

    const challenges = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '');
    const errors = await readErrorBody(response);
    const retryWith = await this.auth.answerChallenge(
      challenges,
      scope,
      upFront,
      errors.map((e) => e.code),
    );
    response = await this.transport.send(method, url, headers, retryWith);
    if (response.status === 401) {
      const codes = (await readErrorBody(response)).map((e) => e.code);
      // A token that stopped being good (expired early, revoked): forget it so the next call asks anew.
      this.auth.forget(scope);
      throw this.auth.unauthorized(repository, codes);
    }
    return response;
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
    if (codes.includes('UNAUTHORIZED') || status === 401) return this.auth.unauthorized(repository, codes);
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
        `The registry ${this.registry} is limiting requests (429) and still was after ${this.transport.retries + 1} attempts; try again later`,
      );
    }
    if (status >= 500) {
      return make(
        'unreachable',
        `The registry ${this.registry} failed with ${status} after ${this.transport.retries + 1} attempts`,
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

function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim());
}
