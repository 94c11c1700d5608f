import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { and, eq } from 'drizzle-orm';
import { artifacts, auditLog, contentPackages } from '../../db/schema/index.ts';
import type { DbHandle } from '../../db/types.ts';
import { has } from '../../lib/blob-store.ts';
import type { ObjectStore } from '../../lib/object-store.ts';
import { createTestDb, TEST_DRIVERS } from '../../test/db.ts';
import { scratchStore, storedKeys } from '../../test/store.ts';
import { makeOrg, makeUser } from '../../test/factories.ts';
import { zipOf, type ZipOptions } from '../../test/zip.ts';
import { byteStream } from '../../test/byte-stream.ts';
import type { ServiceCtx } from '../context.ts';
import { getContentPackage, listContentPackages, uploadContentPackage } from './content.ts';
import { createZipInspector } from './zip-inspector.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A zip made by archiver (the stack's writer): deflated and stored entries, streamed ones (data descriptors), a folder. */
const archiverZip = (files: Record<string, string | Buffer>, opts: ZipOptions = {}) =>
  zipOf(files, { level: 6, folders: ['forms/'], ...opts });

interface RawEntry {
  name: string;
  data?: Buffer;
  method?: 0 | 8;
  flags?: number;
  crc?: number;
  /** Written into the table of contents instead of `name` (a smuggling attempt). */
  centralName?: string;
  madeBy?: number;
  extAttr?: number;
}

/** A zip written byte by byte, for archives no honest tool writes (`../` names, encrypted flags, wrong CRCs). */
function rawZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const method = e.method ?? 0;
    const packed = method === 8 ? zlib.deflateRawSync(data) : data;
    const crc = e.crc ?? zlib.crc32(data);
    const name = Buffer.from(e.name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(e.flags ?? 0x0800, 6);
    lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc >>> 0, 14);
    lh.writeUInt32LE(packed.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(name.length, 26);
    locals.push(lh, name, packed);
    const cname = Buffer.from(e.centralName ?? e.name);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(e.madeBy ?? 20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(e.flags ?? 0x0800, 8);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc >>> 0, 16);
    ch.writeUInt32LE(packed.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(cname.length, 28);
    ch.writeUInt32LE(e.extAttr ?? 0, 38);
    ch.writeUInt32LE(offset, 42);
    centrals.push(ch, cname);
    offset += 30 + name.length + packed.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

const keys = storedKeys;

/** Pseudo-random bytes that do not compress, made fast and without holding them (AES-CTR keystream). */
function* noise(total: number, chunk = 256 * 1024): Generator<Buffer> {
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zeros = Buffer.alloc(chunk);
  for (let left = total; left > 0; left -= chunk)
    yield cipher.update(zeros.subarray(0, Math.min(chunk, left)));
}

/** A zip streamed as it is written, never held: one stored and one deflated entry of noise, both with data descriptors. */
async function* bigZip(storedBytes: number, deflatedBytes: number): AsyncGenerator<Buffer> {
  let offset = 0;
  const central: Buffer[] = [];
  const entry = async function* (name: string, method: 0 | 8, size: number): AsyncGenerator<Buffer> {
    const start = offset;
    const lh = Buffer.alloc(30 + name.length);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(0x0808, 6);
    lh.writeUInt16LE(method, 8);
    lh.writeUInt16LE(name.length, 26);
    lh.write(name, 30);
    yield lh;
    offset += lh.length;
    let crc = 0,
      packed = 0;
    if (method === 0) {
      for (const b of noise(size)) {
        crc = zlib.crc32(b, crc);
        packed += b.length;
        yield b;
      }
    } else {
      const def = zlib.createDeflateRaw({ level: 1 });
      const src = Readable.from(noise(size));
      src.on('data', (b: Buffer) => {
        crc = zlib.crc32(b, crc);
      });
      for await (const b of src.pipe(def) as AsyncIterable<Buffer>) {
        packed += b.length;
        yield b;
      }
    }
    offset += packed;
    const dd = Buffer.alloc(16);
    dd.writeUInt32LE(0x08074b50, 0);
    dd.writeUInt32LE(crc >>> 0, 4);
    dd.writeUInt32LE(packed, 8);
    dd.writeUInt32LE(size, 12);
    yield dd;
    offset += 16;
    const ch = Buffer.alloc(46 + name.length);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x0808, 8);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc >>> 0, 16);
    ch.writeUInt32LE(packed, 20);
    ch.writeUInt32LE(size, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(start, 42);
    ch.write(name, 46);
    central.push(ch);
  };
  yield* entry('data/stored.bin', 0, storedBytes);
  yield* entry('data/deflated.bin', 8, deflatedBytes);
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(2, 8);
  eocd.writeUInt16LE(2, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  yield cd;
  yield eocd;
}

// First in the file, so that RSS is measured from a clean start (RSS rarely shrinks after earlier tests).
describe('a 200 MB content package', () => {
  let h: DbHandle;
  let store: ObjectStore;
  beforeAll(async () => {
    h = await createTestDb(TEST_DRIVERS.includes('pg') ? 'pg' : TEST_DRIVERS[0]!);
    store = await scratchStore('content');
  });
  afterAll(async () => {
    await h.close();
  });

  it('should stream through with modest memory', async () => {
    const org = await makeOrg(h.db);
    const ctx: ServiceCtx = {
      db: h.db,
      orgId: org.id,
      actor: { userId: null, tokenId: null, role: 'owner' },
    };
    const hash = createHash('sha256');
    let size = 0;
    // A request body as the API gets it: a web stream, pulled as it is read.
    const source = bigZip(120 * 1024 * 1024, 80 * 1024 * 1024);
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          const { done, value } = await source.next();
          if (done) {
            c.close();
            return;
          }
          hash.update(value);
          size += value.length;
          c.enqueue(value);
        },
      },
      { highWaterMark: 0 },
    );

    (globalThis as { gc?: () => void }).gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const t0 = performance.now();
    const p = await uploadContentPackage({
      ctx,
      store,
      input: { name: 'big', version: '1', body: stream, maxBytes: 256 * 1024 * 1024 },
    }).finally(() => clearInterval(sampler));
    const seconds = (performance.now() - t0) / 1000;
    const growth = (peak - before) / 1024 / 1024;
    console.log(
      `200 MB content package: ${(size / 1024 / 1024).toFixed(0)} MB in ${seconds.toFixed(1)} s (${(size / 1024 / 1024 / seconds).toFixed(0)} MB/s), RSS growth ${growth.toFixed(0)} MB`,
    );
    expect(p).toMatchObject({
      sha256: hash.digest('hex'),
      size,
      entries: 2,
      uncompressedSize: 200 * 1024 * 1024,
    });
    expect(size).toBeGreaterThan(200 * 1024 * 1024);
    expect(growth).toBeLessThan(150);
    expect(await keys(store, 'uploads/')).toEqual([]);
  }, 180_000);
});

describe('the streaming zip check', () => {
  async function inspect(bytes: Buffer, chunk = 7) {
    const z = createZipInspector({ maxEntries: 1000, maxUncompressedBytes: 10 * 1024 * 1024 });
    for (let i = 0; i < bytes.length; i += chunk) await z.push(bytes.subarray(i, i + chunk));
    return z.end();
  }

  it('should accept what archiver writes, chunk boundaries anywhere', async () => {
    const files = {
      'forms/a.json': '{"a":1}'.repeat(500),
      'concepts.csv': 'id,name\n1,x\n'.repeat(1000),
      'empty.txt': '',
    };
    for (const opts of [
      {},
      { streamed: true },
      { store: true },
      { streamed: true, store: true },
      { zip64: true },
      { zip64: true, streamed: true, store: true },
    ]) {
      const zip = await archiverZip(files, opts);
      for (const chunk of [1, 5, 4096, zip.length]) {
        expect(await inspect(zip, chunk)).toEqual({ entries: 4, files: 3, uncompressedSize: 3500 + 12_000 });
      }
    }
  });

  it('should find the end of stored data whose bytes contain a data descriptor signature', async () => {
    const tricky = Buffer.concat([
      Buffer.from('PK\x07\x08'),
      randomBytes(20),
      Buffer.from('PK\x07\x08\0\0\0\0\0\0\0\0'),
      randomBytes(100),
    ]);
    const zip = await archiverZip({ 'a.bin': tricky }, { streamed: true, store: true });
    expect(await inspect(zip, 3)).toMatchObject({ files: 1, uncompressedSize: tricky.length });
  });

  it.each([
    ['an encrypted entry', rawZip([{ name: 'a.txt', data: Buffer.from('x'), flags: 0x0801 }]), /encrypted/],
    ['an absolute path', rawZip([{ name: '/etc/passwd', data: Buffer.from('x') }]), /absolute path/],
    ['a Windows drive path', rawZip([{ name: 'C:\\evil.txt', data: Buffer.from('x') }]), /absolute path/],
    ['a backslash ".." path', rawZip([{ name: 'a\\..\\..\\evil', data: Buffer.from('x') }]), /"\.\."/],
    [
      'a bad CRC (deflated)',
      rawZip([{ name: 'a.txt', data: Buffer.from('hello hello hello'), method: 8, crc: 1234 }]),
      /CRC/,
    ],
    ['a bad CRC (stored)', rawZip([{ name: 'a.txt', data: Buffer.from('hello'), crc: 1234 }]), /CRC/],
    [
      'a table of contents naming other files than the entries',
      rawZip([{ name: 'a.txt', data: Buffer.from('x'), centralName: '../evil' }]),
      /\.\.|table of contents/,
    ],
    [
      'a symbolic link',
      rawZip([
        { name: 'link', data: Buffer.from('/etc/passwd'), madeBy: 0x0314, extAttr: (0o120777 << 16) >>> 0 },
      ]),
      /symbolic link/,
    ],
    [
      'a symbolic link made on macOS ("made by" 19, OS X)',
      rawZip([
        { name: 'link', data: Buffer.from('/etc/passwd'), madeBy: 0x1314, extAttr: (0o120755 << 16) >>> 0 },
      ]),
      /symbolic link/,
    ],
    [
      'the same name twice',
      rawZip([
        { name: 'a.txt', data: Buffer.from('x') },
        { name: 'a.txt', data: Buffer.from('y') },
      ]),
      /twice/,
    ],
    ['no files, only a folder', rawZip([{ name: 'forms/' }]), /no files/],
    ['no entries at all', rawZip([]), /empty/],
    [
      'an unsupported compression method',
      (() => {
        const z = rawZip([{ name: 'a.txt', data: Buffer.from('x') }]);
        z.writeUInt16LE(12, 8);
        return z;
      })(),
      /compression method 12/,
    ],
    [
      'bytes after the end',
      Buffer.concat([rawZip([{ name: 'a.txt', data: Buffer.from('x') }]), Buffer.from('junk')]),
      /after its end/,
    ],
  ])('should refuse %s', async (_what, zip, message) => {
    const err = await inspect(zip).catch((e: unknown) => e);
    expect(err).toMatchObject({
      kind: 'invalid',
      code: 'CONTENT_INVALID',
      message: expect.stringMatching(message),
    });
    expect((err as { details: unknown[] }).details).toEqual([
      expect.objectContaining({ path: 'body', message: expect.any(String) }),
    ]);
  });

  it('should refuse a zip bomb as it inflates, not by its headers', async () => {
    const zeros = Buffer.alloc(30 * 1024 * 1024);
    const zip = rawZip([{ name: 'bomb.bin', data: zeros, method: 8 }]);
    // Lie about the size in both headers: the check counts what inflating really gives.
    zip.writeUInt32LE(100, 22);
    expect(zip.length).toBeLessThan(100_000);
    await expect(inspect(zip, 64 * 1024)).rejects.toMatchObject({
      code: 'CONTENT_INVALID',
      message: expect.stringMatching(/unpacks to more than/),
    });
  });

  it('should refuse a truncated zip wherever it is cut', async () => {
    const zip = await archiverZip({ 'a.txt': 'hello '.repeat(1000), 'b.txt': 'world' }, { streamed: true });
    for (const cut of [3, 20, 60, Math.floor(zip.length / 2), zip.length - 30, zip.length - 1]) {
      await expect(inspect(zip.subarray(0, cut), 1000)).rejects.toMatchObject({
        kind: 'invalid',
        code: 'CONTENT_INVALID',
      });
    }
  });
});

describe.each(TEST_DRIVERS)('content packages on %s', (driver) => {
  let h: DbHandle;
  let store: ObjectStore;
  beforeAll(async () => {
    h = await createTestDb(driver);
    store = await scratchStore('content');
  });
  afterAll(async () => {
    await h.close();
  });

  async function orgCtx(): Promise<ServiceCtx> {
    const org = await makeOrg(h.db);
    const user = await makeUser(h.db, org.id, 'admin');
    return { db: h.db, orgId: org.id, actor: { userId: user.id, tokenId: null, role: 'admin' } };
  }

  async function nothingKept(ctx: ServiceCtx, bytes: Buffer) {
    expect(await keys(store, 'uploads/')).toEqual([]);
    expect(await has(store, sha(bytes))).toBe(false);
    expect(
      await h.db
        .select()
        .from(artifacts)
        .where(eq(artifacts.sha256, sha(bytes))),
    ).toEqual([]);
    expect(await h.db.select().from(contentPackages).where(eq(contentPackages.orgId, ctx.orgId))).toEqual([]);
  }

  describe('happy', () => {
    it('should store an uploaded zip at its sha256 and record the package, its artifact and an audit entry', async () => {
      const ctx = await orgCtx();
      const files = { 'forms/intake.json': '{"form":"intake"}', 'concepts.csv': 'id,name\n1,Malaria\n' };
      const zip = await archiverZip(files, { streamed: true });
      const p = await uploadContentPackage({
        ctx,
        store,
        input: { name: 'emr-content', version: '2024.06', body: byteStream(zip).stream, maxBytes: 1e6 },
      });
      expect(p).toMatchObject({
        name: 'emr-content',
        version: '2024.06',
        sha256: sha(zip),
        size: zip.length,
        entries: 3,
        uncompressedSize: Object.values(files).join('').length,
      });
      expect(await keys(store, `blobs/sha256/${sha(zip)}`)).toEqual([`blobs/sha256/${sha(zip)}`]);
      expect(
        await h.db
          .select()
          .from(artifacts)
          .where(eq(artifacts.sha256, sha(zip))),
      ).toEqual([
        expect.objectContaining({
          size: zip.length,
          mediaType: 'application/zip',
          key: `blobs/sha256/${sha(zip)}`,
        }),
      ]);
      const audit = await h.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.orgId, ctx.orgId), eq(auditLog.action, 'content_package.upload')));
      expect(audit).toEqual([
        expect.objectContaining({
          objectId: p.id,
          actorUserId: ctx.actor.userId,
          details: expect.objectContaining({ sha256: sha(zip), existed: false }),
        }),
      ]);
      expect(await getContentPackage(ctx, p.id)).toEqual(p);
      expect(await keys(store, 'uploads/')).toEqual([]);
    });

    it('should store the same bytes once, under another version or another organisation', async () => {
      const a = await orgCtx();
      const b = await orgCtx();
      const zip = await archiverZip({ 'a.txt': randomBytes(2000).toString('hex') });
      await uploadContentPackage({
        ctx: a,
        store,
        input: { name: 'pkg', version: '1', body: byteStream(zip).stream, maxBytes: 1e6 },
      });
      await uploadContentPackage({
        ctx: a,
        store,
        input: { name: 'pkg', version: '2', body: byteStream(zip).stream, maxBytes: 1e6 },
      });
      await uploadContentPackage({
        ctx: b,
        store,
        input: { name: 'pkg', version: '1', body: byteStream(zip).stream, maxBytes: 1e6 },
      });
      expect(await keys(store, `blobs/sha256/${sha(zip)}`)).toHaveLength(1);
      expect(
        await h.db
          .select()
          .from(artifacts)
          .where(eq(artifacts.sha256, sha(zip))),
      ).toHaveLength(1);
      const audits = await h.db.select().from(auditLog).where(eq(auditLog.action, 'content_package.upload'));
      const mine = audits
        .filter((e) => (e.details as { sha256?: string }).sha256 === sha(zip))
        .map((e) => (e.details as { existed: boolean }).existed);
      // Stored once, but only the organisation that uploaded it before is told so (no oracle across tenants).
      expect(mine).toEqual([false, true, false]);
    });

    it("should list the organisation's packages newest first, a page at a time", async () => {
      const ctx = await orgCtx();
      const other = await orgCtx();
      for (const v of ['1', '2', '3']) {
        const zip = await archiverZip({ 'v.txt': `version ${v} ${randomBytes(8).toString('hex')}` });
        await uploadContentPackage({
          ctx,
          store,
          input: { name: 'pkg', version: v, body: byteStream(zip).stream, maxBytes: 1e6 },
        });
      }
      await uploadContentPackage({
        ctx: other,
        store,
        input: {
          name: 'theirs',
          version: '1',
          body: byteStream(await archiverZip({ x: 'y' })).stream,
          maxBytes: 1e6,
        },
      });
      const first = await listContentPackages({ ctx, input: { limit: 2 } });
      expect(first.items.map((p) => p.version)).toEqual(['3', '2']);
      const second = await listContentPackages({ ctx, input: { limit: 2, cursor: first.nextCursor! } });
      expect(second.items.map((p) => p.version)).toEqual(['1']);
      expect(second.nextCursor).toBeNull();
      await expect(
        listContentPackages({ ctx, input: { limit: 2, cursor: 'nonsense' } }),
      ).rejects.toMatchObject({ kind: 'invalid' });
    });
  });

  describe('error', () => {
    it('should answer 409 for a name and version that exist, before reading the body', async () => {
      const ctx = await orgCtx();
      const zip = await archiverZip({ 'a.txt': 'a' });
      await uploadContentPackage({
        ctx,
        store,
        input: { name: 'pkg', version: '1.0', body: byteStream(zip).stream, maxBytes: 1e6 },
      });
      const again = byteStream(await archiverZip({ 'b.txt': 'b' }));
      await expect(
        uploadContentPackage({
          ctx,
          store,
          input: { name: 'pkg', version: '1.0', body: again.stream, maxBytes: 1e6 },
        }),
      ).rejects.toMatchObject({ kind: 'conflict', details: [expect.objectContaining({ path: 'version' })] });
      expect(again.state.pulled).toBe(0);
      expect(
        await h.db.select().from(contentPackages).where(eq(contentPackages.orgId, ctx.orgId)),
      ).toHaveLength(1);
    });

    it('should refuse a bad name or version before reading the body', async () => {
      const ctx = await orgCtx();
      const b = byteStream(Buffer.from('x'));
      await expect(
        uploadContentPackage({
          ctx,
          store,
          input: { name: 'Bad Name', version: '', body: b.stream, maxBytes: 1e6 },
        }),
      ).rejects.toMatchObject({
        kind: 'invalid',
        code: 'VALIDATION_FAILED',
        details: [expect.objectContaining({ path: 'name' }), expect.objectContaining({ path: 'version' })],
      });
      expect(b.state.pulled).toBe(0);
    });

    it.each([
      ['not a zip', () => Buffer.from('%PDF-1.7 this is not a zip at all '.repeat(100)), /not a zip/],
      [
        'a ../evil entry',
        () =>
          rawZip([
            { name: 'ok.txt', data: Buffer.from('fine') },
            { name: '../evil', data: Buffer.from('#!/bin/sh') },
          ]),
        /outside the package/,
      ],
      [
        'a corrupted entry',
        () => rawZip([{ name: 'a.txt', data: Buffer.from('hello world'), method: 8, crc: 7 }]),
        /CRC/,
      ],
    ])('should refuse %s with 400 CONTENT_INVALID and keep nothing', async (_what, make, message) => {
      const ctx = await orgCtx();
      const bytes = make();
      await expect(
        uploadContentPackage({
          ctx,
          store,
          input: { name: 'pkg', version: '1', body: byteStream(bytes).stream, maxBytes: 1e6 },
        }),
      ).rejects.toMatchObject({
        kind: 'invalid',
        code: 'CONTENT_INVALID',
        message: expect.stringMatching(message),
      });
      await nothingKept(ctx, bytes);
    });

    it('should refuse a truncated zip with 400 and keep nothing', async () => {
      const ctx = await orgCtx();
      const zip = await archiverZip({ 'a.txt': randomBytes(50_000).toString('base64') }, { streamed: true });
      const cut = zip.subarray(0, zip.length - 40);
      await expect(
        uploadContentPackage({
          ctx,
          store,
          input: { name: 'pkg', version: '1', body: byteStream(cut).stream, maxBytes: 1e6 },
        }),
      ).rejects.toMatchObject({
        kind: 'invalid',
        code: 'CONTENT_INVALID',
        message: expect.stringMatching(/cut short|end record/),
      });
      await nothingKept(ctx, cut);
    });

    it('should refuse an upload over the limit with 413, and leave no temporary object', async () => {
      const ctx = await orgCtx();
      const zip = await archiverZip({ 'big.bin': randomBytes(12 * 1024 * 1024) }, { store: true });
      const b = byteStream(zip);
      await expect(
        uploadContentPackage({
          ctx,
          store,
          input: { name: 'pkg', version: '1', body: b.stream, maxBytes: 10 * 1024 * 1024 },
        }),
      ).rejects.toMatchObject({ kind: 'too-large', code: 'BODY_TOO_LARGE' });
      expect(b.state.pulled).toBeLessThan(zip.length);
      await nothingKept(ctx, zip);
    });
  });

  describe('security', () => {
    it("should not show one organisation's package to another (404)", async () => {
      const owner = await orgCtx();
      const stranger = await orgCtx();
      const p = await uploadContentPackage({
        ctx: owner,
        store,
        input: {
          name: 'private',
          version: '1',
          body: byteStream(await archiverZip({ a: 'secret' })).stream,
          maxBytes: 1e6,
        },
      });
      await expect(getContentPackage(stranger, p.id)).rejects.toMatchObject({ kind: 'not-found' });
      await expect(getContentPackage(stranger, 'not-a-uuid')).rejects.toMatchObject({ kind: 'not-found' });
      expect((await listContentPackages({ ctx: stranger, input: { limit: 50 } })).items).toEqual([]);
    });
  });
});
