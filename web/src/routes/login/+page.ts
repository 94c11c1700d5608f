import { redirect } from '@sveltejs/kit';
import { homeFor, safeNext, session } from '$lib/session.svelte';

export async function load({ url }) {
  // Already signed in: nothing to do here.
  const me = await session.load();
  if (me) {
    const next = safeNext(url.searchParams.get('next'));
    redirect(307, next === '/' ? homeFor(me) : next);
  }
}
