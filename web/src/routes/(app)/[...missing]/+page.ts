import { error } from '@sveltejs/kit';
import { get } from 'svelte/store';
import { t } from '$lib/i18n';

// Any address the app does not know: a 404 shown inside the app's layout (navigation kept), after the
// layout made sure someone is signed in.
export async function load({ parent }) {
  await parent();
  error(404, get(t)('errors.pageNotFoundHint'));
}
