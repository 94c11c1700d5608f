import type { Connectivity, FleetFilter, FleetFigure } from '$lib/api';
import { CONNECTIVITIES } from '$lib/components/sites/labels';
import { DEFAULT_VIEW, viewToSearch as siteSearch, type SiteView } from '$lib/components/sites/filters';

/** The dashboard's view: its filters and the adoption window. It lives in the URL, so a view can be shared and printed again. */
export interface DashboardView extends FleetFilter {
  days: number;
}

export const ADOPTION_WINDOWS = [30, 90, 180, 365] as const;
export const DEFAULT_DAYS = 90;

export function viewFromParams(params: URLSearchParams): DashboardView {
  const view: DashboardView = { days: DEFAULT_DAYS };
  for (const key of ['region', 'district', 'tag'] as const) {
    const v = params.get(key)?.trim();
    if (v) view[key] = v;
  }
  const c = params.get('connectivity');
  if (c && (CONNECTIVITIES as readonly string[]).includes(c)) view.connectivity = c as Connectivity;
  const silent = Number(params.get('silentDays'));
  if (Number.isInteger(silent) && silent >= 1 && silent <= 3650) view.silentDays = silent;
  const days = Number(params.get('days'));
  if ((ADOPTION_WINDOWS as readonly number[]).includes(days)) view.days = days;
  return view;
}

export function viewToSearch(view: DashboardView): string {
  const p = new URLSearchParams();
  for (const key of ['region', 'district', 'tag', 'connectivity'] as const)
    if (view[key]) p.set(key, view[key]!);
  if (view.silentDays) p.set('silentDays', String(view.silentDays));
  if (view.days !== DEFAULT_DAYS) p.set('days', String(view.days));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function fleetFilter(view: DashboardView): FleetFilter {
  const { days: _days, ...f } = view;
  return f;
}

/** The site list that shows a figure's sites (null when no filter can list them, e.g. sites with no region). */
export function sitesHref(filter: FleetFigure['filter']): string | null {
  if (!filter) return null;
  return `/sites${siteSearch({ ...DEFAULT_VIEW, ...filter } as SiteView)}`;
}
