import { redirect } from '@sveltejs/kit';
import { safeNext, session } from '$lib/session.svelte';

export async function load({ url }) {
  // Already signed in: nothing to do here.
  if (await session.load()) redirect(307, safeNext(url.searchParams.get('next')));
}
