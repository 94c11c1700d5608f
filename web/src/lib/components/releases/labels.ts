import { get } from 'svelte/store';
import { t } from '$lib/i18n';
import type { ReleaseState } from '$lib/api';

export const STATE_LABELS: Record<ReleaseState, string> = {
  draft: 'states.release.draft',
  published: 'states.release.published',
  deprecated: 'states.release.deprecated',
  revoked: 'states.release.revoked',
};

/** One line per state, in plain words. */
export const STATE_HINTS: Record<ReleaseState, string> = {
  draft: 'states.releaseHint.draft',
  published: 'states.releaseHint.published',
  deprecated: 'states.releaseHint.deprecated',
  revoked: 'states.releaseHint.revoked',
};

export const RELEASE_STATES = Object.keys(STATE_LABELS) as ReleaseState[];

/** Platforms offered first; any os/architecture[/variant] the registry has is accepted. */
export const COMMON_PLATFORMS = ['linux/amd64', 'linux/arm64', 'linux/arm/v7'] as const;

/** `sha256:0123456789ab…` → `0123456789ab`: enough to tell digests apart by eye. */
export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** "3 versions behind", "1 version behind", "latest". */
export function behindWords(n: number): string {
  return n === 0 ? get(t)('releases.latest') : get(t)('releases.versionsBehind', { values: { count: n } });
}
