import type { Role } from '$lib/api';

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function formatDateTime(iso: string | null | undefined, empty = '—'): string {
  return iso ? dateTime.format(new Date(iso)) : empty;
}

export function formatDate(iso: string | null | undefined, empty = '—'): string {
  return iso ? dateOnly.format(new Date(iso)) : empty;
}

export const ROLE_LABELS: Record<Role, string> = {
  owner: 'Owner',
  admin: 'Admin',
  operator: 'Operator',
  viewer: 'Viewer',
  coordinator: 'Coordinator',
};

/** One line per role, for role pickers. */
export const ROLE_HINTS: Record<Role, string> = {
  owner: 'everything, including the organisation',
  admin: 'people, API tokens and the fleet',
  operator: 'releases, bundles and rollouts',
  viewer: 'read only',
  coordinator: 'their own sites only',
};
