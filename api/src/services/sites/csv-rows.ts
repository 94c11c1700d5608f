// Reading the site CSV: the columns, the byte stream checked (size, UTF-8) and parsed into records,
// the header matched to site fields, and each data row converted and validated. Nothing here writes;
// csv-import.ts takes the checked rows into the database.
import { Buffer } from 'node:buffer';
import { parse, type CsvError } from 'csv-parse/stream';
import { AppError } from '../../lib/errors.ts';
import { SiteFields } from './input.ts';

/** The editable columns of the site CSV (import and export), and the site field each one fills. */
export const SITE_CSV_COLUMNS = {
  code: 'code',
  name: 'name',
  region: 'region',
  district: 'district',
  facility_type: 'facilityType',
  tags: 'tags',
  connectivity: 'connectivity',
  bandwidth_kbps: 'bandwidthKbps',
  timezone: 'timezone',
  language: 'language',
  maintenance_window: 'maintenanceWindow',
  latitude: 'latitude',
  longitude: 'longitude',
  contact_name: 'contactName',
  contact_phone: 'contactPhone',
  contact_email: 'contactEmail',
} as const satisfies Record<string, keyof SiteFields>;
export type SiteCsvColumn = keyof typeof SITE_CSV_COLUMNS;

/** Columns the export adds after the editable ones; an import accepts and ignores them, so an export re-imports as is. */
export const READ_ONLY_CSV_COLUMNS = [
  'reported_version',
  'reported_status',
  'reported_at',
  'target_version',
  'status',
] as const;

export interface ImportIssue {
  /** As a spreadsheet shows it: the header is row 1, the first data row is 2 (blank lines count). */
  row: number;
  column: string | null;
  message: string;
}

/** What reading the file is bounded by (the import's limits carry these among others). */
export interface CsvReadLimits {
  /** The whole upload. */
  maxBytes: number;
  /** One record; longer ones are nearly always a quote left open, and must not grow memory. */
  maxRecordBytes: number;
}

const FIELD_COLUMN = Object.fromEntries(
  Object.entries(SITE_CSV_COLUMNS).map(([col, field]) => [field, col]),
) as Record<keyof SiteFields, SiteCsvColumn>;
const KNOWN_COLUMNS = new Set<string>([...Object.keys(SITE_CSV_COLUMNS), ...READ_ONLY_CSV_COLUMNS]);
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Cells the export escaped against formula injection (`'=…`, `'+254…`) get their one apostrophe back off. */
const ESCAPED_FORMULA = /^'+[=+\-@\t\r]/;
export function unescapeCell(cell: string): string {
  return ESCAPED_FORMULA.test(cell) ? cell.slice(1) : cell;
}

/** One CSV cell → the value `SiteFields` expects; `undefined` means "the schema default". */
function convert(column: SiteCsvColumn, raw: string): { value: unknown } | { error: string } {
  const cell = unescapeCell(raw);
  const blank = cell.trim() === '';
  switch (column) {
    case 'code':
    case 'name':
      return { value: cell };
    case 'tags': {
      if (blank) return { value: [] };
      // `;` is what the export writes; `|` is accepted when no `;` is present.
      const sep = cell.includes(';') ? ';' : '|';
      return {
        value: cell
          .split(sep)
          .map((t) => t.trim())
          .filter((t) => t !== ''),
      };
    }
    case 'connectivity':
      return { value: blank ? undefined : cell.trim().toLowerCase() };
    case 'timezone':
      return { value: blank ? undefined : cell };
    case 'language':
      return { value: blank ? undefined : cell.trim().toLowerCase() };
    case 'bandwidth_kbps':
    case 'latitude':
    case 'longitude': {
      if (blank) return { value: null };
      const t = cell.trim();
      if (!NUMBER.test(t)) {
        return {
          error:
            column === 'bandwidth_kbps'
              ? 'Write a whole number of kbit/s, such as 512.'
              : 'Write a number with a dot for decimals, such as -1.2921.',
        };
      }
      return { value: Number(t) };
    }
    default:
      return { value: blank ? null : cell };
  }
}

export function refuse(
  kind: 'invalid' | 'too-large',
  code: string,
  message: string,
  row: number | null,
  column: string | null = null,
): AppError {
  return new AppError(kind, code, message, row === null ? undefined : [{ row, column, message }]);
}

/**
 * Counts record delimiters outside quotes, so that a byte the parser never sees (bad UTF-8) can
 * still be given its row. Bytes suffice: `"`, CR and LF never occur inside a multi-byte UTF-8 sequence.
 */
class RowCounter {
  row = 1;
  private quoted = false;
  private afterCr = false;
  scan(b: Uint8Array, end = b.length) {
    for (let i = 0; i < end; i++) {
      const x = b[i]!;
      if (x === 0x22) this.quoted = !this.quoted;
      else if (!this.quoted && (x === 0x0d || (x === 0x0a && !this.afterCr))) this.row++;
      this.afterCr = x === 0x0d;
    }
  }
}

/** Index of the first byte of `chunk` that does not decode, found with fresh fatal decoders (only on the failure path). */
function firstBadByte(chunk: Uint8Array): number {
  let start = 0;
  // Continuation bytes at the start finish a sequence begun in the previous chunk.
  while (start < 3 && start < chunk.length && (chunk[start]! & 0xc0) === 0x80) start++;
  const decodes = (end: number) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(chunk.subarray(start, end), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  if (decodes(chunk.length)) return 0; // the sequence carried over from the previous chunk was the bad one
  let lo = start;
  let hi = chunk.length; // decodes(lo) holds, decodes(hi) does not
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (decodes(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * The raw body → Buffers for the parser: enforces the size limit and refuses bytes that are not
 * UTF-8 (a fatal decoder in stream mode, so sequences split across chunks are fine).
 */
async function* guardedChunks(reader: ReadableStreamDefaultReader<Uint8Array>, limits: CsvReadLimits) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const rows = new RowCounter();
  const notUtf8 = () =>
    refuse(
      'invalid',
      'CSV_ENCODING',
      `Row ${rows.row} has bytes that are not UTF-8. Save the file as "CSV UTF-8" and upload it again.`,
      rows.row,
    );
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limits.maxBytes)
      throw refuse(
        'too-large',
        'BODY_TOO_LARGE',
        `The file is larger than ${limits.maxBytes} bytes; split it.`,
        null,
      );
    try {
      decoder.decode(value, { stream: true });
    } catch {
      rows.scan(value, firstBadByte(value));
      throw notUtf8();
    }
    rows.scan(value);
    yield Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  try {
    decoder.decode();
  } catch {
    throw notUtf8();
  }
}

/**
 * Parsed records, one at a time. Each chunk is written only once the parser has taken the previous
 * one, so at most one chunk and the parser's queue of records are in memory whatever the file size.
 */
export async function* csvRecords(
  body: ReadableStream<Uint8Array>,
  limits: CsvReadLimits,
): AsyncGenerator<string[]> {
  const parser = parse({
    // Blank lines stay records (['']), so that the caller's record count is the spreadsheet row.
    bom: true,
    max_record_size: limits.maxRecordBytes,
    skip_empty_lines: false,
    // Rows with too few or too many cells are reported by the caller, row by row, never padded silently.
    relax_column_count: true,
  });
  const writer = parser.writable.getWriter();
  const upload = body.getReader();
  const pump = (async () => {
    try {
      for await (const chunk of guardedChunks(upload, limits)) await writer.write(chunk);
      await writer.close();
    } catch (e) {
      await writer.abort(e).catch(() => {});
    }
  })();
  const reader = parser.readable.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield value as string[];
    }
  } catch (e) {
    throw e instanceof AppError ? e : fromCsvError(e, limits);
  } finally {
    // After an early refusal the rest of the upload is discarded, never read.
    await Promise.all([reader.cancel().catch(() => {}), upload.cancel().catch(() => {})]);
    await pump;
  }
}

function fromCsvError(e: unknown, limits: CsvReadLimits): unknown {
  const err = e as CsvError & { records?: number; empty_lines?: number };
  if (typeof err?.code !== 'string' || !/^(CSV_|INVALID_)/.test(err.code)) return e;
  const row = (err.records ?? 0) + (err.empty_lines ?? 0) + 1;
  if (err.code === 'CSV_MAX_RECORD_SIZE') {
    return refuse(
      'invalid',
      'CSV_RECORD_TOO_LARGE',
      `Row ${row} is longer than the limit of ${limits.maxRecordBytes} bytes; is a quote left open?`,
      row,
    );
  }
  const why =
    err.code === 'CSV_QUOTE_NOT_CLOSED'
      ? 'a quoted cell is never closed'
      : err.code === 'CSV_INVALID_CLOSING_QUOTE' || err.code === 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE'
        ? 'a quoted cell has text after its closing quote'
        : err.code === 'INVALID_OPENING_QUOTE'
          ? 'a cell has a quote in the middle; quote the whole cell and double the inner quotes'
          : 'it is not valid CSV';
  return refuse('invalid', 'CSV_MALFORMED', `The file cannot be read from row ${row}: ${why}.`, row);
}

/** The header row → the site field of each cell (null for read-only columns), or the whole file is refused. */
export function readHeader(cells: string[]): (keyof SiteFields | null)[] {
  const names = cells.map((c) => c.trim().toLowerCase());
  const unknown = names
    .filter((n) => !KNOWN_COLUMNS.has(n))
    .map((n) => (n === '' ? '(a column with no name)' : `"${n}"`));
  const duplicated = [...new Set(names.filter((n, i) => n !== '' && names.indexOf(n) !== i))];
  const missing = (['code', 'name'] as const).filter((n) => !names.includes(n));
  const problems: string[] = [];
  if (unknown.length) {
    const hint =
      names.length === 1 && /[;\t]/.test(cells[0] ?? '') ? ' Separate the columns with commas.' : '';
    problems.push(`Unknown column${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}.${hint}`);
  }
  if (duplicated.length)
    problems.push(
      `Column${duplicated.length > 1 ? 's' : ''} ${duplicated.map((n) => `"${n}"`).join(', ')} appear${duplicated.length > 1 ? '' : 's'} twice.`,
    );
  if (missing.length)
    problems.push(
      `The column${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required.`,
    );
  if (problems.length) {
    const message = `${problems.join(' ')} Known columns: ${[...KNOWN_COLUMNS].join(', ')}.`;
    throw new AppError('invalid', 'CSV_HEADER', message, [{ row: 1, column: null, message }]);
  }
  return names.map((n) => (n in SITE_CSV_COLUMNS ? SITE_CSV_COLUMNS[n as SiteCsvColumn] : null));
}

/** One data row → the site's fields, or every problem found in it (all columns are checked, not just the first bad one). */
export function checkRow(
  record: string[],
  header: (keyof SiteFields | null)[],
  row: number,
  seen: Map<string, number>,
): { fields: SiteFields; problems?: undefined } | { problems: ImportIssue[] } {
  if (record.length !== header.length) {
    return {
      problems: [
        {
          row,
          column: null,
          message: `This row has ${record.length} cells; the header has ${header.length}.`,
        },
      ],
    };
  }
  const problems: ImportIssue[] = [];
  const candidate: Record<string, unknown> = {};
  header.forEach((field, i) => {
    if (!field) return;
    const c = convert(FIELD_COLUMN[field], record[i]!);
    if ('error' in c) problems.push({ row, column: FIELD_COLUMN[field], message: c.error });
    else if (c.value !== undefined) candidate[field] = c.value;
  });
  const parsed = SiteFields.safeParse(candidate);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = issue.path[0] as keyof SiteFields | undefined;
      // A cell that failed conversion was left out; the schema's "required" complaint would repeat it.
      if (field && problems.some((p) => p.column === FIELD_COLUMN[field])) continue;
      problems.push({ row, column: field ? (FIELD_COLUMN[field] ?? null) : null, message: issue.message });
    }
  }
  // Duplicates are reported on the later rows, whether or not the first one is valid otherwise.
  const code = parsed.success
    ? parsed.data.code
    : typeof candidate.code === 'string'
      ? candidate.code.trim()
      : '';
  if (code && !problems.some((p) => p.column === 'code')) {
    const first = seen.get(code);
    if (first !== undefined)
      problems.push({ row, column: 'code', message: `The code ${code} is already used on row ${first}.` });
    else seen.set(code, row);
  }
  return problems.length || !parsed.success ? { problems } : { fields: parsed.data };
}
