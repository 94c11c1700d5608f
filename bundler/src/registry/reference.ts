/**
 * Image references in Docker's grammar (distribution/reference), normalised the way `docker pull`
 * does: `nginx` → `docker.io/library/nginx:latest`.
 */

export interface ImageReference {
  /** Registry name as people write it: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Host (and port) to send Registry API v2 requests to; `registry-1.docker.io` for `docker.io`. */
  apiHost: string;
  /** Repository path inside the registry: `library/nginx`, `openmrs/openmrs-core`. */
  repository: string;
  /** Tag; `latest` when the reference names neither a tag nor a digest. */
  tag?: string;
  /** Content digest (`sha256:…`) when the reference pins one. */
  digest?: string;
  /** Fully qualified form: `docker.io/library/nginx:1.27`, `host:5000/a/b@sha256:…`. */
  canonical: string;
}

export class ImageReferenceError extends Error {
  override name = 'ImageReferenceError';
  constructor(
    readonly reference: string,
    reason: string,
  ) {
    super(`"${reference}" is not a valid image reference: ${reason}`);
  }
}

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

// The pieces of the grammar, as in distribution/reference/regexp.go.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;
const NAME_MAX_LENGTH = 255;

/** The API host for a registry name: Docker Hub's API lives on `registry-1.docker.io`. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB || registry === 'index.docker.io' ? DOCKER_HUB_API_HOST : registry;
}

/** Whether a string is a content digest such as `sha256:<64 hex>`. */
export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/**
 * Parses and normalises an image reference.
 *
 * @example
 * parseImageReference('nginx').canonical            // 'docker.io/library/nginx:latest'
 * parseImageReference('127.0.0.1:5000/a/b:1.2').tag // '1.2'
 * parseImageReference('ghcr.io/o/app@sha256:…').digest
 */
export function parseImageReference(ref: string): ImageReference {
  const fail = (reason: string): never => {
    throw new ImageReferenceError(ref, reason);
  };
  if (typeof ref !== 'string' || ref.trim() === '') fail('it is empty');
  if (ref !== ref.trim() || /\s/.test(ref)) fail('it contains spaces');

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    validateDigest(digest, fail);
  }

  // A tag is after the last ':' that comes after the last '/' (a ':' before it is a port).
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      fail(
        `the tag "${tag}" may only hold letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')`,
      );
  }
  if (rest === '') fail('the image name is missing');
  if (SHA256_HEX.test(rest)) fail('a 64-character hexadecimal string is an image ID, not a name');

  let registry: string;
  let repository: string;
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  // Docker's rule: the first component is a registry host only if it looks like one.
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    registry = DOCKER_HUB;
    repository = rest;
  } else {
    registry = first;
    repository = rest.slice(slash + 1);
    validateDomain(registry, fail);
  }
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;

  if (repository !== repository.toLowerCase()) fail('the repository name must be lowercase');
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      fail(
        component === ''
          ? 'the repository name has an empty path component'
          : `"${component}" may only hold lowercase letters, digits and single separators ('.', '_', '__', '-')`,
      );
    }
  }
  const name = `${registry}/${repository}`;
  if (name.length > NAME_MAX_LENGTH) fail(`the name is longer than ${NAME_MAX_LENGTH} characters`);

  if (tag === undefined && digest === undefined) tag = 'latest';
  const canonical = name + (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : '');
  return {
    registry,
    apiHost: registryApiHost(registry),
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    canonical,
  };
}

function validateDigest(digest: string, fail: (reason: string) => never): void {
  if (!DIGEST.test(digest)) fail(`"${digest}" is not a digest (expected sha256:<64 hex characters>)`);
  const [algorithm, hex = ''] = digest.split(':');
  if (algorithm === 'sha256' && !SHA256_HEX.test(hex))
    fail('a sha256 digest has exactly 64 lowercase hexadecimal characters');
  if (algorithm === 'sha512' && !/^[a-f0-9]{128}$/.test(hex))
    fail('a sha512 digest has exactly 128 lowercase hexadecimal characters');
}

function validateDomain(domain: string, fail: (reason: string) => never): void {
  let host = domain;
  const portAt = domain.startsWith('[') ? domain.indexOf(']:') + 1 : domain.lastIndexOf(':');
  if (portAt > 0) {
    const port = domain.slice(portAt + 1);
    if (!PORT.test(port) || Number(port) > 65535) fail(`"${port}" is not a port number`);
    host = domain.slice(0, portAt);
  }
  if (IPV6_HOST.test(host)) return;
  if (!host.split('.').every((c) => DOMAIN_COMPONENT.test(c)))
    fail(`"${domain}" is not a valid registry host`);
}
