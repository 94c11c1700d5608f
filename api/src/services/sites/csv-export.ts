import { and, eq, gt, type SQL } from 'drizzle-orm';
import { stringify } from 'csv-stringify/sync';
import { organizations, sites } from '../../db/schema/index.ts';
import type { ServiceCtx } from '../context.ts';
import { releaseOrderFor, siteFilterWhere, type SiteFilter } from './list.ts';
import { DEFAULT_SILENT_DAYS, siteStatus, targetRelease } from './scope.ts';
import { READ_ONLY_CSV_COLUMNS, SITE_CSV_COLUMNS } from './csv-rows.ts';

export const EXPORT_COLUMNS = [...Object.keys(SITE_CSV_COLUMNS), ...READ_ONLY_CSV_COLUMNS];
export const EXPORT_PAGE_ROWS = 1000;

/**
 * OWASP CSV injection: a cell a spreadsheet would read as a formula gets a leading `'`. Cells that
 * already start with apostrophes before such a character get one more, so that the import, which
 * takes exactly one off (`unescapeCell`), gives back the original text.
 */
const FORMULA = /^'*[=+\-@\t\r]/;
export function escapeCell(text: string): string {
  return FORMULA.test(text) ? `'${text}` : text;
}

// Only the columns the CSV shows are read: the device token hash and the sealed receipt key never
// leave the database, whatever the export code does with the row.
const columns = {
  id: sites.id,
  code: sites.code,
  name: sites.name,
  region: sites.region,
  district: sites.district,
  facilityType: sites.facilityType,
  tags: sites.tags,
  connectivity: sites.connectivity,
  bandwidthKbps: sites.bandwidthKbps,
  timezone: sites.timezone,
  language: sites.language,
  maintenanceWindow: sites.maintenanceWindow,
  latitude: sites.latitude,
  longitude: sites.longitude,
  contactName: sites.contactName,
  contactPhone: sites.contactPhone,
  contactEmail: sites.contactEmail,
  reportedVersion: sites.reportedVersion,
  reportedReleaseId: sites.reportedReleaseId,
  reportedStatus: sites.reportedStatus,
  reportedAt: sites.reportedAt,
  targetReleaseId: sites.targetReleaseId,
  ...targetRelease,
};

function fetchPage(ctx: ServiceCtx, where: SQL, after: string | null) {
  return ctx.db
    .select(columns)
    .from(sites)
    .where(and(where, after === null ? undefined : gt(sites.code, after)))
    .orderBy(sites.code)
    .limit(EXPORT_PAGE_ROWS);
}
type ExportRow = Awaited<ReturnType<typeof fetchPage>>[number];

const text = (v: string | null) => (v === null ? '' : escapeCell(v));

function toCells(r: ExportRow, now: Date, silentDays: number): (string | number)[] {
  // Numbers stay numbers: they cannot carry a formula, so a negative latitude is written as is.
  return [
    text(r.code),
    text(r.name),
    text(r.region),
    text(r.district),
    text(r.facilityType),
    text(r.tags.join(';')),
    r.connectivity,
    r.bandwidthKbps ?? '',
    text(r.timezone),
    r.language,
    text(r.maintenanceWindow),
    r.latitude ?? '',
    r.longitude ?? '',
    text(r.contactName),
    text(r.contactPhone),
    text(r.contactEmail),
    text(r.reportedVersion),
    text(r.reportedStatus),
    r.reportedAt?.toISOString() ?? '',
    text(r.targetVersion),
    siteStatus(r, now, silentDays),
  ];
}

const CSV_OPTIONS = { record_delimiter: 'windows', eof: true } as const;

/**
 * The sites matching `filter` as a CSV stream (the columns of the import, then read-only ones).
 * Pages of 1000 by code (keyset), fetched only as the client reads: the fleet is never in memory.
 */
export async function exportSitesCsv({
  ctx,
  input,
  now = new Date(),
}: {
  ctx: ServiceCtx;
  input: SiteFilter;
  now?: Date;
}) {
  const [org] = await ctx.db
    .select({ slug: organizations.slug })
    .from(organizations)
    .where(eq(organizations.id, ctx.orgId))
    .limit(1);
  const slug = (org?.slug ?? 'org').replace(/[^A-Za-z0-9_-]/g, '-');
  const filename = `sites-${slug}-${now.toISOString().slice(0, 10)}.csv`;
  const where = siteFilterWhere(ctx, input, now, await releaseOrderFor(ctx, input));
  const silentDays = input.silentDays ?? DEFAULT_SILENT_DAYS;
  const encoder = new TextEncoder();
  let after: string | null = null;
  let started = false;

  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!started) {
          started = true;
          // The BOM makes Excel read the file as UTF-8; the import skips it.
          controller.enqueue(encoder.encode(`\uFEFF${stringify([EXPORT_COLUMNS], CSV_OPTIONS)}`));
          return;
        }
        const page = await fetchPage(ctx, where, after);
        if (page.length) {
          controller.enqueue(
            encoder.encode(
              stringify(
                page.map((r) => toCells(r, now, silentDays)),
                CSV_OPTIONS,
              ),
            ),
          );
          after = page.at(-1)!.code;
        }
        if (page.length < EXPORT_PAGE_ROWS) controller.close();
      },
    },
    { highWaterMark: 1 },
  );

  return { filename, stream };
}
