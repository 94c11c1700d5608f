import { and, eq, isNotNull } from 'drizzle-orm';
import { releases, siteReports } from '../../db/schema/index.ts';
import {
  AppError,
  NotFoundError,
  TooManyRequestsError,
  ValidationError,
  fieldIssue,
} from '../../lib/errors.ts';
import type { RateLimiter } from '../../lib/rate-limit.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import type { ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import { loadSite } from '../sites/scope.ts';
import { appendReport, toReportView } from '../sites/report.ts';
import { checkReceiptCode, verifyReceiptCode, type ReceiptOutcome } from './code.ts';
import { verifyReceiptFile } from './file.ts';

export interface ReceiptDeps {
  box: SecretBox;
  /** Counts wrong (no-match) codes per site and per person; typos caught by the check symbol do not count. */
  failures: RateLimiter;
}

async function siteKey(ctx: ServiceCtx, box: SecretBox, siteId: string) {
  const { site } = await loadSite(ctx, siteId);
  if (!site.receiptKeySealed) {
    throw new AppError(
      'conflict',
      'NO_RECEIPT_KEY',
      'This site has no receipt key yet: issue its device token first, then build its bundle.',
    );
  }
  return { site, key: await box.open(site.receiptKeySealed, `receipt:${site.id}`) };
}

/** Every version the code could be about: the organisation's releases and whatever the site has reported. */
async function candidateVersions(ctx: ServiceCtx, siteId: string): Promise<string[]> {
  const [rel, reported] = await Promise.all([
    ctx.db.select({ v: releases.version }).from(releases).where(eq(releases.orgId, ctx.orgId)),
    ctx.db
      .selectDistinct({ v: siteReports.version })
      .from(siteReports)
      .where(and(eq(siteReports.siteId, siteId), isNotNull(siteReports.version))),
  ]);
  return [...new Set([...rel.map((r) => r.v), ...reported.map((r) => r.v!)])];
}

function guard(deps: ReceiptDeps, ctx: ServiceCtx, siteId: string) {
  const keys = [`site:${siteId}`, `actor:${ctx.actor.userId ?? ctx.actor.tokenId}`];
  return {
    check() {
      for (const k of keys) {
        const w = deps.failures.peek(k);
        if (w)
          throw new TooManyRequestsError(
            "Too many wrong receipt codes for this site. Wait an hour, then check the code on the site's screen again.",
            w,
          );
      }
    },
    fail() {
      for (const k of keys) deps.failures.hit(k);
    },
  };
}

/** A code typed in from a phone: checked, verified against the site's key, recorded once. */
export async function submitReceiptCode({
  ctx,
  deps,
  input,
}: {
  ctx: ServiceCtx;
  deps: ReceiptDeps;
  input: { siteId: string; code: string };
}) {
  const checked = checkReceiptCode(input.code);
  if (!checked.ok)
    throw new ValidationError(
      checked.message,
      fieldIssue('code', checked.message, { reason: checked.reason }),
    );
  const { site, key } = await siteKey(ctx, deps.box, input.siteId);
  const g = guard(deps, ctx, site.id);
  g.check();
  const v = await verifyReceiptCode({
    key,
    siteId: site.id,
    code: checked.normalized,
    candidateVersions: await candidateVersions(ctx, site.id),
  });
  if (!v.ok) {
    if (v.reason === 'no-match') g.fail();
    throw new AppError(
      'unprocessable',
      'RECEIPT_NOT_VALID',
      v.reason === 'no-match'
        ? `This code does not match ${site.code}. Check that you are on the right site's page and that every character is as shown on the site's screen.`
        : v.message,
      fieldIssue('code', v.message, { reason: v.reason }),
    );
  }
  return recordReceipt(ctx, site, 'code', {
    ...v,
    details: { code: v.normalized },
    idempotencyKey: `receipt:${v.normalized}`,
  });
}

/** An uploaded receipt file (its exact text: the HMAC covers the bytes as written by the site). */
export async function submitReceiptFile({
  ctx,
  deps,
  input,
}: {
  ctx: ServiceCtx;
  deps: ReceiptDeps;
  input: { text: string };
}) {
  let siteId: unknown;
  try {
    siteId = (JSON.parse(input.text) as { siteId?: unknown }).siteId;
  } catch {
    throw new ValidationError('This is not a receipt file: it is not JSON.');
  }
  if (typeof siteId !== 'string' || !/^[0-9a-f-]{36}$/i.test(siteId))
    throw new ValidationError('This is not a receipt file: it names no site.');
  let loaded;
  try {
    loaded = await siteKey(ctx, deps.box, siteId.toLowerCase());
  } catch (e) {
    if (e instanceof NotFoundError) throw new NotFoundError('site', siteId);
    throw e;
  }
  const { site, key } = loaded;
  const g = guard(deps, ctx, site.id);
  g.check();
  const v = await verifyReceiptFile({ key, siteId: site.id, json: input.text });
  if (!v.ok) {
    if (v.reason === 'bad-hmac') g.fail();
    throw new AppError('unprocessable', 'RECEIPT_NOT_VALID', v.message, { reason: v.reason });
  }
  return recordReceipt(ctx, site, 'file', {
    ...v,
    details: { code: v.code, ...v.details },
    idempotencyKey: `receipt:${checkReceiptCode(v.code).ok ? (checkReceiptCode(v.code) as { normalized: string }).normalized : v.code}`,
  });
}

/**
 * A verified receipt, code or file, as a report of its site: recorded (and audited) once, since the
 * same receipt has the same idempotency key whichever way it came; the answer says if it was new.
 */
async function recordReceipt(
  ctx: ServiceCtx,
  site: { id: string; code: string },
  via: 'code' | 'file',
  receipt: {
    version: string;
    outcome: ReceiptOutcome;
    at: Date;
    details: Record<string, unknown>;
    idempotencyKey: string;
  },
) {
  const { version, outcome, at } = receipt;
  const { report, duplicate } = await appendReport(ctx.db, {
    orgId: ctx.orgId,
    siteId: site.id,
    source: `receipt_${via}`,
    version,
    status: outcome,
    details: receipt.details,
    idempotencyKey: receipt.idempotencyKey,
    reportedAt: at,
    actorUserId: ctx.actor.userId,
  });
  if (!duplicate)
    await recordAudit(ctx, {
      action: `site.receipt.${via}`,
      objectType: 'site',
      objectId: site.id,
      details: { version, outcome },
    });
  return {
    duplicate,
    site: { id: site.id, code: site.code },
    version,
    outcome,
    at: at.toISOString(),
    report: toReportView(report),
  };
}
