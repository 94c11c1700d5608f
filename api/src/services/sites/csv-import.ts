// The site CSV import: the checked rows of csv-rows.ts upserted by code in batches, in one
// transaction, with the report of what was created, updated, left alone or refused.
import { and, eq, isNotNull, sql, type SQLChunk } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { sites } from '../../db/schema/index.ts';
import { AppError } from '../../lib/errors.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';
import { recordAudit } from '../audit/record.ts';
import type { SiteFields } from './input.ts';
import { checkRow, csvRecords, readHeader, refuse, type ImportIssue } from './csv-rows.ts';

export type { ImportIssue } from './csv-rows.ts';

export const IMPORT_MODES = ['all-or-nothing', 'partial'] as const;
export type ImportMode = (typeof IMPORT_MODES)[number];

export const IMPORT_LIMITS = {
  /** The whole upload. */
  maxBytes: 100 * 1024 * 1024,
  /** One record; longer ones are nearly always a quote left open, and must not grow memory. */
  maxRecordBytes: 64 * 1024,
  /** Duplicate detection keeps every code seen in memory; this bounds it (a few MB). */
  maxRows: 100_000,
  /** Rows per insert statement (each column is one array parameter). */
  batchRows: 1000,
  /** Problems listed in the answer; the counts are always complete. */
  maxReported: 1000,
};
export type ImportLimits = typeof IMPORT_LIMITS;

export interface ImportReport {
  mode: ImportMode;
  dryRun: boolean;
  /** Data rows read (blank rows are skipped and not counted). */
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
  errors: ImportIssue[];
  errorsTruncated: boolean;
  warnings: ImportIssue[];
  warningsTruncated: boolean;
}

class Capped<T> {
  readonly items: T[] = [];
  truncated = false;
  constructor(private readonly max: number) {}
  push(item: T) {
    if (this.items.length < this.max) this.items.push(item);
    else this.truncated = true;
  }
}

interface GoodRow {
  row: number;
  fields: SiteFields;
}

// The PostgreSQL type of each field's column; an enum travels as text and is cast in the statement.
const PG_TYPE: Record<keyof SiteFields, 'text' | 'int4' | 'float8'> = {
  code: 'text',
  name: 'text',
  region: 'text',
  district: 'text',
  facilityType: 'text',
  tags: 'text',
  connectivity: 'text',
  bandwidthKbps: 'int4',
  timezone: 'text',
  language: 'text',
  maintenanceWindow: 'text',
  latitude: 'float8',
  longitude: 'float8',
  contactName: 'text',
  contactPhone: 'text',
  contactEmail: 'text',
};

/** A text[] literal for one cell of the `tags` array column (arrays of arrays do not unnest). */
function arrayLiteral(items: string[]): string {
  return `{${items.map((t) => `"${t.replace(/["\\]/g, '\\$&')}"`).join(',')}}`;
}

const column = (f: keyof SiteFields) => sql.identifier((sites[f] as PgColumn).name);

/**
 * One statement per batch: insert, or update the columns the file has when any of them differs.
 * Each column travels as one array parameter (`unnest`), not one parameter per cell: statements
 * with thousands of parameters are several times slower, on PGlite above all. Only the fields a
 * person sets are written: the device token, what the site reported, its target and its archived
 * state are never touched by an import; columns the file leaves out keep their values (or defaults).
 */
async function upsertBatch(
  ctx: ServiceCtx,
  batch: GoodRow[],
  fields: (keyof SiteFields)[],
  warnings: Capped<ImportIssue> | null,
) {
  // An archived site with the same code is updated but stays archived: restoring is a deliberate act
  // (it revives the device token), so the import only says so. `warnings` is null when the
  // organisation has no archived site, which spares a query per batch.
  if (warnings) {
    const archived = await ctx.db
      .select({ code: sites.code })
      .from(sites)
      .where(
        and(
          eq(sites.orgId, ctx.orgId),
          sql`${sites.code} = any(${sql.param(batch.map((r) => r.fields.code))}::text[])`,
          isNotNull(sites.archivedAt),
        ),
      );
    const rowOf = new Map(batch.map((r) => [r.fields.code, r.row]));
    for (const a of archived) {
      warnings.push({
        row: rowOf.get(a.code)!,
        column: 'code',
        message: `The site ${a.code} is archived; it was updated and stays archived (restore it from the site page).`,
      });
    }
  }
  const arrays = fields.map((f) => {
    const values = batch.map((r) => (f === 'tags' ? arrayLiteral(r.fields.tags) : (r.fields[f] ?? null)));
    return sql`${sql.param(values)}::${sql.raw(PG_TYPE[f])}[]`;
  });
  const picked = fields.map((f) =>
    f === 'tags'
      ? sql`u.${column(f)}::text[]`
      : f === 'connectivity'
        ? sql`u.${column(f)}::connectivity`
        : f === 'language'
          ? sql`u.${column(f)}::site_language`
          : sql`u.${column(f)}`,
  );
  const updatable = fields.filter((f) => f !== 'code');
  const list = (f: (x: keyof SiteFields) => SQLChunk, of = fields) => sql.join(of.map(f), sql`, `);
  const result = await ctx.db.execute(sql`
    insert into ${sites} (${sql.identifier(sites.orgId.name)}, ${list(column)})
    select ${ctx.orgId}::uuid, ${sql.join(picked, sql`, `)} from unnest(${sql.join(arrays, sql`, `)}) as u(${list(column)})
    on conflict (${sql.identifier(sites.orgId.name)}, ${column('code')}) do update
      set ${list((f) => sql`${column(f)} = excluded.${column(f)}`, updatable)}, ${sql.identifier(sites.updatedAt.name)} = now()
      where (${list((f) => sql`${sites}.${column(f)}`, updatable)}) is distinct from (${list((f) => sql`excluded.${column(f)}`, updatable)})
    returning (xmax = 0) as inserted`);
  // Every driver answers execute() with { rows }; unchanged rows are not returned at all.
  const written = (result as unknown as { rows: { inserted: boolean }[] }).rows;
  const created = written.filter((w) => w.inserted).length;
  return { created, updated: written.length - created, unchanged: batch.length - written.length };
}

class DryRunDone {
  constructor(readonly report: ImportReport) {}
}

/**
 * Imports sites from a CSV stream: upsert by code within the organisation, in batches, in one
 * transaction. `all-or-nothing` writes nothing if any row is bad (422 with the report); `partial`
 * writes the good rows. A dry run does everything and rolls back, so its counts are exact.
 * Problems with the file itself (header, encoding, size, broken quoting) refuse it whole.
 */
export async function importSitesCsv({
  ctx,
  input,
  limits = IMPORT_LIMITS,
}: {
  ctx: ServiceCtx;
  input: { body: ReadableStream<Uint8Array>; mode: ImportMode; dryRun?: boolean };
  limits?: ImportLimits;
}): Promise<ImportReport> {
  const { mode, dryRun = false } = input;
  try {
    return await inTransaction(ctx, async (ctx) => {
      const errors = new Capped<ImportIssue>(limits.maxReported);
      const warnings = new Capped<ImportIssue>(limits.maxReported);
      const seen = new Map<string, number>();
      const counts = { rows: 0, created: 0, updated: 0, unchanged: 0, failed: 0 };
      let header: (keyof SiteFields | null)[] | null = null;
      let fields: (keyof SiteFields)[] = [];
      let batch: GoodRow[] = [];
      const [archived] = await ctx.db
        .select({ id: sites.id })
        .from(sites)
        .where(and(eq(sites.orgId, ctx.orgId), isNotNull(sites.archivedAt)))
        .limit(1);
      // One batch is written while the next is parsed; never more, so memory stays flat.
      let writing: Promise<void> = Promise.resolve();
      const flush = async () => {
        const rows = batch;
        batch = [];
        await writing;
        // After the first bad row an all-or-nothing import will be rolled back: only validate from then on.
        if (!rows.length || (mode === 'all-or-nothing' && counts.failed)) return;
        writing = upsertBatch(ctx, rows, fields, archived ? warnings : null).then((n) => {
          counts.created += n.created;
          counts.updated += n.updated;
          counts.unchanged += n.unchanged;
        });
        writing.catch(() => {}); // rethrown by the next `await writing`
      };

      try {
        let row = 0;
        for await (const record of csvRecords(input.body, limits)) {
          row++;
          if (!header) {
            header = readHeader(record);
            fields = header.filter((f): f is keyof SiteFields => f !== null);
            continue;
          }
          // Blank lines, and rows of empty cells that spreadsheets leave after the data, carry nothing.
          if (record.every((c) => c.trim() === '')) continue;
          if (++counts.rows > limits.maxRows) {
            throw refuse(
              'too-large',
              'CSV_TOO_MANY_ROWS',
              `The file has more than ${limits.maxRows} rows; split it.`,
              row,
            );
          }
          const checked = checkRow(record, header, row, seen);
          if (checked.problems) {
            counts.failed++;
            for (const p of checked.problems) errors.push(p);
          } else {
            batch.push({ row, fields: checked.fields });
            if (batch.length >= limits.batchRows) await flush();
          }
        }
        if (!header)
          throw refuse(
            'invalid',
            'CSV_HEADER',
            'The file is empty; the first row must name the columns (code, name, …).',
            1,
          );
        await flush();
        await writing;
      } finally {
        // Never leave the transaction with a statement still running.
        await writing.catch(() => {});
      }

      const rejected = mode === 'all-or-nothing' && counts.failed > 0;
      const report: ImportReport = {
        mode,
        dryRun,
        ...counts,
        ...(rejected ? { created: 0, updated: 0, unchanged: 0 } : {}),
        errors: errors.items,
        errorsTruncated: errors.truncated,
        warnings: rejected ? [] : warnings.items,
        warningsTruncated: rejected ? false : warnings.truncated,
      };
      if (rejected) {
        throw new AppError(
          'unprocessable',
          'IMPORT_REJECTED',
          `${counts.failed} of ${counts.rows} rows have problems; nothing was imported. Fix them, or import with mode=partial.`,
          report,
        );
      }
      if (dryRun) throw new DryRunDone(report);
      await recordAudit(ctx, {
        action: 'site.import',
        objectType: 'site',
        details: {
          mode,
          rows: counts.rows,
          created: counts.created,
          updated: counts.updated,
          unchanged: counts.unchanged,
          failed: counts.failed,
        },
      });
      return report;
    });
  } catch (e) {
    if (e instanceof DryRunDone) return e.report;
    throw e;
  }
}
