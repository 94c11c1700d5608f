import { api } from '$lib/api';

export async function load({ parent }) {
  await parent();
  const all = (await api.releases.list()).items;
  // Published (and deprecated, still live) releases can be rolled out; drafts and revoked ones cannot.
  return {
    releases: all
      .filter((r) => r.state === 'published' || r.state === 'deprecated')
      .map((r) => ({ id: r.id, version: r.version })),
  };
}
