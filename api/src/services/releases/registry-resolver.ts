import {
  ImageReferenceError,
  RegistryClient,
  RegistryError,
  formatPlatform,
  parseImageReference,
  type RegistryErrorKind,
} from '@outpost/bundler';
import { ImageResolveError, type ImageResolveFailure, type ImageResolver } from './resolver.ts';

const KIND: Record<RegistryErrorKind, ImageResolveFailure> = {
  'unknown-repository': 'unknown-image',
  'unknown-tag': 'unknown-tag',
  'unknown-manifest': 'unknown-tag',
  'unknown-blob': 'protocol',
  unauthorized: 'unauthorized',
  denied: 'unauthorized',
  unreachable: 'unreachable',
  'digest-mismatch': 'digest-mismatch',
  'platform-not-found': 'platform-not-found',
  protocol: 'protocol',
  'forbidden-address': 'forbidden-address',
};

function parsePlatform(p: string) {
  const [os, architecture, variant] = p.split('/');
  return { os: os!, architecture: architecture!, ...(variant ? { variant } : {}) };
}

/** Registry client settings from the entry point: tuning, and the destination policy (OUTPOST_REGISTRY_ALLOW_INSECURE, the guarded fetch on Node). */
export interface RegistryClientSettings {
  retries?: number;
  backoffMs?: number;
  timeoutMs?: number;
  allowInsecure?: Iterable<string>;
  fetch?: typeof globalThis.fetch;
}

/** Resolves images with the bundler's OCI registry client (Registry HTTP API v2, no Docker daemon). */
export function registryImageResolver(opts: RegistryClientSettings = {}): ImageResolver {
  return {
    registryOf(reference) {
      try {
        return parseImageReference(reference).registry;
      } catch {
        return '';
      }
    },
    async resolve({ reference, platform, credentials }) {
      let ref;
      try {
        ref = parseImageReference(reference);
      } catch (e) {
        if (e instanceof ImageReferenceError) throw new ImageResolveError('invalid-reference', e.message);
        throw e;
      }
      const client = new RegistryClient({ registry: ref.registry, credentials, ...opts });
      try {
        const r = await client.resolve(
          ref.repository,
          ref.digest ?? ref.tag ?? 'latest',
          parsePlatform(platform),
        );
        return {
          registry: ref.registry,
          repository: ref.repository,
          digest: r.digest,
          indexDigest: r.indexDigest,
          mediaType: r.mediaType,
          platform: formatPlatform(r.platform),
          config: r.config,
          layers: r.layers,
          totalSize: r.totalSize,
        };
      } catch (e) {
        if (e instanceof RegistryError) throw new ImageResolveError(KIND[e.kind], e.message);
        throw e;
      }
    },
  };
}
