import { redirect } from '@sveltejs/kit';
import { loginPath, session } from '$lib/session.svelte';

export async function load({ url }) {
  const me = await session.load();
  if (!me) redirect(307, loginPath(url.pathname + url.search));
}
