import type { BundleState } from '$lib/api';
import { BUNDLE_STATES } from './labels';

/** What the bundles page shows; it lives in the URL so a view survives reload and can be shared. */
export interface BundleView {
  state?: BundleState;
  releaseId?: string;
}

export function viewFromParams(params: URLSearchParams): BundleView {
  const state = params.get('state');
  const release = params.get('release')?.trim();
  return {
    ...(state && (BUNDLE_STATES as readonly string[]).includes(state) ? { state: state as BundleState } : {}),
    ...(release && /^[0-9a-f-]{36}$/i.test(release) ? { releaseId: release } : {}),
  };
}

export function viewToSearch(view: BundleView): string {
  const params = new URLSearchParams();
  if (view.state) params.set('state', view.state);
  if (view.releaseId) params.set('release', view.releaseId);
  const s = params.toString();
  return s ? `?${s}` : '';
}
