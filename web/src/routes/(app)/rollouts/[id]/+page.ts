import { error } from '@sveltejs/kit';
import { get } from 'svelte/store';
import { api, ApiError } from '$lib/api';
import { t } from '$lib/i18n';

export async function load({ params, parent }) {
  await parent();
  try {
    return { rollout: await api.rollouts.get(params.id) };
  } catch (err) {
    // Another organisation's rollout or a malformed id: both "not found".
    if (err instanceof ApiError && (err.status === 404 || err.status === 400))
      error(404, get(t)('rollouts.progress.notFound'));
    throw err;
  }
}
