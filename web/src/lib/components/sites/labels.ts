import type { Connectivity, SiteReport, SiteSort, SiteStatus } from '$lib/api';

/** Statuses in the order the fleet overview lists them: what needs attention first. */
export const SITE_STATUSES: readonly SiteStatus[] = ['failed', 'revoked', 'silent', 'behind', 'never_reported', 'no_target', 'on_target'];

export const STATUS_LABELS: Record<SiteStatus, string> = {
  on_target: 'On target',
  behind: 'Behind',
  failed: 'Failed',
  revoked: 'On a revoked release',
  never_reported: 'Never reported',
  silent: 'Silent',
  no_target: 'No target',
};

/** One line per status, in plain words. */
export const STATUS_HINTS: Record<SiteStatus, string> = {
  on_target: 'runs the version it should',
  behind: 'runs another version than its target',
  failed: 'its last install failed or was rolled back',
  revoked: 'runs a release that was revoked: it needs another one',
  never_reported: 'has not reported yet',
  silent: 'no report for 7 days or more',
  no_target: 'reports, but has no target version yet',
};

export const CONNECTIVITY_LABELS: Record<Connectivity, string> = {
  online: 'Online',
  intermittent: 'Intermittent',
  offline: 'Offline',
};
export const CONNECTIVITIES = Object.keys(CONNECTIVITY_LABELS) as Connectivity[];

export const SORT_LABELS: Record<SiteSort, string> = {
  code: 'Code',
  name: 'Name',
  region: 'Region',
  reportedAt: 'Last seen',
  createdAt: 'Date added',
};
export const SITE_SORTS = Object.keys(SORT_LABELS) as SiteSort[];

export const SOURCE_LABELS: Record<SiteReport['source'], string> = {
  heartbeat: 'Heartbeat',
  receipt_code: 'Receipt code',
  receipt_file: 'Receipt file',
  manual: 'Manual',
};

const REPORT_STATUS_LABELS: Record<string, string> = {
  healthy: 'Healthy',
  degraded: 'Degraded',
  failed: 'Failed',
  installing: 'Installing',
  installed: 'Installed',
  rolled_back: 'Rolled back',
};

/** What a site said about itself ("healthy", "rolled_back", …) in words; unknown values as sent. */
export function reportStatusLabel(status: string | null | undefined): string {
  return status ? REPORT_STATUS_LABELS[status] ?? status : '—';
}

/** Receipt outcomes as a verb phrase: "installed", "failed", "rolled back". */
export function outcomeWords(outcome: string): string {
  return outcome === 'rolled_back' ? 'rolled back' : outcome === 'failed' ? 'failed to install' : outcome;
}
