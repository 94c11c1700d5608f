// The role rules, in one place for the API and the dashboard (exported as `@outpost/api/roles`):
// the web shows and hides what these allow, the API enforces them. No runtime import, so the
// browser bundle takes nothing else of the API.
import type { Role } from '../../db/schema/index.ts';

export type { Role };

/**
 * What each role may do. Coordinators are deliberately outside the ladder: they act on their own
 * sites only (site-level checks live in the site services).
 */
export const RANK: Record<Role, number> = { owner: 4, admin: 3, operator: 2, viewer: 1, coordinator: 1 };

/** Every role, highest first (RANK's type makes it exhaustive). */
export const ROLES = Object.keys(RANK) as Role[];

export type Permission =
  | 'org:manage'
  | 'users:manage'
  | 'tokens:manage'
  | 'audit:read'
  | 'fleet:write'
  | 'fleet:read'
  | 'receipts:submit'
  | 'keys:manage';

const GRANTS: Record<Permission, readonly Role[]> = {
  'org:manage': ['owner'],
  'users:manage': ['owner', 'admin'],
  'tokens:manage': ['owner', 'admin'],
  'audit:read': ['owner', 'admin'],
  'fleet:write': ['owner', 'admin', 'operator'],
  'fleet:read': ['owner', 'admin', 'operator', 'viewer', 'coordinator'],
  // Coordinators confirm installs at their own sites (site visibility limits which).
  'receipts:submit': ['owner', 'admin', 'operator', 'coordinator'],
  // Rotating the bundle signing key changes what every site must trust.
  'keys:manage': ['owner', 'admin'],
};

export function can(role: Role, permission: Permission): boolean {
  return GRANTS[permission].includes(role);
}

/** An actor may hand out only roles no higher than its own (an admin cannot mint an owner). */
export function canGrant(actor: Role, target: Role): boolean {
  if (target === 'owner') return actor === 'owner';
  return RANK[actor] >= 3;
}

/** The roles an actor may hand out, in ROLES order (none for operators, viewers and coordinators). */
export function grantableRoles(actor: Role): Role[] {
  return ROLES.filter((r) => canGrant(actor, r));
}
