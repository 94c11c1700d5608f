import { and, asc, eq } from 'drizzle-orm';
import type { Db } from '../../db/types.ts';
import { memberships, organizations, users } from '../../db/schema/index.ts';
import { csrfFor } from './login.ts';
import type { Principal } from './resolve.ts';

/**
 * Who is calling: the person (or API token), the organisation and role they act in, every
 * organisation they belong to, and the CSRF token of their session.
 */
export async function describeMe({
  db,
  principal: p,
  sessionToken,
}: {
  db: Db;
  principal: Principal;
  /** The session's token, when the caller signed in with a session: its CSRF token goes along. */
  sessionToken: string | null;
}) {
  const [org] = await db
    .select({ id: organizations.id, name: organizations.name, slug: organizations.slug })
    .from(organizations)
    .where(eq(organizations.id, p.orgId));
  const user = p.userId
    ? ((
        await db
          .select({ id: users.id, email: users.email, name: users.name, language: users.language })
          .from(users)
          .where(eq(users.id, p.userId))
      )[0] ?? null)
    : null;
  const orgs = p.userId
    ? await db
        .select({
          id: organizations.id,
          name: organizations.name,
          slug: organizations.slug,
          role: memberships.role,
        })
        .from(memberships)
        .innerJoin(organizations, eq(organizations.id, memberships.orgId))
        .where(and(eq(memberships.userId, p.userId)))
        .orderBy(asc(memberships.createdAt))
    : [{ ...org!, role: p.role }];
  return {
    user,
    token: p.tokenId ? { id: p.tokenId } : null,
    organization: org!,
    role: p.role,
    organizations: orgs,
    csrfToken: sessionToken ? await csrfFor(sessionToken) : null,
  };
}
