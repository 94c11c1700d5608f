import { api, ApiError } from '$lib/api';

export async function load({ parent }) {
  await parent();
  const dates = (await api.blackoutDates.list()).items;
  try {
    return { dates, webhooks: (await api.webhooks.list()).items, canManageHooks: true };
  } catch (err) {
    // Webhooks are for owners and admins; everyone else sees the blackout dates only.
    if (err instanceof ApiError && err.status === 403) return { dates, webhooks: [], canManageHooks: false };
    throw err;
  }
}
