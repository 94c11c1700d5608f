import { get } from 'svelte/store';
import { t } from '$lib/i18n';
import type { BundleMode, BundleState } from '$lib/api';

export const BUNDLE_STATES: readonly BundleState[] = ['queued', 'building', 'ready', 'failed'];

export const BUNDLE_STATE_LABELS: Record<BundleState, string> = {
  queued: 'states.bundle.queued',
  building: 'states.bundle.building',
  ready: 'states.bundle.ready',
  failed: 'states.bundle.failed',
};

/** One line per state, in plain words. */
export const BUNDLE_STATE_HINTS: Record<BundleState, string> = {
  queued: 'states.bundleHint.queued',
  building: 'states.bundleHint.building',
  ready: 'states.bundleHint.ready',
  failed: 'states.bundleHint.failed',
};

export const BUNDLE_MODES: readonly BundleMode[] = ['auto', 'full', 'delta'];

export const MODE_LABELS: Record<BundleMode, string> = {
  auto: 'bundles.mode.auto',
  full: 'bundles.mode.full',
  delta: 'bundles.mode.delta',
};

export const MODE_HINTS: Record<BundleMode, string> = {
  auto: 'bundles.modeHint.auto',
  full: 'bundles.modeHint.full',
  delta: 'bundles.modeHint.delta',
};

/**
 * What a failed build means for the person who asked for it. The server's own message (often
 * technical) is still shown, under "Details".
 */
const FAILURE_WORDS: Record<string, string> = {
  REGISTRY_UNREACHABLE: 'errors.build.REGISTRY_UNREACHABLE',
  REGISTRY_AUTH_FAILED: 'errors.build.REGISTRY_AUTH_FAILED',
  REGISTRY_ERROR: 'errors.build.REGISTRY_ERROR',
  DIGEST_MISMATCH: 'errors.build.DIGEST_MISMATCH',
  INVALID_IMAGE: 'errors.build.INVALID_IMAGE',
  INVALID_BUNDLE: 'errors.build.INVALID_BUNDLE',
  STORAGE_FAILED: 'errors.build.STORAGE_FAILED',
  RELEASE_REVOKED: 'errors.build.RELEASE_REVOKED',
  REGISTRY_NOT_ALLOWED: 'errors.build.REGISTRY_NOT_ALLOWED',
  PARTS_MISSING: 'errors.build.PARTS_MISSING',
  NO_IMAGES: 'errors.build.NO_IMAGES',
  RELEASE_GONE: 'errors.build.RELEASE_GONE',
  ARCHIVE_GONE: 'errors.build.ARCHIVE_GONE',
};

export function failureWords(code: string): string {
  return get(t)(FAILURE_WORDS[code] ?? 'errors.build.other');
}

/** "Full" or "Only what changed since 1.0.0". */
export function kindWords(b: { delta: boolean; fromRelease: { version: string } | null }): string {
  const tr = get(t);
  return b.delta && b.fromRelease
    ? tr('bundles.kind.deltaSince', { values: { version: b.fromRelease.version } })
    : b.delta
      ? tr('bundles.kind.delta')
      : tr('bundles.kind.full');
}

export function isExpired(b: { expiresAt: string | null }, now = Date.now()): boolean {
  return b.expiresAt !== null && Date.parse(b.expiresAt) <= now;
}
