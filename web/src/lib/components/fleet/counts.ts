import { api, type SiteStatus } from '$lib/api';
import { SITE_STATUSES } from '$lib/components/sites/labels';

export interface Count { total: number; exact: boolean }
export interface FleetCounts { all: Count; byStatus: Record<SiteStatus, Count> }

/** One capped count per status (a page of one site each): cheap, and honest past 10,000 ("10,000+"). */
export async function fleetCounts(): Promise<FleetCounts> {
  const count = (status?: SiteStatus) => api.sites.list({ status, limit: 1 }).then((r) => ({ total: r.total, exact: r.totalIsExact }));
  const [all, ...counts] = await Promise.all([count(), ...SITE_STATUSES.map((s) => count(s))]);
  return { all, byStatus: Object.fromEntries(SITE_STATUSES.map((s, i) => [s, counts[i]!])) as Record<SiteStatus, Count> };
}
