import type { BundleMode, BundleState } from '$lib/api';

export const BUNDLE_STATES: readonly BundleState[] = ['queued', 'building', 'ready', 'failed'];

export const BUNDLE_STATE_LABELS: Record<BundleState, string> = {
  queued: 'Waiting',
  building: 'Being built',
  ready: 'Ready',
  failed: 'Failed',
};

/** One line per state, in plain words. */
export const BUNDLE_STATE_HINTS: Record<BundleState, string> = {
  queued: 'waiting for its turn to be built',
  building: 'being put together now',
  ready: 'can be downloaded',
  failed: 'could not be built',
};

export const BUNDLE_MODES: readonly BundleMode[] = ['auto', 'full', 'delta'];

export const MODE_LABELS: Record<BundleMode, string> = {
  auto: 'Smallest that works (recommended)',
  full: 'Full',
  delta: 'Only what changed',
};

export const MODE_HINTS: Record<BundleMode, string> = {
  auto: 'Sites that told us which version they run get only what changed since then; the others get everything.',
  full: 'Every site gets everything. The biggest download, but it works whatever the site runs now.',
  delta: 'Every site gets only what changed since the version it runs. Refused if a site has never told us its version.',
};

/**
 * What a failed build means for the person who asked for it. The server's own message (often
 * technical) is still shown, under "Details".
 */
const FAILURE_WORDS: Record<string, string> = {
  REGISTRY_UNREACHABLE: 'Outpost could not reach the registry that holds the images. This is often temporary: try again later.',
  REGISTRY_AUTH_FAILED: 'The registry that holds the images refused Outpost. Check the registry credentials in Settings, then try again.',
  REGISTRY_ERROR: 'The registry that holds the images answered with an error. Try again later; if it fails again, check the registry.',
  DIGEST_MISMATCH: 'An image from the registry was not exactly the one the release names, so it was not packed. Check the registry, then try again.',
  INVALID_IMAGE: 'One of the release\'s images could not be packed. Check the images of the release.',
  INVALID_BUNDLE: 'The bundle failed its own check after it was built. Try again; if it fails again, tell whoever runs Outpost.',
  STORAGE_FAILED: 'Outpost could not save the bundle in its storage. This is often temporary: try again later.',
  RELEASE_REVOKED: 'The release was revoked, so its bundles cannot be built or downloaded any more.',
  REGISTRY_NOT_ALLOWED: 'The registry is not one Outpost may reach (plain http, or an address inside a private network). Whoever runs Outpost can allow a self-hosted registry with OUTPOST_REGISTRY_ALLOW_INSECURE.',
  PARTS_MISSING: 'Part of the bundle went missing from Outpost\'s storage, so it could not be downloaded. Press Try again to build it again.',
  NO_IMAGES: 'The release has no images, so there is nothing to pack. Publish a release with its images and ask for bundles of that one.',
  RELEASE_GONE: 'The release was deleted, so its bundles cannot be built.',
  ARCHIVE_GONE: 'The images this bundle shares with the other sites were removed. Ask for the bundle again.',
};

export function failureWords(code: string): string {
  return FAILURE_WORDS[code] ?? 'The bundle could not be built. Try again; if it fails again, tell whoever runs Outpost.';
}

/** "Full" or "Only what changed since 1.0.0". */
export function kindWords(b: { delta: boolean; fromRelease: { version: string } | null }): string {
  return b.delta && b.fromRelease ? `Only what changed since ${b.fromRelease.version}` : b.delta ? 'Only what changed' : 'Full';
}

export function isExpired(b: { expiresAt: string | null }, now = Date.now()): boolean {
  return b.expiresAt !== null && Date.parse(b.expiresAt) <= now;
}
