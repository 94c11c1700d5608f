import { api, type SiteStatus } from '$lib/api';
import { SITE_STATUSES } from '$lib/components/sites/labels';

export interface Count { total: number; exact: boolean }
export interface FleetCounts { all: Count; byStatus: Record<SiteStatus, Count> }

/** Exact counts from the fleet summary, in one request (a capped list count said "1,000+" of 2,000 sites). */
export async function fleetCounts(): Promise<FleetCounts> {
  const s = await api.sites.summary();
  return {
    all: { total: s.total, exact: true },
    byStatus: Object.fromEntries(SITE_STATUSES.map((k) => [k, { total: s.byStatus[k] ?? 0, exact: true }])) as Record<SiteStatus, Count>,
  };
}
