import { get } from 'svelte/store';
import { t } from '$lib/i18n';
import type { Connectivity, SiteReport, SiteSort, SiteStatus } from '$lib/api';

/** Statuses in the order the fleet overview lists them: what needs attention first. */
export const SITE_STATUSES: readonly SiteStatus[] = [
  'failed',
  'revoked',
  'silent',
  'behind',
  'never_reported',
  'no_target',
  'ahead',
  'on_target',
];

export const STATUS_LABELS: Record<SiteStatus, string> = {
  on_target: 'states.site.on_target',
  behind: 'states.site.behind',
  ahead: 'states.site.ahead',
  failed: 'states.site.failed',
  revoked: 'states.site.revoked',
  never_reported: 'states.site.never_reported',
  silent: 'states.site.silent',
  no_target: 'states.site.no_target',
};

/** One line per status, in plain words. */
export const STATUS_HINTS: Record<SiteStatus, string> = {
  on_target: 'states.siteHint.on_target',
  behind: 'states.siteHint.behind',
  ahead: 'states.siteHint.ahead',
  failed: 'states.siteHint.failed',
  revoked: 'states.siteHint.revoked',
  never_reported: 'states.siteHint.never_reported',
  silent: 'states.siteHint.silent',
  no_target: 'states.siteHint.no_target',
};

export const CONNECTIVITY_LABELS: Record<Connectivity, string> = {
  online: 'states.connectivity.online',
  intermittent: 'states.connectivity.intermittent',
  offline: 'states.connectivity.offline',
};
export const CONNECTIVITIES = Object.keys(CONNECTIVITY_LABELS) as Connectivity[];

export const SORT_LABELS: Record<SiteSort, string> = {
  code: 'sites.sort.code',
  name: 'sites.sort.name',
  region: 'sites.sort.region',
  reportedAt: 'sites.sort.reportedAt',
  createdAt: 'sites.sort.createdAt',
};
export const SITE_SORTS = Object.keys(SORT_LABELS) as SiteSort[];

export const SOURCE_LABELS: Record<SiteReport['source'], string> = {
  heartbeat: 'states.source.heartbeat',
  receipt_code: 'states.source.receipt_code',
  receipt_file: 'states.source.receipt_file',
  manual: 'states.source.manual',
};

const REPORT_STATUS_LABELS: Record<string, string> = {
  healthy: 'states.report.healthy',
  degraded: 'states.report.degraded',
  failed: 'states.report.failed',
  installing: 'states.report.installing',
  installed: 'states.report.installed',
  rolled_back: 'states.report.rolled_back',
};

/** What a site said about itself ("healthy", "rolled_back", …) in words; unknown values as sent. */
export function reportStatusLabel(status: string | null | undefined): string {
  if (!status) return '—';
  const k = REPORT_STATUS_LABELS[status];
  return k ? get(t)(k) : status;
}

/** Receipt outcomes as a verb phrase: "installed", "failed", "rolled back". */
export function outcomeWords(outcome: string): string {
  return get(t)(`states.outcome.${outcome}`, { default: outcome });
}
