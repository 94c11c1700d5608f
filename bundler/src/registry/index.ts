export {
  parseImageReference,
  registryApiHost,
  isDigest,
  ImageReferenceError,
  DOCKER_HUB,
  type ImageReference,
} from './reference.ts';
export {
  RegistryClient,
  blobToNodeStream,
  formatPlatform,
  type RegistryClientOptions,
  type RegistryCredentials,
  type Platform,
  type Descriptor,
  type ManifestResult,
  type ManifestJson,
  type ResolvedImage,
  type BlobOptions,
} from './client.ts';
export { RegistryError, type RegistryErrorKind } from './errors.ts';
export { MediaType, MANIFEST_ACCEPT } from './media-types.ts';
export { parseWwwAuthenticate, type AuthChallenge } from './www-authenticate.ts';
export { parseAllowInsecure, isPublicAddress, assertAllowedUrl, type AllowList } from './destination.ts';
