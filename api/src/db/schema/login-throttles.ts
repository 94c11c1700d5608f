import { pgTable, text, integer } from 'drizzle-orm/pg-core';
import { timestamptz } from './columns.ts';

/**
 * Sign-in failure counters, one row per key (`email:…`, `pair:<email>|<address>`, `address:…`),
 * updated with one atomic upsert per attempt so concurrent attempts cannot all pass a
 * check-then-insert. `failures` counts attempts in the window that began at `windowStart` (a
 * success gives its slot back); `lastAt` is the latest counted attempt, for the per-e-mail back-off.
 */
export const loginThrottles = pgTable('login_throttles', {
  key: text('key').primaryKey(),
  failures: integer('failures').notNull(),
  windowStart: timestamptz('window_start').notNull(),
  lastAt: timestamptz('last_at').notNull(),
});
