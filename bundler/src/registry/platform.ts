// Platform matching: which image of an index (or which single-platform image) a site can run.
// Names are normalised the way the registries' clients do (x86_64 → amd64, arm64/v8 → arm64).

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

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

export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  const architecture =
    ARCHITECTURE_ALIASES[platform.architecture.toLowerCase()] ?? platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase();
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  if (architecture === 'arm' && variant && /^\d$/.test(variant)) variant = `v${variant}`;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** The platform as the registry declares it, without extra fields (os.version, features). */
export function plainPlatform(p: Platform): Platform {
  return {
    os: p.os,
    architecture: p.architecture,
    ...(typeof p.variant === 'string' && p.variant ? { variant: p.variant } : {}),
  };
}

export function platformMatches(candidate: Platform, wanted: Platform): boolean {
  const c = normalizePlatform(candidate);
  return (
    c.os === wanted.os &&
    c.architecture === wanted.architecture &&
    (wanted.variant === undefined || c.variant === wanted.variant)
  );
}

/** The index entry for a platform: exact variant when asked for, else the plainest match. */
export function choosePlatform<T extends { platform?: Platform }>(
  entries: T[],
  wanted: Platform,
): T | undefined {
  const matches = entries.filter((e) => e.platform && platformMatches(e.platform, wanted));
  if (wanted.variant !== undefined) return matches[0];
  return matches.find((e) => !normalizePlatform(e.platform!).variant) ?? matches[0];
}
