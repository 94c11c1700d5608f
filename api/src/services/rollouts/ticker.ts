import type { Db } from '../../db/types.ts';
import type { Logger } from '../../lib/logger.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { runSchedulerPass } from './scheduler.ts';
import { deliverWebhooks } from './webhooks.ts';

/** One scheduler tick: a pass over the live rollouts, then the webhook deliveries that are due. */
export async function rolloutTick(deps: { db: Db; box: SecretBox; logger: Logger; now?: Date }) {
  const now = deps.now ?? new Date();
  const pass = await runSchedulerPass(deps.db, { now, logger: deps.logger });
  const sent = await deliverWebhooks(deps.db, { box: deps.box, now, logger: deps.logger });
  if (pass.transitions.length || sent)
    deps.logger('info', 'rollout scheduler', {
      transitions: pass.transitions.length,
      rollouts: pass.rollouts,
      webhooks: sent,
    });
  return { pass, sent };
}

/**
 * The scheduler inside `npm start`: a tick every `intervalMs`, never two at once in this process
 * (other processes may tick too: the pass is safe against that). `stop` waits for a tick in flight.
 */
export function startRolloutScheduler(deps: { db: Db; box: SecretBox; logger: Logger; intervalMs: number }) {
  let running: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = rolloutTick(deps)
      .catch((e: unknown) =>
        deps.logger('error', 'rollout scheduler tick failed', {
          err: e instanceof Error ? e.message : String(e),
        }),
      )
      .finally(() => {
        running = null;
      });
  }, deps.intervalMs);
  timer.unref?.();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
