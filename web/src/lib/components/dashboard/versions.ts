import type { FleetAdoption, FleetOverview } from '$lib/api';
import { NEVER_REPORTED_COLOUR, releaseColour } from './palette';

export interface VersionKey {
  version: string | null;
  colour: string;
  revoked: boolean;
}

/** Every version the page shows, newest first, each with its colour — the same in every chart. */
export function versionKeys(o: FleetOverview | null, a: FleetAdoption | null): VersionKey[] {
  const seen = new Map<string | null, VersionKey>();
  let i = 0;
  for (const v of o?.summary.versions ?? []) {
    if (v.version === null) continue;
    seen.set(v.version, { version: v.version, colour: releaseColour(i++), revoked: v.revoked });
  }
  for (const s of a?.series ?? []) {
    if (!seen.has(s.version))
      seen.set(s.version, { version: s.version, colour: releaseColour(i++), revoked: false });
  }
  if (o?.summary.versions.some((v) => v.version === null))
    seen.set(null, { version: null, colour: NEVER_REPORTED_COLOUR, revoked: false });
  return [...seen.values()];
}
