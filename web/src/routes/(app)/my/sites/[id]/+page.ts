import { error } from '@sveltejs/kit';
import { get } from 'svelte/store';
import { api, ApiError } from '$lib/api';
import { t } from '$lib/i18n';

export async function load({ params, parent }) {
  await parent();
  try {
    const [site, bundles] = await Promise.all([
      api.sites.get(params.id),
      api.bundles.list({ siteId: params.id, limit: 20 }),
    ]);
    return { site, bundles: bundles.items };
  } catch (err) {
    // A site that is not one of yours is "not found", like one that does not exist.
    if (err instanceof ApiError && (err.status === 404 || err.status === 400))
      error(404, get(t)('errors.noSuchSite'));
    throw err;
  }
}
