import type { ReleaseState } from '$lib/api';

export const STATE_LABELS: Record<ReleaseState, string> = {
  draft: 'Draft',
  published: 'Published',
  deprecated: 'Deprecated',
  revoked: 'Revoked',
};

/** One line per state, in plain words. */
export const STATE_HINTS: Record<ReleaseState, string> = {
  draft: 'being prepared: can still change, cannot be rolled out',
  published: 'fixed for good: can be bundled and rolled out',
  deprecated: 'still installable, but a newer release should be used',
  revoked: 'never bundled or rolled out again; sites on it need another release',
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
  return n === 0 ? 'Latest' : `${n} ${n === 1 ? 'version' : 'versions'} behind`;
}
