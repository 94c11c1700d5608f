import { and, asc, desc, eq, lte, sql } from 'drizzle-orm';
import { webhookDeliveries, webhooks, type WebhookEvent } from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import { NotFoundError, ValidationError } from '../../lib/errors.ts';
import { toBase64Url } from '../../lib/crypto.ts';
import type { Logger } from '../../lib/logger.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { recordAudit } from '../audit/record.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';

export { WEBHOOK_EVENTS } from './webhook-events.ts';

/** Minutes to wait before each retry; after the last, the delivery is given up ("failed"). */
export const RETRY_MINUTES = [1, 5, 30, 120, 720];
const TIMEOUT_MS = 10_000;

/** Queues one delivery per active webhook of the organisation that listens to `event`. */
export async function enqueueWebhooks(
  ctx: ServiceCtx,
  event: WebhookEvent,
  data: Record<string, unknown>,
  now: Date,
) {
  await ctx.db.execute(sql`
    insert into webhook_deliveries (org_id, webhook_id, event, payload, next_attempt_at, created_at)
    select org_id, id, ${event}, ${JSON.stringify({ event, at: now.toISOString(), data })}::jsonb, ${now.toISOString()}::timestamptz, ${now.toISOString()}::timestamptz
    from webhooks where org_id = ${ctx.orgId} and active and ${event} = any(events)`);
}

/**
 * The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the webhook's
 * secret. The receiver recomputes it and refuses old timestamps (replays), as Stripe's scheme does.
 */
export async function signPayload(secret: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${timestamp}.${body}`)),
  );
  return `t=${timestamp},v1=${[...mac].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function checkUrl(url: string, allowHttp: boolean) {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ValidationError('The webhook address is not a URL.', [{ path: 'url', message: 'Not a URL' }]);
  }
  if (u.protocol !== 'https:' && !(allowHttp && u.protocol === 'http:')) {
    throw new ValidationError('Webhooks are sent over https only.', [
      { path: 'url', message: 'Use https://' },
    ]);
  }
  if (u.username || u.password)
    throw new ValidationError('Put no credentials in the webhook address; verify the signature instead.', [
      { path: 'url', message: 'No credentials in the URL' },
    ]);
  // The server's own network is not a webhook target (cloud metadata, loopback, private ranges). Names
  // that resolve there are not caught here; deployments that care put the sender behind an egress proxy.
  if (!allowHttp && isInternalHost(u.hostname)) {
    throw new ValidationError("Webhooks go to public addresses, not to the server's own network.", [
      { path: 'url', message: 'Internal address' },
    ]);
  }
}

function isInternalHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (
    h === 'localhost' ||
    h.endsWith('.localhost') ||
    h.endsWith('.internal') ||
    h === '::1' ||
    h.startsWith('fe80:') ||
    h.startsWith('fc') ||
    h.startsWith('fd')
  )
    return true;
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(h);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return (
    a === 10 ||
    a === 127 ||
    a === 0 ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 100 && b >= 64 && b <= 127)
  );
}

const view = (w: typeof webhooks.$inferSelect) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  active: w.active,
  createdAt: w.createdAt.toISOString(),
});

export async function createWebhook({
  ctx,
  box,
  input,
  allowHttp = false,
}: {
  ctx: ServiceCtx;
  box: SecretBox;
  input: { url: string; events: WebhookEvent[] };
  allowHttp?: boolean;
}) {
  checkUrl(input.url, allowHttp);
  return inTransaction(ctx, async (ctx) => {
    const secret = `whsec_${toBase64Url(crypto.getRandomValues(new Uint8Array(32)))}`;
    const id = crypto.randomUUID();
    const [w] = await ctx.db
      .insert(webhooks)
      .values({
        id,
        orgId: ctx.orgId,
        url: input.url,
        events: [...new Set(input.events)],
        createdBy: ctx.actor.userId,
        secretSealed: await box.seal(new TextEncoder().encode(secret), `webhook:${id}`),
      })
      .returning();
    await recordAudit(ctx, {
      action: 'webhook.create',
      objectType: 'webhook',
      objectId: id,
      details: { url: input.url, events: input.events },
    });
    // The secret is shown once, here; only its sealed form is kept.
    return { ...view(w!), secret };
  });
}

export async function listWebhooks({ ctx }: { ctx: ServiceCtx }) {
  return (
    await ctx.db.select().from(webhooks).where(eq(webhooks.orgId, ctx.orgId)).orderBy(asc(webhooks.createdAt))
  ).map(view);
}

export async function deleteWebhook({ ctx, input }: { ctx: ServiceCtx; input: { id: string } }) {
  return inTransaction(ctx, async (ctx) => {
    const gone = await ctx.db
      .delete(webhooks)
      .where(and(eq(webhooks.orgId, ctx.orgId), eq(webhooks.id, input.id)))
      .returning({ id: webhooks.id });
    if (!gone.length) throw new NotFoundError('webhook', input.id);
    await recordAudit(ctx, { action: 'webhook.delete', objectType: 'webhook', objectId: input.id });
  });
}

export async function listDeliveries({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { id: string; limit: number };
}) {
  const [w] = await ctx.db
    .select({ id: webhooks.id })
    .from(webhooks)
    .where(and(eq(webhooks.orgId, ctx.orgId), eq(webhooks.id, input.id)))
    .limit(1);
  if (!w) throw new NotFoundError('webhook', input.id);
  const rows = await ctx.db
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.webhookId, w.id))
    .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
    .limit(input.limit);
  return rows.map((d) => ({
    id: d.id,
    event: d.event,
    state: d.state,
    attempts: d.attempts,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    createdAt: d.createdAt.toISOString(),
    nextAttemptAt: d.nextAttemptAt.toISOString(),
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
    payload: d.payload,
  }));
}

/**
 * Sends the deliveries that are due, each claimed under `FOR UPDATE SKIP LOCKED` so two senders
 * never send one twice at once. A 2xx answer delivers it; anything else (or no answer within 10 s)
 * is retried after 1, 5, 30, 120 and 720 minutes, then given up. `fetch` is injected for tests.
 */
export async function deliverWebhooks(
  db: Db,
  deps: { box: SecretBox; now: Date; fetch?: typeof fetch; logger?: Logger; limit?: number },
) {
  const send = deps.fetch ?? fetch;
  let sent = 0;
  for (let n = 0; n < (deps.limit ?? 100); n++) {
    const done = await db.transaction(async (tx) => {
      const [d] = await tx
        .select({ d: webhookDeliveries, url: webhooks.url, sealed: webhooks.secretSealed })
        .from(webhookDeliveries)
        .innerJoin(webhooks, eq(webhooks.id, webhookDeliveries.webhookId))
        .where(and(eq(webhookDeliveries.state, 'pending'), lte(webhookDeliveries.nextAttemptAt, deps.now)))
        .orderBy(asc(webhookDeliveries.nextAttemptAt))
        .limit(1)
        .for('update', { of: webhookDeliveries, skipLocked: true });
      if (!d) return false;
      const secret = new TextDecoder().decode(await deps.box.open(d.sealed, `webhook:${d.d.webhookId}`));
      const body = JSON.stringify({ id: d.d.id, ...d.d.payload });
      const t = Math.floor(deps.now.getTime() / 1000);
      let status: number | null = null;
      let error: string | null = null;
      try {
        const res = await send(d.url, {
          method: 'POST',
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(TIMEOUT_MS),
          headers: {
            'content-type': 'application/json',
            'user-agent': 'Outpost-Webhooks/1',
            'x-outpost-event': d.d.event,
            'x-outpost-delivery': d.d.id,
            'x-outpost-signature': await signPayload(secret, t, body),
          },
        });
        status = res.status;
        await res.body?.cancel();
      } catch (e) {
        error = e instanceof Error ? e.message.slice(0, 300) : 'request failed';
      }
      const attempts = d.d.attempts + 1;
      const ok = status !== null && status >= 200 && status < 300;
      const retryIn = RETRY_MINUTES[attempts - 1];
      await tx
        .update(webhookDeliveries)
        .set({
          attempts,
          lastStatus: status,
          lastError: ok ? null : (error ?? `answered ${status}`),
          state: ok ? 'delivered' : retryIn === undefined ? 'failed' : 'pending',
          deliveredAt: ok ? deps.now : null,
          nextAttemptAt:
            ok || retryIn === undefined ? d.d.nextAttemptAt : new Date(deps.now.getTime() + retryIn * 60_000),
        })
        .where(eq(webhookDeliveries.id, d.d.id));
      if (!ok) deps.logger?.('warn', 'webhook delivery failed', { deliveryId: d.d.id, status, attempts });
      return true;
    });
    if (!done) break;
    sent++;
  }
  return sent;
}
