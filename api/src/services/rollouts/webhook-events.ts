// The events a webhook can listen to, in one place for the API and the dashboard (exported as
// `@outpost/api/webhook-events`). No runtime import, so the browser bundle takes nothing else of the API.
import type { WebhookEvent } from '../../db/schema/index.ts';

export type { WebhookEvent };

export const WEBHOOK_EVENTS = [
  'wave.opened',
  'wave.succeeded',
  'wave.paused',
  'wave.failed',
  'site.failed',
  'rollout.completed',
  'rollout.paused',
] as const satisfies readonly WebhookEvent[];

/** What a new webhook listens to unless its author chooses: the waves' outcomes and failed sites. */
export const DEFAULT_WEBHOOK_EVENTS: WebhookEvent[] = [
  'wave.opened',
  'wave.succeeded',
  'wave.paused',
  'wave.failed',
  'site.failed',
];
