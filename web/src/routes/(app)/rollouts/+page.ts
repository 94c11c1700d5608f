import { api } from '$lib/api';

export async function load({ parent }) {
  await parent();
  return { rollouts: (await api.rollouts.list()).items };
}
