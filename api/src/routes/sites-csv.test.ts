import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { and, count, eq } from 'drizzle-orm';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { makeTestApp } from '../test/app.ts';
import { byteStream } from '../test/byte-stream.ts';
import type { ImportReport } from '../services/sites/csv-import.ts';
import { makeApiToken, makeOrg, makeUser } from '../test/factories.ts';
import { expectEnvelope, signIn, withToken } from '../test/http.ts';
import type { DbHandle } from '../db/types.ts';
import type { Role } from '../db/schema/index.ts';
import { auditLog, coordinatorSites, sites } from '../db/schema/index.ts';
import { sha256Hex } from '../lib/crypto.ts';

const HEADER =
  'code,name,region,district,facility_type,tags,connectivity,bandwidth_kbps,timezone,maintenance_window,latitude,longitude,contact_name,contact_phone,contact_email';

type Request = ReturnType<typeof withToken>;
type Body = string | Uint8Array | ReadableStream<Uint8Array>;

// The answer's JSON is the service's report as it is.
type Report = ImportReport;

function upload(request: Request, body: Body, query = 'mode=partial', contentType = 'text/csv') {
  return request(`/api/v1/sites/import?${query}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
    duplex: 'half',
  } as RequestInit);
}

/** Parses the export well enough for the assertions (quoted cells, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r') continue;
    else if (ch === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (cell || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

describe.each(TEST_DRIVERS)('site CSV import and export on %s', (driver) => {
  let h: DbHandle;
  let t: Awaited<ReturnType<typeof makeTestApp>>;
  beforeAll(async () => {
    h = await createTestDb(driver);
    t = await makeTestApp(h);
  });
  afterAll(async () => {
    await h.close();
  });

  async function as(role: Role, orgId?: string) {
    const org = orgId ?? (await makeOrg(h.db)).id;
    const { token } = await makeApiToken(h.db, org, role);
    return { orgId: org, request: withToken(t.app, token) };
  }
  async function siteCount(orgId: string) {
    const [{ n } = { n: 0 }] = await h.db.select({ n: count() }).from(sites).where(eq(sites.orgId, orgId));
    return n;
  }
  async function siteByCode(orgId: string, code: string) {
    const [row] = await h.db
      .select()
      .from(sites)
      .where(and(eq(sites.orgId, orgId), eq(sites.code, code)));
    return row!;
  }
  /** The export as sent (`bytes`, with its BOM) and as text without the BOM. */
  async function exportCsv(request: Request, query = '') {
    const res = await request(`/api/v1/sites/export.csv${query ? `?${query}` : ''}`);
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    return { res, bytes, text: new TextDecoder().decode(bytes) };
  }

  const THREE = [
    HEADER,
    "KE-001,Kibera Health Centre,Nairobi,Kibra,health_centre,urban;pilot,online,2048,Africa/Nairobi,daily 22:00-04:00,-1.3133,36.7876,Grace W,'+254 712 000001,grace@example.org",
    'KE-002,"Mathare ""North"" Dispensary",Nairobi,Mathare,dispensary,urban,intermittent,,Africa/Nairobi,,-1.2597,36.8580,,,',
    'KE-003,Clínica São João,Coast,Kilifi,hospital,,offline,128,,sat-sun 08:00-12:00,,,,,',
  ].join('\r\n');

  describe('happy', () => {
    it('should create three sites from a CSV and record one audit entry with counts only', async () => {
      const { orgId, request } = await as('operator');
      const res = await upload(request, THREE, 'mode=all-or-nothing');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        mode: 'all-or-nothing',
        dryRun: false,
        rows: 3,
        created: 3,
        updated: 0,
        unchanged: 0,
        failed: 0,
        errors: [],
        errorsTruncated: false,
        warnings: [],
        warningsTruncated: false,
      });
      const one = await siteByCode(orgId, 'KE-001');
      expect(one).toMatchObject({
        name: 'Kibera Health Centre',
        region: 'Nairobi',
        district: 'Kibra',
        facilityType: 'health_centre',
        tags: ['urban', 'pilot'],
        connectivity: 'online',
        bandwidthKbps: 2048,
        timezone: 'Africa/Nairobi',
        maintenanceWindow: 'daily 22:00-04:00',
        latitude: -1.3133,
        longitude: 36.7876,
        contactName: 'Grace W',
        contactPhone: '+254 712 000001',
        contactEmail: 'grace@example.org',
      });
      expect(await siteByCode(orgId, 'KE-002')).toMatchObject({
        name: 'Mathare "North" Dispensary',
        bandwidthKbps: null,
        contactEmail: null,
        tags: ['urban'],
      });
      expect(await siteByCode(orgId, 'KE-003')).toMatchObject({
        name: 'Clínica São João',
        timezone: 'UTC',
        latitude: null,
        tags: [],
        connectivity: 'offline',
      });
      const audit = await h.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.orgId, orgId), eq(auditLog.action, 'site.import')));
      expect(audit).toHaveLength(1);
      expect(audit[0]!.details).toEqual({
        mode: 'all-or-nothing',
        rows: 3,
        created: 3,
        updated: 0,
        unchanged: 0,
        failed: 0,
      });
      expect(JSON.stringify(audit[0]!.details)).not.toContain('Kibera');
    });

    it('should upsert on re-import: count unchanged and updated rows, and leave out columns and reported fields alone', async () => {
      const { orgId, request } = await as('admin');
      expect((await upload(request, THREE)).status).toBe(200);
      await h.db
        .update(sites)
        .set({
          deviceTokenHash: 'hash-kept',
          reportedVersion: '2.1.0',
          reportedStatus: 'healthy',
          reportedAt: new Date('2025-01-01T00:00:00Z'),
        })
        .where(and(eq(sites.orgId, orgId), eq(sites.code, 'KE-001')));
      const again = (await (await upload(request, THREE)).json()) as Report;
      expect(again).toMatchObject({ rows: 3, created: 0, updated: 0, unchanged: 3, failed: 0 });

      const fewer = [
        'code,NAME,Region',
        'KE-001,Kibera HC,Nairobi',
        'KE-002,"Mathare ""North"" Dispensary",Nairobi',
        'KE-004,New Site,',
      ].join('\n');
      const r = (await (await upload(request, fewer)).json()) as Report;
      expect(r).toMatchObject({ rows: 3, created: 1, updated: 1, unchanged: 1, failed: 0 });
      expect(await siteByCode(orgId, 'KE-001')).toMatchObject({
        name: 'Kibera HC',
        tags: ['urban', 'pilot'],
        contactPhone: '+254 712 000001',
        latitude: -1.3133,
        deviceTokenHash: 'hash-kept',
        reportedVersion: '2.1.0',
        reportedStatus: 'healthy',
        archivedAt: null,
      });
      expect(await siteByCode(orgId, 'KE-004')).toMatchObject({
        name: 'New Site',
        region: null,
        connectivity: 'online',
        timezone: 'UTC',
      });
    });

    it("should import the site's language (any case), default it to en, and refuse one it does not know", async () => {
      const { orgId, request } = await as('admin');
      const csv = ['code,name,language', 'LG-1,Goma Ouest,FR', 'LG-2,Maputo,pt', 'LG-3,Nairobi,'].join('\n');
      expect(await (await upload(request, csv)).json()).toMatchObject({ created: 3, failed: 0 });
      expect(await siteByCode(orgId, 'LG-1')).toMatchObject({ language: 'fr' });
      expect(await siteByCode(orgId, 'LG-2')).toMatchObject({ language: 'pt' });
      expect(await siteByCode(orgId, 'LG-3')).toMatchObject({ language: 'en' });
      const bad = (await (
        await upload(request, ['code,name,language', 'LG-4,Berlin,de'].join('\n'), 'mode=partial')
      ).json()) as Report;
      expect(bad).toMatchObject({
        failed: 1,
        errors: [{ row: 2, column: 'language', message: 'Use en, fr or pt.' }],
      });
    });

    it('should update an archived site with the same code, keep it archived and say so', async () => {
      const { orgId, request } = await as('operator');
      await upload(request, THREE);
      const archivedAt = new Date('2025-02-01T00:00:00Z');
      await h.db
        .update(sites)
        .set({ archivedAt })
        .where(and(eq(sites.orgId, orgId), eq(sites.code, 'KE-002')));
      const r = (await (await upload(request, `code,name\nKE-002,Mathare renamed\n`)).json()) as Report;
      expect(r).toMatchObject({
        updated: 1,
        failed: 0,
        warnings: [{ row: 2, column: 'code', message: expect.stringMatching(/archived/) }],
      });
      expect(await siteByCode(orgId, 'KE-002')).toMatchObject({ name: 'Mathare renamed', archivedAt });
    });

    it('should validate and count on a dry run without writing anything', async () => {
      const { orgId, request } = await as('operator');
      const res = await upload(request, THREE, 'mode=partial&dryRun=true');
      expect(await res.json()).toMatchObject({ dryRun: true, rows: 3, created: 3, failed: 0 });
      expect(await siteCount(orgId)).toBe(0);
      const audit = await h.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.orgId, orgId), eq(auditLog.action, 'site.import')));
      expect(audit).toHaveLength(0);
    });

    it('should read UTF-8 split across chunks one byte at a time, with a BOM, blank lines and |-separated tags', async () => {
      const { orgId, request } = await as('operator');
      const bytes = new TextEncoder().encode(
        `\uFEFF${HEADER}\n\nKE-009,Clínica Ñandú 日本,,,,x| y ,,,,,,,,,\n,,,,,,,,,,,,,,\n`,
      );
      const r = (await (await upload(request, byteStream(bytes, 1).stream)).json()) as Report;
      expect(r).toMatchObject({ rows: 1, created: 1, failed: 0 });
      expect(await siteByCode(orgId, 'KE-009')).toMatchObject({
        name: 'Clínica Ñandú 日本',
        tags: ['x', 'y'],
      });
    });

    it('should round-trip: an export re-imports unchanged, and imports into another organisation identically', async () => {
      const a = await as('operator');
      const tricky = [
        HEADER,
        'RT-1,=cmd|\' /C calc\'!A0,"Region, with comma",D,,a;b;c,online,1,Europe/Berlin,mon-fri 01:00-02:00,-89.999999,-179.5,@SUM(1),+1 (555) 010-0000,x@example.org',
        'RT-2,"Line one\nline two",+1,-1,\'already,,intermittent,10000000,UTC,,0,0,"Quote "" inside",-1,',
        'RT-3,Ünïcödé ✓,,,,solo,offline,,Asia/Kolkata,,12.5,77.25,,,',
      ].join('\n');
      const first = (await (await upload(a.request, tricky)).json()) as Report;
      expect(first).toMatchObject({ created: 3, failed: 0 });
      const { bytes, text } = await exportCsv(a.request);
      expect((await (await upload(a.request, bytes)).json()) as Report).toMatchObject({
        rows: 3,
        unchanged: 3,
        created: 0,
        updated: 0,
        failed: 0,
      });

      const b = await as('operator');
      expect((await (await upload(b.request, text)).json()) as Report).toMatchObject({
        created: 3,
        failed: 0,
      });
      const fields = (r: typeof sites.$inferSelect) => {
        const { id: _i, orgId: _o, createdAt: _c, updatedAt: _u, ...rest } = r;
        return rest;
      };
      for (const code of ['RT-1', 'RT-2', 'RT-3']) {
        expect(fields(await siteByCode(b.orgId, code))).toEqual(fields(await siteByCode(a.orgId, code)));
      }
      expect(await siteByCode(b.orgId, 'RT-2')).toMatchObject({
        name: 'Line one\nline two',
        region: '+1',
        district: '-1',
        facilityType: "'already",
        contactPhone: '-1',
      });
      expect((await siteByCode(b.orgId, 'RT-1')).name).toBe("=cmd|' /C calc'!A0");
    });

    it('should stream an export with the right headers, page through more than 1000 sites and honour the filters', async () => {
      const { request } = await as('operator');
      const lines = [HEADER];
      for (let i = 0; i < 2500; i++) {
        lines.push(
          `EX-${String(i).padStart(5, '0')},Site ${i},${i % 2 ? 'North' : 'South'},,,${i % 5 === 0 ? 'pilot' : ''},${i % 3 === 0 ? 'offline' : 'online'},,,,,,,,`,
        );
      }
      expect(((await (await upload(request, lines.join('\n'))).json()) as Report).created).toBe(2500);

      const { res, text } = await exportCsv(request);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(res.headers.get('content-disposition')).toMatch(
        /^attachment; filename="sites-org-[\w-]+-\d{4}-\d{2}-\d{2}\.csv"$/,
      );
      const rows = parseCsv(text);
      expect(rows[0]).toEqual([
        ...HEADER.replace('timezone,', 'timezone,language,').split(','),
        'reported_version',
        'reported_status',
        'reported_at',
        'target_version',
        'status',
      ]);
      const codes = rows.slice(1).map((r) => r[0]);
      expect(codes).toHaveLength(2500);
      expect(new Set(codes).size).toBe(2500);
      expect(codes).toEqual([...codes].sort());
      expect(rows[1]!.at(-1)).toBe('never_reported');

      const north = parseCsv((await exportCsv(request, 'region=North&tag=pilot')).text).slice(1);
      expect(north).toHaveLength(250);
      expect(north.every((r) => r[2] === 'North' && r[5] === 'pilot')).toBe(true);
      const offline = parseCsv((await exportCsv(request, 'connectivity=offline&q=EX-0000')).text).slice(1);
      expect(offline.map((r) => r[0])).toEqual(['EX-00000', 'EX-00003', 'EX-00006', 'EX-00009']);
    });

    // Runs on both drivers. PGlite is PostgreSQL compiled to WebAssembly: single-threaded, in this very
    // process, sharing the CPU with the parser and with the other test files. Measured on an idle
    // 2-CPU machine: about 5.5–7.5 s on PGlite and 4.5–5 s on PostgreSQL; under heavy load PGlite took
    // up to 11 s, so its budget here carries slack for that. Memory is read from the JS heap (the
    // PGlite database itself lives in WebAssembly memory and grows with the data, whatever the import does).
    it('should import 50,000 generated rows with bounded memory (its speed is measured by npm run bench)', async () => {
      const { orgId, request } = await as('operator');
      const total = 50_000;
      let next = 0;
      const enc = new TextEncoder();
      // Generated while it is read: the test holds no more of the file than the server does.
      const mem = () => ({ heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss });
      const before = mem();
      const peak = { ...before };
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          // Sampled here, as the server asks for more: PGlite leaves timers no turn while it works.
          const m = mem();
          peak.heap = Math.max(peak.heap, m.heap);
          peak.rss = Math.max(peak.rss, m.rss);
          if (next === 0) c.enqueue(enc.encode(`${HEADER}\n`));
          if (next >= total) return c.close();
          let chunk = '';
          for (const end = Math.min(total, next + 500); next < end; next++) {
            chunk += `BULK-${next},Facility number ${next},Region ${next % 47},District ${next % 300},dispensary,bulk;r${next % 10},online,${256 + (next % 1000)},Africa/Nairobi,daily 22:00-04:00,${(next % 180) - 89.5},${(next % 360) - 179.5},Contact ${next},+254 700 ${String(next).padStart(6, '0')},c${next}@example.org\n`;
          }
          c.enqueue(enc.encode(chunk));
        },
      });
      const started = performance.now();
      const res = await upload(request, body, 'mode=all-or-nothing');
      const report = (await res.json()) as Report;
      const ms = performance.now() - started;
      const mb = (n: number) => Math.round(n / 2 ** 20);
      console.log(
        `[${driver}] 50,000-row import: ${Math.round(ms)} ms; JS heap ${mb(before.heap)} → peak ${mb(peak.heap)} MB (+${mb(peak.heap - before.heap)}); RSS ${mb(before.rss)} → peak ${mb(peak.rss)} MB (+${mb(peak.rss - before.rss)})`,
      );
      expect(res.status).toBe(200);
      expect(report).toMatchObject({ rows: total, created: total, failed: 0 });
      expect(await siteCount(orgId)).toBe(total);
      expect(peak.heap - before.heap).toBeLessThan(96 * 2 ** 20);
    }, 60_000);

    it('should answer before the upload ends when the file is refused early, and stop reading it', async () => {
      const { request } = await as('operator');
      let cancelled = false;
      let sent = 0;
      const endless = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('code,name,favourite_colour\n'));
        },
        async pull(c) {
          await new Promise((r) => setTimeout(r, 5));
          c.enqueue(new TextEncoder().encode('A,B,red\n'.repeat(100)));
          sent++;
        },
        cancel() {
          cancelled = true;
        },
      });
      const err = await expectEnvelope(await upload(request, endless), 400, 'CSV_HEADER');
      expect(err.message).toMatch(/"favourite_colour"/);
      expect(cancelled).toBe(true);
      expect(sent).toBeLessThan(50);
    });
  });

  describe('error', () => {
    it('should refuse a file without a code column, naming it', async () => {
      const { orgId, request } = await as('operator');
      const err = await expectEnvelope(await upload(request, 'name,region\nA,B\n'), 400, 'CSV_HEADER');
      expect(err.message).toMatch(/"code" is required/);
      expect(await siteCount(orgId)).toBe(0);
    });

    it('should refuse unknown and duplicated columns, naming them', async () => {
      const { request } = await as('operator');
      const err = await expectEnvelope(
        await upload(request, 'code,name,colour,Size\nA,B,red,1\n'),
        400,
        'CSV_HEADER',
      );
      expect(err.message).toMatch(/Unknown columns "colour", "size"/);
      const dup = await expectEnvelope(await upload(request, 'code,name,Name\nA,B,C\n'), 400, 'CSV_HEADER');
      expect(dup.message).toMatch(/"name" appears twice/);
      const semi = await expectEnvelope(await upload(request, 'code;name\nA;B\n'), 400, 'CSV_HEADER');
      expect(semi.message).toMatch(/Separate the columns with commas/);
    });

    it('should refuse a file that is not UTF-8 with the row of the first bad byte, and write nothing', async () => {
      const { orgId, request } = await as('operator');
      const latin1 = Uint8Array.from([
        ...new TextEncoder().encode('code,name\nA-1,Fine\nA-2,Caf'),
        0xe9,
        ...new TextEncoder().encode('\nA-3,Later\n'),
      ]);
      const err = (await expectEnvelope(await upload(request, latin1), 400, 'CSV_ENCODING')) as {
        details?: unknown;
        message: string;
      };
      expect(err.message).toMatch(/^Row 3 /);
      expect(err.details).toEqual([{ row: 3, column: null, message: err.message }]);
      expect(await siteCount(orgId)).toBe(0);
      // The same bytes arriving one at a time give the same answer.
      const again = await expectEnvelope(
        await upload(request, byteStream(latin1, 1).stream),
        400,
        'CSV_ENCODING',
      );
      expect(again.message).toMatch(/^Row 3 /);
      // UTF-16, as Excel's "Unicode text" writes it.
      const utf16 = await expectEnvelope(
        await upload(request, Uint8Array.from([0xff, 0xfe, 0x63, 0x00, 0x6f, 0x00])),
        400,
        'CSV_ENCODING',
      );
      expect(utf16.message).toMatch(/^Row 1 /);
    });

    it('should refuse a 1 MB line with its row, and keep serving', async () => {
      const { orgId, request } = await as('operator');
      const res = await upload(request, `code,name\nA-1,Fine\nA-2,${'x'.repeat(1024 * 1024)}\nA-3,Fine\n`);
      const err = await expectEnvelope(res, 400, 'CSV_RECORD_TOO_LARGE');
      expect(err.message).toMatch(/^Row 3 /);
      expect(await siteCount(orgId)).toBe(0);
      const open = await expectEnvelope(
        await upload(request, `code,name\nA-1,"never closed\n`),
        400,
        'CSV_MALFORMED',
      );
      expect(open.message).toMatch(/row 2/);
      expect((await upload(request, 'code,name\nA-1,Fine\n')).status).toBe(200);
    });

    it('should report bad values with their row and column', async () => {
      const { orgId, request } = await as('operator');
      const csv = [
        'code,name,connectivity,latitude,contact_email,timezone,bandwidth_kbps,maintenance_window',
        'V-1,Good,online,1.5,a@example.org,Africa/Nairobi,512,daily 22:00-04:00',
        'V-2,Flaky,sometimes,,,,,',
        'V-3,North pole plus,,200,,,,',
        'V-4,Bad mail,,,not-an-email,,,',
        'V-5,Bad zone,,,,Mars/Olympus_Mons,,',
        'V-6,Words,,,,,fast,whenever',
        'bad code,,,,,,,',
        'V-7,Short row',
      ].join('\n');
      const r = (await (await upload(request, csv)).json()) as Report;
      expect(r).toMatchObject({ rows: 8, created: 1, failed: 7 });
      const at = (row: number) =>
        r.errors
          .filter((e) => e.row === row)
          .map((e) => e.column)
          .sort();
      expect(at(3)).toEqual(['connectivity']);
      expect(at(4)).toEqual(['latitude']);
      expect(at(5)).toEqual(['contact_email']);
      expect(at(6)).toEqual(['timezone']);
      expect(at(7)).toEqual(['bandwidth_kbps', 'maintenance_window']);
      expect(at(8)).toEqual(['code', 'name']);
      expect(r.errors.find((e) => e.row === 9)).toMatchObject({
        column: null,
        message: 'This row has 2 cells; the header has 8.',
      });
      expect(r.errors.find((e) => e.row === 6)!.message).toMatch(/IANA time zone/);
      expect(await siteCount(orgId)).toBe(1);
    });

    it('should report duplicate codes on the later rows and write the first in partial mode', async () => {
      const { orgId, request } = await as('operator');
      const r = (await (
        await upload(request, 'code,name\nD-1,First\nD-2,Other\nD-1,Second\nD-1,Third\n')
      ).json()) as Report;
      expect(r).toMatchObject({ rows: 4, created: 2, failed: 2 });
      expect(r.errors).toEqual([
        { row: 4, column: 'code', message: 'The code D-1 is already used on row 2.' },
        { row: 5, column: 'code', message: 'The code D-1 is already used on row 2.' },
      ]);
      expect((await siteByCode(orgId, 'D-1')).name).toBe('First');
    });

    it('should write nothing in all-or-nothing mode when one row is bad, and answer 422 with the report', async () => {
      const { orgId, request } = await as('operator');
      await upload(request, 'code,name\nKEEP-1,Before\n');
      const before = await siteCount(orgId);
      const lines = ['code,name,latitude', 'KEEP-1,After,'];
      for (let i = 0; i < 1200; i++) lines.push(`AON-${i},Site ${i},${i === 1100 ? 'ninety' : ''}`);
      const res = await upload(request, lines.join('\n'), 'mode=all-or-nothing');
      const err = (await expectEnvelope(res, 422, 'IMPORT_REJECTED')) as { details?: Report };
      expect(err.details).toMatchObject({
        mode: 'all-or-nothing',
        rows: 1201,
        created: 0,
        updated: 0,
        failed: 1,
        errors: [{ row: 1103, column: 'latitude' }],
      });
      expect(await siteCount(orgId)).toBe(before);
      expect((await siteByCode(orgId, 'KEEP-1')).name).toBe('Before');
    });

    it('should write the good rows in partial mode', async () => {
      const { orgId, request } = await as('operator');
      const r = (await (
        await upload(request, 'code,name,contact_email\nP-1,One,\nP-2,Two,nope\nP-3,Three,\n')
      ).json()) as Report;
      expect(r).toMatchObject({
        mode: 'partial',
        rows: 3,
        created: 2,
        failed: 1,
        errors: [{ row: 3, column: 'contact_email' }],
      });
      expect(await siteCount(orgId)).toBe(2);
    });

    it('should cap the list of errors but count them all', async () => {
      const { request } = await as('operator');
      const lines = ['code,name,latitude'];
      for (let i = 0; i < 1500; i++) lines.push(`C-${i},Site,999`);
      const r = (await (await upload(request, lines.join('\n'))).json()) as Report;
      expect(r).toMatchObject({ failed: 1500, errorsTruncated: true });
      expect(r.errors).toHaveLength(1000);
    });

    it('should require an explicit mode', async () => {
      const { orgId, request } = await as('operator');
      const err = (await expectEnvelope(await upload(request, THREE, ''), 400, 'VALIDATION_FAILED')) as {
        details?: { path: string; code: string; message: string }[];
      };
      expect(err.details).toEqual([
        { path: 'mode', code: 'invalid_value', message: expect.stringMatching(/mode=all-or-nothing/) },
      ]);
      await expectEnvelope(await upload(request, THREE, 'mode=yolo'), 400, 'VALIDATION_FAILED');
      expect(await siteCount(orgId)).toBe(0);
    });

    it('should refuse a body that is not CSV in UTF-8', async () => {
      const { request } = await as('operator');
      await expectEnvelope(
        await upload(request, JSON.stringify({ code: 'A' }), 'mode=partial', 'application/json'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
      await expectEnvelope(
        await upload(request, THREE, 'mode=partial', 'text/csv; charset=iso-8859-1'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
      await expectEnvelope(await upload(request, '', 'mode=partial'), 400, 'CSV_HEADER');
      expect(
        (await upload(request, 'code,name\nU-1,Ok\n', 'mode=partial', 'text/csv; charset=UTF-8')).status,
      ).toBe(200);
    });

    it('should refuse a body declared larger than the import limit before reading it', async () => {
      const { request } = await as('operator');
      const res = await request('/api/v1/sites/import?mode=partial', {
        method: 'POST',
        headers: { 'content-type': 'text/csv', 'content-length': String(200 * 1024 * 1024) },
        body: 'code,name\n',
      });
      await expectEnvelope(res, 413, 'BODY_TOO_LARGE');
    });

    it('should still apply the ordinary body limit to other endpoints', async () => {
      const { request } = await as('admin');
      const res = await request('/api/v1/sites', {
        method: 'POST',
        json: { code: 'BIG', name: 'x'.repeat(2 * 1024 * 1024) },
      });
      await expectEnvelope(res, 413, 'BODY_TOO_LARGE');
    });
  });

  describe('security', () => {
    it('should forbid viewers and coordinators from importing, and write nothing', async () => {
      for (const role of ['viewer', 'coordinator'] as const) {
        const { orgId, request } = await as(role);
        await expectEnvelope(await upload(request, THREE), 403, 'FORBIDDEN');
        expect(await siteCount(orgId)).toBe(0);
      }
    });

    it('should refuse a cookie-session import without the CSRF token', async () => {
      const org = await makeOrg(h.db);
      const admin = await makeUser(h.db, org.id, 'admin');
      const s = await signIn(t.app, admin.email, admin.password);
      const res = await t.app.request('/api/v1/sites/import?mode=partial', {
        method: 'POST',
        headers: { cookie: s.cookie, 'content-type': 'text/csv' },
        body: THREE,
      });
      await expectEnvelope(res, 403, 'CSRF_FAILED');
      expect(await siteCount(org.id)).toBe(0);
      expect(
        (
          await s.request('/api/v1/sites/import?mode=partial', {
            method: 'POST',
            headers: { 'content-type': 'text/csv' },
            body: THREE,
          })
        ).status,
      ).toBe(200);
    });

    it("should update only its own organisation's site when another has the same code", async () => {
      const a = await as('operator');
      const b = await as('operator');
      await upload(a.request, 'code,name\nABC-1,A original\n');
      await upload(b.request, 'code,name\nABC-1,B original\n');
      const r = (await (await upload(a.request, 'code,name\nABC-1,A renamed\n')).json()) as Report;
      expect(r).toMatchObject({ updated: 1, created: 0 });
      expect((await siteByCode(a.orgId, 'ABC-1')).name).toBe('A renamed');
      expect((await siteByCode(b.orgId, 'ABC-1')).name).toBe('B original');
    });

    it("should export only the organisation's sites, and only a coordinator's own", async () => {
      const a = await as('operator');
      const b = await as('operator');
      await upload(a.request, 'code,name\nA-1,Mine\nA-2,Also mine\n');
      await upload(b.request, 'code,name\nB-1,Theirs\n');
      const { text } = await exportCsv(a.request);
      expect(
        parseCsv(text)
          .slice(1)
          .map((r) => r[0]),
      ).toEqual(['A-1', 'A-2']);
      expect(text).not.toContain('Theirs');

      const coord = await makeUser(h.db, a.orgId, 'coordinator');
      const a2 = await siteByCode(a.orgId, 'A-2');
      await h.db.insert(coordinatorSites).values({ orgId: a.orgId, userId: coord.id, siteId: a2.id });
      const cs = await signIn(t.app, coord.email, coord.password);
      const mine = await cs.request('/api/v1/sites/export.csv');
      expect(
        parseCsv(new TextDecoder().decode(await mine.arrayBuffer()))
          .slice(1)
          .map((r) => r[0]),
      ).toEqual(['A-2']);
    });

    it('should escape formula cells on export and never include device tokens or their hashes', async () => {
      const { orgId, request } = await as('admin');
      const csv = [
        'code,name,region,district,facility_type,contact_phone,tags',
        "F-1,=cmd|' /C calc'!A0,@SUM(1),+1,-1,+254 712 000001,=evil;@bad",
      ].join('\n');
      expect(((await (await upload(request, csv)).json()) as Report).created).toBe(1);
      const site = await siteByCode(orgId, 'F-1');
      const issued = (await (
        await request(`/api/v1/sites/${site.id}/device-token`, { method: 'POST' })
      ).json()) as { token: string };
      const hash = await sha256Hex(issued.token);
      expect((await siteByCode(orgId, 'F-1')).deviceTokenHash).toBe(hash);
      await h.db
        .update(sites)
        .set({ reportedVersion: '=HYPERLINK("http://evil")' })
        .where(eq(sites.id, site.id));

      const { text } = await exportCsv(request);
      const [, row] = parseCsv(text);
      expect(row!.slice(0, 5)).toEqual(['F-1', "'=cmd|' /C calc'!A0", "'@SUM(1)", "'+1", "'-1"]);
      expect(row![14]).toBe("'+254 712 000001");
      expect(row![5]).toBe("'=evil;@bad");
      expect(row![16]).toBe('\'=HYPERLINK("http://evil")');
      expect(text).not.toContain(hash);
      expect(text).not.toContain(issued.token);
      expect(text).not.toMatch(/opd_/);
      const sealed = (await siteByCode(orgId, 'F-1')).receiptKeySealed;
      expect(sealed).toBeTruthy();
      expect(text).not.toContain(sealed!);
    });
  });
});
