// The role rules as the dashboard asks them: the API's own (`@outpost/api/roles`), so what the
// page offers and what the API allows cannot drift. `undefined`: not signed in, allowed nothing.
import { can, grantableRoles as grantable, ROLES, type Role } from '@outpost/api/roles';

export { ROLES };

/** Owners and admins manage people and tokens and read the audit log. */
export function canManageOrg(role: Role | undefined): boolean {
  return role !== undefined && can(role, 'users:manage');
}

/** Only an owner hands out owner; owners and admins hand out the rest. */
export function grantableRoles(actor: Role | undefined): Role[] {
  return actor === undefined ? [] : grantable(actor);
}

/** `fleet:write`: owners, admins and operators register and edit sites. */
export function canWriteFleet(role: Role | undefined): boolean {
  return role !== undefined && can(role, 'fleet:write');
}

/** `fleet:write` for releases: owners, admins and operators create, edit and publish them. */
export function canWriteReleases(role: Role | undefined): boolean {
  return canWriteFleet(role);
}

/** `keys:manage`: owners and admins rotate the bundle signing key. */
export function canManageKeys(role: Role | undefined): boolean {
  return role !== undefined && can(role, 'keys:manage');
}

/** `receipts:submit`: everyone but viewers (coordinators on their own sites). */
export function canSubmitReceipts(role: Role | undefined): boolean {
  return role !== undefined && can(role, 'receipts:submit');
}
