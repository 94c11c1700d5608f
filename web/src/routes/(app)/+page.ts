import { fleetCounts } from '$lib/components/fleet/counts';

export async function load({ parent }) {
  // The layout makes sure someone is signed in first.
  await parent();
  return { counts: await fleetCounts() };
}
