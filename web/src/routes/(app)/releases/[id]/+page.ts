import { error } from '@sveltejs/kit';
import { get } from 'svelte/store';
import { t } from '$lib/i18n';
import { api, ApiError } from '$lib/api';

export async function load({ params, parent }) {
  // The layout makes sure someone is signed in first.
  await parent();
  try {
    return { release: await api.releases.get(params.id) };
  } catch (err) {
    // Another organisation's release or a malformed id: both "not found".
    if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
      error(404, get(t)('errors.noSuchRelease'));
    }
    throw err;
  }
}
