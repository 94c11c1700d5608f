import { describe, expect, it } from 'vitest';
import { ROLES as DB_ROLES } from '../../db/schema/index.ts';
import { can, canGrant, grantableRoles, ROLES } from './roles.ts';

describe('role rules', () => {
  it('should list every role of the database enum, highest first', () => {
    expect([...ROLES].sort()).toEqual([...DB_ROLES].sort());
    expect(ROLES).toEqual(['owner', 'admin', 'operator', 'viewer', 'coordinator']);
  });

  it('should offer exactly the roles canGrant allows', () => {
    expect(grantableRoles('owner')).toEqual(ROLES);
    expect(grantableRoles('admin')).toEqual(['admin', 'operator', 'viewer', 'coordinator']);
    for (const actor of ['operator', 'viewer', 'coordinator'] as const)
      expect(grantableRoles(actor)).toEqual([]);
    for (const actor of ROLES)
      for (const target of ROLES)
        expect(grantableRoles(actor).includes(target)).toBe(canGrant(actor, target));
  });

  it('should let everyone but viewers submit receipts, and only the top two manage keys', () => {
    expect(ROLES.filter((r) => can(r, 'receipts:submit'))).toEqual([
      'owner',
      'admin',
      'operator',
      'coordinator',
    ]);
    expect(ROLES.filter((r) => can(r, 'keys:manage'))).toEqual(['owner', 'admin']);
  });
});
