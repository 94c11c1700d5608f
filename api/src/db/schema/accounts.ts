import { sql } from 'drizzle-orm';
import { pgTable, uuid, text, jsonb, pgEnum, index, primaryKey, integer } from 'drizzle-orm/pg-core';
import { createdAt, id, orgId, timestamptz, userRef } from './columns.ts';

export const roleEnum = pgEnum('role', ['owner', 'admin', 'operator', 'viewer', 'coordinator']);
export const ROLES = roleEnum.enumValues;
export type Role = (typeof ROLES)[number];

export const organizations = pgTable('organizations', {
  id: id(),
  name: text('name').notNull(),
  slug: text('slug').notNull().unique(),
  createdAt: createdAt(),
});

export const users = pgTable('users', {
  id: id(),
  // Stored lower-cased; login compares lower-cased input.
  email: text('email').notNull().unique(),
  name: text('name').notNull().default(''),
  passwordHash: text('password_hash').notNull(),
  // The person's language for the web app (en|fr|pt); null until they choose (the browser's is used).
  language: text('language').$type<'en' | 'fr' | 'pt'>(),
  disabledAt: timestamptz('disabled_at'),
  createdAt: createdAt(),
});

export const memberships = pgTable(
  'memberships',
  {
    orgId: orgId(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: roleEnum('role').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.userId] }), index('memberships_user_idx').on(t.userId)],
);

export const sessions = pgTable('sessions', {
  id: id(),
  // sha256 of the cookie value; the raw value exists only in the browser.
  tokenHash: text('token_hash').notNull().unique(),
  userId: uuid('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  orgId: orgId(),
  createdAt: createdAt(),
  expiresAt: timestamptz('expires_at').notNull(),
  revokedAt: timestamptz('revoked_at'),
});

export const apiTokens = pgTable(
  'api_tokens',
  {
    id: id(),
    orgId: orgId(),
    name: text('name').notNull(),
    // First characters of the token, shown so people can tell tokens apart; not enough to use it.
    prefix: text('prefix').notNull(),
    tokenHash: text('token_hash').notNull().unique(),
    role: roleEnum('role').notNull(),
    createdBy: userRef('created_by'),
    createdAt: createdAt(),
    expiresAt: timestamptz('expires_at'),
    lastUsedAt: timestamptz('last_used_at'),
    revokedAt: timestamptz('revoked_at'),
  },
  (t) => [index('api_tokens_org_idx').on(t.orgId)],
);

export const loginAttempts = pgTable(
  'login_attempts',
  {
    id: id(),
    email: text('email').notNull(),
    succeeded: integer('succeeded').notNull(),
    at: timestamptz('at').notNull().defaultNow(),
  },
  (t) => [index('login_attempts_email_at_idx').on(t.email, t.at)],
);

export const auditLog = pgTable(
  'audit_log',
  {
    id: id(),
    orgId: orgId(),
    actorUserId: uuid('actor_user_id'),
    actorTokenId: uuid('actor_token_id'),
    action: text('action').notNull(),
    objectType: text('object_type').notNull(),
    objectId: text('object_id'),
    details: jsonb('details')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    requestId: text('request_id'),
    at: timestamptz('at').notNull().defaultNow(),
  },
  (t) => [index('audit_log_org_at_idx').on(t.orgId, t.at)],
);
