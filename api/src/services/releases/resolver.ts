import type { LayerRef } from '../../db/schema/index.ts';
import type { RegistrySecret } from '../registries/credentials.ts';

/** An image reference resolved, for one platform, to the digest that will be pinned forever. */
export interface ResolvedImage {
  registry: string;
  repository: string;
  digest: string;
  indexDigest?: string;
  mediaType: string;
  platform: string;
  config: LayerRef;
  layers: LayerRef[];
  totalSize: number;
}

export type ImageResolveFailure =
  | 'unknown-image'
  | 'unknown-tag'
  | 'unauthorized'
  | 'unreachable'
  | 'platform-not-found'
  | 'digest-mismatch'
  | 'invalid-reference'
  | 'protocol'
  | 'forbidden-address';

export class ImageResolveError extends Error {
  constructor(
    readonly kind: ImageResolveFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Looks images up in their registries (the bundler's OCI client in production; see registry-resolver.ts). */
export interface ImageResolver {
  /** The registry host a reference points at (docker.io for Docker Hub), to pick the organisation's credentials. */
  registryOf(reference: string): string;
  resolve(input: {
    reference: string;
    platform: string;
    credentials?: RegistrySecret;
  }): Promise<ResolvedImage>;
}
