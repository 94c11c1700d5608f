import { api } from '$lib/api';

export async function load({ parent }) {
  await parent();
  // A coordinator has a handful of sites: one page of them, and their bundles, newest first.
  const [sites, bundles] = await Promise.all([api.sites.list({ limit: 100, sort: 'name', order: 'asc' }), api.bundles.list({ limit: 200 })]);
  return { sites: sites.items, bundles: bundles.items };
}
