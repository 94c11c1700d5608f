import { count, eq } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { memberships, organizations, users } from '../../db/schema/index.ts';
import { generatePassword, hashPassword } from '../../lib/password.ts';
import { recordAudit } from '../audit/record.ts';

export interface BootstrapInput {
  orgName: string;
  adminEmail?: string;
  adminPassword?: string;
}

/**
 * On the first start, creates the organisation and its owner. Returns the generated password
 * (when none was configured) so the entry point can print it once; returns null when the
 * database already has an organisation.
 */
export async function bootstrapFirstOrg(db: Db, input: BootstrapInput) {
  const [{ n } = { n: 0 }] = await db.select({ n: count() }).from(organizations);
  if (n > 0) return null;
  const email = (input.adminEmail ?? 'admin@outpost.local').trim().toLowerCase();
  const password = input.adminPassword ?? generatePassword();
  const passwordHash = await hashPassword(password);
  return db.transaction(async (tx) => {
    const slug =
      input.orgName
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, '') || 'org';
    const [org] = await tx.insert(organizations).values({ name: input.orgName, slug }).returning();
    let [user] = await tx.select().from(users).where(eq(users.email, email)).limit(1);
    if (!user)
      [user] = await tx.insert(users).values({ email, name: 'Administrator', passwordHash }).returning();
    await tx.insert(memberships).values({ orgId: org!.id, userId: user!.id, role: 'owner' });
    await recordAudit(
      { db: tx as unknown as Db, orgId: org!.id, actor: { userId: null, tokenId: null, role: 'owner' } },
      {
        action: 'org.bootstrap',
        objectType: 'organization',
        objectId: org!.id,
        details: { adminEmail: email },
      },
    );
    return { org: org!, email, generatedPassword: input.adminPassword ? null : password };
  });
}
