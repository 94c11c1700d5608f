import { error } from '@sveltejs/kit';
import { get } from 'svelte/store';
import { t } from '$lib/i18n';
import { api, ApiError } from '$lib/api';

export async function load({ params, parent }) {
  // The layout makes sure someone is signed in first.
  await parent();
  try {
    return { site: await api.sites.get(params.id) };
  } catch (err) {
    // Another organisation's site, one not assigned to this coordinator, or a malformed id: all "not found".
    if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
      error(404, get(t)('errors.noSuchSite'));
    }
    throw err;
  }
}
