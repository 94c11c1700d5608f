import { redirect } from '@sveltejs/kit';
import { session } from '$lib/session.svelte';

export async function load({ parent }) {
  // The layout makes sure someone is signed in first.
  await parent();
  // The dashboard is the ministry's page; a coordinator's start page is their own sites.
  if (session.me?.role === 'coordinator') redirect(307, '/my');
  return {};
}
