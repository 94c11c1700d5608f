import { memberships, organizations, releases, sites, users, type Role } from '../db/schema/index.ts';
import type { Db } from '../db/types.ts';
import { hashPassword } from '../lib/password.ts';
import { createToken } from '../services/tokens/tokens.ts';

let seq = 0;
const unique = () =>
  `${Date.now().toString(36)}${(seq++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;

// Hashing at full strength for every factory user would make suites slow; one hash is reused.
let sharedHash: Promise<string> | null = null;
export const FACTORY_PASSWORD = 'correct horse battery staple';
function factoryHash() {
  sharedHash ??= hashPassword(FACTORY_PASSWORD);
  return sharedHash;
}

export async function makeOrg(db: Db, name = `Org ${unique()}`) {
  const [org] = await db
    .insert(organizations)
    .values({ name, slug: `org-${unique()}` })
    .returning();
  return org!;
}

export async function makeUser(db: Db, orgId: string, role: Role, email = `${role}-${unique()}@example.org`) {
  const [user] = await db
    .insert(users)
    .values({ email, name: `${role} person`, passwordHash: await factoryHash() })
    .returning();
  await db.insert(memberships).values({ orgId, userId: user!.id, role });
  return { ...user!, password: FACTORY_PASSWORD, role };
}

export async function makeApiToken(db: Db, orgId: string, role: Role, opts: { expiresInDays?: number } = {}) {
  return createToken({
    ctx: { db, orgId, actor: { userId: null, tokenId: null, role: 'owner' } },
    input: { name: `token-${unique()}`, role, ...opts },
  });
}

export async function makeSite(db: Db, orgId: string, fields: Partial<typeof sites.$inferInsert> = {}) {
  const [site] = await db
    .insert(sites)
    .values({ orgId, code: `S-${unique()}`, name: `Clinic ${unique()}`, ...fields })
    .returning();
  return site!;
}

export async function makeRelease(
  db: Db,
  orgId: string,
  version: string,
  state: 'draft' | 'published' = 'published',
) {
  const [r] = await db
    .insert(releases)
    .values({ orgId, version, state, publishedAt: state === 'published' ? new Date() : null })
    .returning();
  return r!;
}
