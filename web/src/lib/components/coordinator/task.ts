import type { Bundle, Site, SiteRollout } from '$lib/api';

/** What a coordinator should do now at one site, as a message key and its values (see coordinator.json). */
export interface Task {
  key: string;
  values: Record<string, string | number>;
  tone: 'todo' | 'wait' | 'done' | 'problem';
}

/** The bundle to offer for a site: the newest ready one of its target release, else the newest ready one. */
export function bundleToOffer(site: Site, bundles: Bundle[]): Bundle | null {
  const usable = bundles.filter(
    (b) => b.state === 'ready' && (!b.expiresAt || Date.parse(b.expiresAt) > Date.now()),
  );
  return (
    usable.find((b) => b.release.id === site.targetReleaseId) ??
    (site.targetReleaseId ? null : (usable[0] ?? null))
  );
}

/**
 * One sentence per site, most urgent first: a failed install, an update to install, one being
 * prepared, nothing. The date to install by is the rollout wave's deadline when the site is in a
 * live rollout of that release, else the bundle's expiry.
 */
export function taskFor(
  site: Site,
  bundles: Bundle[],
  formatDate: (iso: string) => string,
  rollout: SiteRollout = null,
): Task {
  const offer = bundleToOffer(site, bundles);
  const preparing = bundles.find(
    (b) =>
      (b.state === 'queued' || b.state === 'building') &&
      (!site.targetReleaseId || b.release.id === site.targetReleaseId),
  );
  if (site.status === 'failed')
    return {
      key: 'coordinator.task.failed',
      values: { version: site.reportedVersion ?? '' },
      tone: 'problem',
    };
  if (site.status === 'on_target')
    return {
      key: 'coordinator.task.upToDate',
      values: { version: site.reportedVersion ?? '' },
      tone: 'done',
    };
  if (offer && offer.release.version !== site.reportedVersion) {
    const deadline =
      rollout && rollout.version === offer.release.version ? rollout.deadlineAt : offer.expiresAt;
    return deadline
      ? {
          key: 'coordinator.task.installBefore',
          values: { version: offer.release.version, date: formatDate(deadline) },
          tone: 'todo',
        }
      : { key: 'coordinator.task.install', values: { version: offer.release.version }, tone: 'todo' };
  }
  if (preparing)
    return {
      key: 'coordinator.task.preparing',
      values: { version: preparing.release.version },
      tone: 'wait',
    };
  if (site.targetVersion && site.targetVersion !== site.reportedVersion)
    return { key: 'coordinator.task.planned', values: { version: site.targetVersion }, tone: 'wait' };
  return { key: 'coordinator.task.nothing', values: {}, tone: 'done' };
}

/** Link speeds to estimate a download with when the site's own is not known (kbit/s). */
export const LINK_PRESETS = [
  { id: 'satellite', kbps: 512 },
  { id: '3g', kbps: 1_000 },
  { id: '4g', kbps: 10_000 },
] as const;

export function downloadSeconds(bytes: number, kbps: number): number {
  return (bytes * 8) / (kbps * 1000);
}

const DRIVE_GB = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** The smallest common USB drive that holds the file with a little room to spare (GB as sold: 10^9 bytes). */
export function usbDriveGb(bytes: number): number {
  return DRIVE_GB.find((gb) => gb * 1e9 * 0.93 >= bytes) ?? 1024;
}

/** FAT32, the usual format of a new drive, cannot hold one file of 4 GiB or more. */
export const FAT32_LIMIT = 4 * 1024 ** 3 - 1;
