import { sql } from 'drizzle-orm';
import {
  pgTable,
  uuid,
  text,
  jsonb,
  integer,
  boolean,
  date,
  index,
  primaryKey,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import { releases } from './releases.ts';
import { createdAt, id, orgId, siteId, timestamptz, updatedAt, userRef } from './columns.ts';

export type RolloutState = 'draft' | 'scheduled' | 'running' | 'paused' | 'completed' | 'cancelled';
export type WaveState = 'pending' | 'preparing' | 'open' | 'succeeded' | 'failed' | 'paused' | 'cancelled';
export type TargetState =
  | 'pending'
  | 'bundled'
  | 'downloaded'
  | 'installing'
  | 'installed'
  | 'failed'
  | 'rolled_back'
  | 'skipped'
  | 'overdue';

/** How a rollout moves on (docs/rollouts.md). Shares are fractions 0..1. */
export interface RolloutPolicy {
  /** Share of a wave's sites (skipped ones left out) installed and healthy for the wave to succeed. */
  successThreshold: number;
  /** Share failed (or rolled back) at which the wave fails and the rollout pauses by itself. */
  failureThreshold: number;
  autoAdvance: boolean;
  /** Minimum minutes a wave stays open before it may succeed. */
  soakMinutes: number;
  /** Hours before a wave's start at which its bundles are asked for (long enough for sneakernet). */
  bundleLeadHours: number;
  /** Ask the workers for bundles of each wave (off for releases delivered some other way). */
  buildBundles: boolean;
}

/** Which sites a wave takes from those not taken by an earlier wave. Empty is refused. */
export interface WaveSelector {
  all?: boolean;
  regions?: string[];
  districts?: string[];
  tags?: string[];
  siteCodes?: string[];
  excludeCodes?: string[];
  /** Percent (0 < p ≤ 100) of the matching sites, chosen reproducibly from the rollout's seed. */
  share?: number;
  /** At most this many of the matching sites, chosen reproducibly. */
  count?: number;
}

export const rollouts = pgTable(
  'rollouts',
  {
    id: id(),
    orgId: orgId(),
    name: text('name').notNull(),
    releaseId: uuid('release_id')
      .notNull()
      .references(() => releases.id, { onDelete: 'restrict' }),
    state: text('state').$type<RolloutState>().notNull().default('draft'),
    policy: jsonb('policy').$type<RolloutPolicy>().notNull(),
    /** Seed of the reproducible share/count choice: the same seed picks the same sites. */
    seed: text('seed').notNull(),
    /** A rollback rollout names the rollout it undoes. */
    rollbackOf: uuid('rollback_of'),
    pausedReason: text('paused_reason'),
    createdBy: userRef('created_by'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    startedAt: timestamptz('started_at'),
    finishedAt: timestamptz('finished_at'),
  },
  (t) => [
    index('rollouts_org_created_idx').on(t.orgId, t.createdAt),
    index('rollouts_live_idx')
      .on(t.state)
      .where(sql`state IN ('scheduled', 'running', 'paused')`),
  ],
);

export const rolloutWaves = pgTable(
  'rollout_waves',
  {
    id: id(),
    orgId: orgId(),
    rolloutId: uuid('rollout_id')
      .notNull()
      .references(() => rollouts.id, { onDelete: 'cascade' }),
    position: integer('position').notNull(),
    name: text('name').notNull(),
    selector: jsonb('selector').$type<WaveSelector>().notNull(),
    state: text('state').$type<WaveState>().notNull().default('pending'),
    startsAt: timestamptz('starts_at').notNull(),
    deadlineAt: timestamptz('deadline_at').notNull(),
    bundlesRequestedAt: timestamptz('bundles_requested_at'),
    bundleNote: text('bundle_note'),
    openedAt: timestamptz('opened_at'),
    closedAt: timestamptz('closed_at'),
    reason: text('reason'),
  },
  (t) => [uniqueIndex('rollout_waves_rollout_position_uq').on(t.rolloutId, t.position)],
);

export const rolloutTargets = pgTable(
  'rollout_targets',
  {
    id: id(),
    // No foreign keys on org_id and wave_id: the rollout's key implies both (targets are written only
    // with their rollout's organisation and one of its waves, and go with the rollout), and checking the
    // two for each of 100,000 rows was a quarter of creating a rollout (docs/decisions.md).
    orgId: uuid('org_id').notNull(),
    rolloutId: uuid('rollout_id')
      .notNull()
      .references(() => rollouts.id, { onDelete: 'cascade' }),
    waveId: uuid('wave_id').notNull(),
    siteId: siteId(),
    state: text('state').$type<TargetState>().notNull().default('pending'),
    /** True while the rollout is scheduled, running or paused: a site is in at most one active rollout (unique index). */
    active: boolean('active').notNull().default(false),
    /** What the site reported when it was planned: the base of its delta, and what a rollback returns it to. */
    fromReleaseId: uuid('from_release_id'),
    /** Installed and reported healthy (a degraded install counts as installed, not healthy). */
    healthy: boolean('healthy').notNull().default(false),
    reason: text('reason'),
    attempts: integer('attempts').notNull().default(0),
    /** When a webhook was queued for this target's failure; a retry clears it. */
    failureNotifiedAt: timestamptz('failure_notified_at'),
    stateChangedAt: timestamptz('state_changed_at').notNull().defaultNow(),
  },
  (t) => [
    index('rollout_targets_rollout_wave_state_idx').on(t.rolloutId, t.waveId, t.state),
    uniqueIndex('rollout_targets_site_active_uq')
      .on(t.siteId)
      .where(sql`active`),
    uniqueIndex('rollout_targets_rollout_site_uq').on(t.rolloutId, t.siteId),
  ],
);

/**
 * How many of a rollout's targets are in each wave, state and health: `select … count(*) from
 * rollout_targets group by …`, kept by statement-level triggers on `rollout_targets` (migration 0018)
 * so the progress view and the scheduler read a few rows instead of counting 100,000 targets.
 * Rows that drop to zero are deleted; the rows go with their rollout (docs/decisions.md).
 */
export const rolloutWaveStateCounts = pgTable(
  'rollout_wave_state_counts',
  {
    rolloutId: uuid('rollout_id')
      .notNull()
      .references(() => rollouts.id, { onDelete: 'cascade' }),
    waveId: uuid('wave_id').notNull(),
    state: text('state').$type<TargetState>().notNull(),
    healthy: boolean('healthy').notNull(),
    n: integer('n').notNull(),
  },
  (t) => [primaryKey({ columns: [t.rolloutId, t.waveId, t.state, t.healthy] })],
);

/** Days on which no wave opens and no site is asked to install (UTC dates, inclusive). */
export const blackoutDates = pgTable(
  'blackout_dates',
  {
    id: id(),
    orgId: orgId(),
    startsOn: date('starts_on', { mode: 'string' }).notNull(),
    endsOn: date('ends_on', { mode: 'string' }).notNull(),
    reason: text('reason').notNull().default(''),
    createdBy: userRef('created_by'),
    createdAt: createdAt(),
  },
  (t) => [index('blackout_dates_org_idx').on(t.orgId, t.startsOn)],
);

/** The timeline of a rollout: its and its waves' transitions, with who and why. */
export const rolloutEvents = pgTable(
  'rollout_events',
  {
    id: id(),
    orgId: orgId(),
    rolloutId: uuid('rollout_id')
      .notNull()
      .references(() => rollouts.id, { onDelete: 'cascade' }),
    waveId: uuid('wave_id'),
    siteId: uuid('site_id'),
    kind: text('kind').notNull(),
    from: text('from'),
    to: text('to'),
    reason: text('reason'),
    actorUserId: userRef('actor_user_id'),
    /** "scheduler" when no person did it. */
    actor: text('actor').notNull(),
    at: timestamptz('at').notNull(),
  },
  (t) => [index('rollout_events_rollout_at_idx').on(t.rolloutId, t.at)],
);

export type WebhookEvent =
  | 'wave.opened'
  | 'wave.succeeded'
  | 'wave.paused'
  | 'wave.failed'
  | 'site.failed'
  | 'rollout.completed'
  | 'rollout.paused';

export const webhooks = pgTable(
  'webhooks',
  {
    id: id(),
    orgId: orgId(),
    url: text('url').notNull(),
    /** The signing secret, sealed with the server key (lib/secret-box.ts); shown once when created. */
    secretSealed: text('secret_sealed').notNull(),
    events: text('events').array().$type<WebhookEvent[]>().notNull(),
    active: boolean('active').notNull().default(true),
    createdBy: userRef('created_by'),
    createdAt: createdAt(),
  },
  (t) => [index('webhooks_org_idx').on(t.orgId)],
);

export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: id(),
    orgId: orgId(),
    webhookId: uuid('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    event: text('event').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    state: text('state').$type<'pending' | 'delivered' | 'failed'>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamptz('next_attempt_at').notNull(),
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    createdAt: timestamptz('created_at').notNull(),
    deliveredAt: timestamptz('delivered_at'),
  },
  (t) => [
    index('webhook_deliveries_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`state = 'pending'`),
    index('webhook_deliveries_webhook_idx').on(t.webhookId, t.createdAt),
  ],
);
