import type { SiteFilter, SiteSort, SiteStatus } from '$lib/api';
import { CONNECTIVITIES, SITE_SORTS, STATUS_LABELS } from './labels';

/** What the site list shows: filters plus sort. It lives in the URL, so a view can be shared and survives reload. */
export interface SiteView extends SiteFilter {
  sort: SiteSort;
  order: 'asc' | 'desc';
}

export const DEFAULT_VIEW: SiteView = { sort: 'code', order: 'asc' };

/** The release layers a site can drift on (the fleet dashboard links to them). */
export const DRIFT_LAYERS = ['content', 'compose', 'scripts'] as const;

const TEXT_KEYS = ['q', 'region', 'district', 'tag', 'version'] as const;

function oneOf<T extends string>(value: string | null, allowed: readonly T[]): T | undefined {
  return value !== null && (allowed as readonly string[]).includes(value) ? (value as T) : undefined;
}

/** Reads a view from a URL query; anything unknown or malformed is ignored, not an error. */
export function viewFromParams(params: URLSearchParams): SiteView {
  const view: SiteView = { ...DEFAULT_VIEW };
  for (const key of TEXT_KEYS) {
    const v = params.get(key)?.trim();
    if (v) view[key] = v;
  }
  view.connectivity = oneOf(params.get('connectivity'), CONNECTIVITIES);
  view.status = oneOf(params.get('status'), Object.keys(STATUS_LABELS) as SiteStatus[]);
  const days = Number(params.get('silentDays'));
  if (Number.isInteger(days) && days >= 1 && days <= 3650) view.silentDays = days;
  if (params.get('archived') === 'true') view.archived = true;
  const behind = Number(params.get('behind'));
  if (behind === 1 || behind === 2 || behind === 3) view.behind = behind;
  view.drift = oneOf(params.get('drift'), DRIFT_LAYERS);
  view.sort = oneOf(params.get('sort'), SITE_SORTS) ?? DEFAULT_VIEW.sort;
  view.order = params.get('order') === 'desc' ? 'desc' : 'asc';
  return view;
}

/** The URL query of a view (defaults left out), e.g. "?region=Coast&status=silent". */
export function viewToSearch(view: SiteView): string {
  const params = new URLSearchParams();
  for (const key of TEXT_KEYS) {
    const v = view[key]?.trim();
    if (v) params.set(key, v);
  }
  if (view.connectivity) params.set('connectivity', view.connectivity);
  if (view.status) params.set('status', view.status);
  if (view.silentDays) params.set('silentDays', String(view.silentDays));
  if (view.archived) params.set('archived', 'true');
  if (view.behind) params.set('behind', String(view.behind));
  if (view.drift) params.set('drift', view.drift);
  if (view.sort !== DEFAULT_VIEW.sort) params.set('sort', view.sort);
  if (view.order !== DEFAULT_VIEW.order) params.set('order', view.order);
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** Whether any filter narrows the list (sort does not). */
export function isFiltered(view: SiteView): boolean {
  return Boolean(
    view.q ||
    view.region ||
    view.district ||
    view.tag ||
    view.connectivity ||
    view.version ||
    view.status ||
    view.silentDays ||
    view.archived ||
    view.behind ||
    view.drift,
  );
}
