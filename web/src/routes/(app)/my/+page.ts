import { api } from '$lib/api';

export async function load({ parent }) {
  await parent();
  // A coordinator has a handful of sites: one page of them, and their bundles, newest first.
  const [sites, bundles] = await Promise.all([
    api.sites.list({ limit: 100, sort: 'name', order: 'asc' }),
    api.bundles.list({ limit: 200 }),
  ]);
  // The live rollout of each (its deadline is the one to tell): a request per site, a handful at most.
  const rollouts = Object.fromEntries(
    await Promise.all(sites.items.map(async (s) => [s.id, (await api.sites.rollout(s.id)).rollout] as const)),
  );
  return { sites: sites.items, bundles: bundles.items, rollouts };
}
