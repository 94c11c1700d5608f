import { Buffer } from 'node:buffer';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import zlib from 'node:zlib';
import { and, desc, eq } from 'drizzle-orm';
import { contentPackages } from '../../db/schema/index.ts';
import { putStream, recordArtifact, type BlobStore } from '../../lib/blob-store.ts';
import { decodeCursor } from '../../lib/cursor.ts';
import { afterCursor, keysetPage, timeCursor } from '../keyset.ts';
import {
  AppError,
  ConflictError,
  NotFoundError,
  ValidationError,
  fieldIssue,
  isUniqueViolation,
} from '../../lib/errors.ts';
import { recordAudit } from '../audit/record.ts';
import { heldBlobs, recordHolders } from '../blobs/holders.ts';
import { inTransaction, type ServiceCtx } from '../context.ts';

/**
 * Content packages: a zip of site content (forms, concepts, configuration) that a release carries
 * into every bundle. The upload is checked as it streams to the object store — never unpacked to
 * disk — and refused whole when anything is wrong with it.
 */

export const CONTENT_MEDIA_TYPE = 'application/zip';

export interface ContentLimits {
  /** Entries (files and folders) in one package. */
  maxEntries: number;
  /** Total unpacked size, whatever the upload limit. */
  maxUncompressedBytes: number;
  /** Total unpacked size at most this many times the upload limit (zip bombs). */
  maxExpansion: number;
}

export const CONTENT_LIMITS: ContentLimits = {
  maxEntries: 100_000,
  maxUncompressedBytes: 2 * 1024 ** 3,
  maxExpansion: 20,
};

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

export interface UploadContentPackageInput {
  name: string;
  version: string;
  /** The zip itself, streamed. */
  body: ReadableStream<Uint8Array> | Readable;
  /** Refused with 413 BODY_TOO_LARGE past this many bytes. */
  maxBytes: number;
}

export type ContentPackageRow = typeof contentPackages.$inferSelect;

export function toContentPackageView(p: ContentPackageRow) {
  return {
    id: p.id,
    name: p.name,
    version: p.version,
    sha256: p.sha256,
    size: p.size,
    entries: p.entries,
    uncompressedSize: p.uncompressedSize,
    createdBy: p.createdBy,
    createdAt: p.createdAt.toISOString(),
  };
}
export type ContentPackageView = ReturnType<typeof toContentPackageView>;

function conflict(name: string, version: string, id?: string) {
  return new ConflictError(
    `Content package ${name} ${version} already exists; upload it under a new version.`,
    fieldIssue('version', 'Already used for this package name.', id ? { contentPackageId: id } : {}),
  );
}

/**
 * Streams a zip into the object store (content-addressed, stored once whoever uploads the same
 * bytes) while checking it, then records the package. Name and version are checked, and a clash
 * refused (409), before a byte of the body is read. When the body is refused (400 CONTENT_INVALID,
 * 413 BODY_TOO_LARGE) nothing is kept: no rows, no temporary object, no blob.
 */
export async function uploadContentPackage({
  ctx,
  store,
  input,
  limits = CONTENT_LIMITS,
}: {
  ctx: ServiceCtx;
  store: BlobStore;
  input: UploadContentPackageInput;
  limits?: ContentLimits;
}): Promise<ContentPackageView> {
  const name = input.name.trim();
  const version = input.version.trim();
  const issues = [
    ...(NAME.test(name) && name.length <= 128
      ? []
      : fieldIssue(
          'name',
          'Lowercase letters, digits, ".", "_" and "-", starting with a letter or digit (at most 128).',
        )),
    ...(version.length >= 1 && version.length <= 64 && !/[\u0000-\u001f\u007f]/.test(version)
      ? []
      : fieldIssue('version', 'Between 1 and 64 characters, no control characters.')),
  ];
  if (issues.length) throw new ValidationError('Fix the package name or version.', issues);

  const [clash] = await ctx.db
    .select({ id: contentPackages.id })
    .from(contentPackages)
    .where(
      and(
        eq(contentPackages.orgId, ctx.orgId),
        eq(contentPackages.name, name),
        eq(contentPackages.version, version),
      ),
    )
    .limit(1);
  if (clash) throw conflict(name, version, clash.id);

  const inspector = createZipInspector({
    maxEntries: limits.maxEntries,
    maxUncompressedBytes: Math.min(limits.maxUncompressedBytes, limits.maxExpansion * input.maxBytes),
  });
  let summary: ZipSummary | undefined;
  const blob = await putStream(store, input.body, {
    mediaType: CONTENT_MEDIA_TYPE,
    maxBytes: input.maxBytes,
    inspect: (chunk) => inspector.push(chunk),
    verify: async () => {
      summary = await inspector.end();
    },
  }).catch((err: unknown) => {
    inspector.abort();
    throw err;
  });

  try {
    return await inTransaction(ctx, async (ctx) => {
      // `existed` is about this organisation only: whether another one uploaded the same bytes must not show.
      const existed = (await heldBlobs(ctx.db, ctx.orgId, [blob.sha256])).size > 0;
      await recordArtifact(ctx.db, {
        sha256: blob.sha256,
        size: blob.size,
        mediaType: CONTENT_MEDIA_TYPE,
        key: blob.key,
      });
      await recordHolders(ctx.db, [{ orgId: ctx.orgId, digest: blob.sha256 }]);
      const [row] = await ctx.db
        .insert(contentPackages)
        .values({
          orgId: ctx.orgId,
          name,
          version,
          sha256: blob.sha256,
          size: blob.size,
          entries: summary!.entries,
          uncompressedSize: summary!.uncompressedSize,
          createdBy: ctx.actor.userId,
        })
        .returning();
      await recordAudit(ctx, {
        action: 'content_package.upload',
        objectType: 'content_package',
        objectId: row!.id,
        details: { name, version, sha256: blob.sha256, size: blob.size, entries: summary!.entries, existed },
      });
      return toContentPackageView(row!);
    });
  } catch (err) {
    // The blob stays: another upload of the same bytes may be recording it right now, and a retry
    // finds it (`existed`). Only a blob with no artifact row can be an orphan; a sweep may reclaim those.
    if (isUniqueViolation(err)) throw conflict(name, version);
    throw err;
  }
}

export async function listContentPackages({
  ctx,
  input,
}: {
  ctx: ServiceCtx;
  input: { limit: number; cursor?: string };
}) {
  const limit = Math.min(Math.max(Math.trunc(input.limit) || 50, 1), 200);
  const after = input.cursor ? decodeCursor(input.cursor) : null;
  const { rows, nextCursor } = await keysetPage(
    limit,
    (take) =>
      ctx.db
        .select()
        .from(contentPackages)
        .where(
          and(
            eq(contentPackages.orgId, ctx.orgId),
            afterCursor(after, contentPackages.createdAt, contentPackages.id, 'desc'),
          ),
        )
        .orderBy(desc(contentPackages.createdAt), desc(contentPackages.id))
        .limit(take),
    (last) => timeCursor(last.createdAt, last.id),
  );
  return { items: rows.map(toContentPackageView), nextCursor };
}

/** One content package of the organisation; 404 for any other's. */
export async function getContentPackage(ctx: ServiceCtx, id: string): Promise<ContentPackageView> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw new NotFoundError('content package', id);
  const [row] = await ctx.db
    .select()
    .from(contentPackages)
    .where(and(eq(contentPackages.orgId, ctx.orgId), eq(contentPackages.id, id)))
    .limit(1);
  if (!row) throw new NotFoundError('content package', id);
  return toContentPackageView(row);
}

// ---------------------------------------------------------------------------------------------
// The streaming zip check. It reads the archive front to back as it arrives: every local entry is
// inflated (output counted and CRC-checked, then dropped), the central directory must describe
// exactly the entries seen, and the end records must agree. What an extractor reads from the
// central directory is thus what was checked here.

export interface ZipSummary {
  /** Files and folders. */
  entries: number;
  files: number;
  uncompressedSize: number;
}

export interface ZipInspector {
  /** The next bytes of the archive; resolves when they may be followed by more (backpressure), rejects when the archive is bad. */
  push(chunk: Uint8Array): Promise<void>;
  /** The archive is complete; resolves with its summary or rejects (400 CONTENT_INVALID). */
  end(): Promise<ZipSummary>;
  /** Stops checking (the upload failed elsewhere); frees the inflater. */
  abort(): void;
}

const SIG = {
  local: 0x04034b50,
  central: 0x02014b50,
  descriptor: 0x08074b50,
  eocd: 0x06054b50,
  zip64Eocd: 0x06064b50,
  zip64Locator: 0x07064b50,
  signature: 0x05054b50,
  archiveExtra: 0x08064b50,
};
const DESCRIPTOR_SIG = Buffer.from([0x50, 0x4b, 0x07, 0x08]);
const U32_MAX = 0xffffffff;

export function invalidContent(message: string, entry?: string): AppError {
  return new AppError(
    400,
    'CONTENT_INVALID',
    message,
    fieldIssue('body', message, entry === undefined ? {} : { entry }),
  );
}

const HIGH_WATER = 4 * 1024 * 1024;
const MAX_NAME_BYTES = 4096;
const MAX_NAMES_BYTES = 16 * 1024 * 1024;

/** Bytes arriving from the upload, read by the parser at its own pace; the writer waits while much is unread. */
class ByteQueue {
  private chunks: Buffer[] = [];
  available = 0;
  /** Offset in the archive of the first unread byte. */
  position = 0;
  private ended = false;
  private error: unknown = null;
  private readerWake: (() => void) | null = null;
  private writerWake: (() => void) | null = null;

  async push(chunk: Uint8Array) {
    if (this.error) throw this.error;
    if (chunk.byteLength === 0) return;
    if (this.ended) throw new Error('push after end');
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.available += chunk.byteLength;
    this.wakeReader();
    while (this.available > HIGH_WATER && !this.error)
      await new Promise<void>((r) => {
        this.writerWake = r;
      });
    if (this.error) throw this.error;
  }

  end() {
    this.ended = true;
    this.wakeReader();
  }

  fail(err: unknown) {
    this.error ??= err;
    this.wakeReader();
    this.wakeWriter();
  }

  private wakeReader() {
    const w = this.readerWake;
    this.readerWake = null;
    w?.();
  }
  private wakeWriter() {
    const w = this.writerWake;
    this.writerWake = null;
    w?.();
  }

  /** Waits until `n` bytes are unread or the archive ended; false when it ended first. */
  async fill(n: number): Promise<boolean> {
    while (this.available < n && !this.ended && !this.error)
      await new Promise<void>((r) => {
        this.readerWake = r;
      });
    if (this.error) throw this.error;
    return this.available >= n;
  }

  /** The next `n` unread bytes, contiguous (n ≤ available). */
  peek(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    for (const c of this.chunks) {
      const piece = c.subarray(0, n - at);
      piece.copy(out, at);
      at += piece.length;
      if (at === n) break;
    }
    return out;
  }

  /** Up to `max` unread bytes without copying (at least one byte when any is unread). */
  some(max: number): Buffer {
    return this.chunks[0]!.subarray(0, max);
  }

  skip(n: number) {
    this.available -= n;
    this.position += n;
    while (n > 0) {
      const first = this.chunks[0]!;
      if (first.length <= n) {
        this.chunks.shift();
        n -= first.length;
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
    if (this.available <= HIGH_WATER / 2) this.wakeWriter();
  }

  take(n: number): Buffer {
    const b = Buffer.from(this.peek(n));
    this.skip(n);
    return b;
  }
}

interface SeenEntry {
  offset: number;
  name: string;
  crc: number;
  csize: number;
  usize: number;
  method: number;
}

const crc32 = (data: Uint8Array, prev: number) => zlib.crc32(data, prev);
const quote = (name: string) => JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);

/** `name` as a path inside the package: relative, no `..`, no drive letters; its trouble, or null. */
function pathProblem(name: string): string | null {
  if (name === '') return 'has an empty name';
  if (name.includes('\0')) return 'has a NUL character in its name';
  const p = name.replace(/\\/g, '/');
  if (p.startsWith('/') || /^[a-zA-Z]:/.test(p)) return 'has an absolute path';
  if (p.split('/').includes('..')) return 'has a ".." segment that points outside the package';
  return null;
}

function decodeName(raw: Buffer, utf8: boolean): string {
  if (!utf8) return raw.toString('latin1');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw invalidContent('An entry name is not valid UTF-8 although the zip says it is.');
  }
}

/** Extra fields: the ZIP64 sizes (in order, present only where the header says 0xFFFFFFFF) and Info-ZIP's Unicode path. */
function parseExtra(extra: Buffer, need: { usize: boolean; csize: boolean; offset: boolean }, entry: string) {
  let usize: number | undefined,
    csize: number | undefined,
    offset: number | undefined,
    unicodePath: string | undefined;
  let zip64 = false;
  for (let p = 0; p + 4 <= extra.length;) {
    const id = extra.readUInt16LE(p),
      len = extra.readUInt16LE(p + 2);
    const body = extra.subarray(p + 4, p + 4 + len);
    if (body.length < len) throw invalidContent(`Entry ${quote(entry)} has a damaged extra field.`, entry);
    if (id === 0x0001) {
      zip64 = true;
      let q = 0;
      const u64 = () => {
        if (q + 8 > body.length)
          throw invalidContent(`Entry ${quote(entry)} has a damaged ZIP64 field.`, entry);
        const v = Number(body.readBigUInt64LE(q));
        q += 8;
        return v;
      };
      if (need.usize) usize = u64();
      if (need.csize) csize = u64();
      if (need.offset) offset = u64();
    } else if (id === 0x7075 && len >= 5) {
      unicodePath = body.subarray(5).toString('utf8');
    }
    p += 4 + len;
  }
  if (
    (need.usize && usize === undefined) ||
    (need.csize && csize === undefined) ||
    (need.offset && offset === undefined)
  ) {
    throw invalidContent(
      `Entry ${quote(entry)} says its sizes are in a ZIP64 field that is not there.`,
      entry,
    );
  }
  return { usize, csize, offset, unicodePath, zip64 };
}

/**
 * A streaming validator for zip archives; feed it the bytes in order, then `end()`.
 * It holds at most a few MB of the archive and one entry name per entry.
 */
export function createZipInspector(limits: {
  maxEntries: number;
  maxUncompressedBytes: number;
}): ZipInspector {
  const q = new ByteQueue();
  let inflater: zlib.InflateRaw | null = null;
  const done = parse().then(
    (summary) => summary,
    (err: unknown) => {
      q.fail(err);
      inflater?.destroy();
      throw err;
    },
  );
  done.catch(() => undefined);

  let total = 0;
  const countOut = (n: number, entry: string) => {
    total += n;
    if (total > limits.maxUncompressedBytes) {
      throw invalidContent(
        `The zip unpacks to more than ${limits.maxUncompressedBytes} bytes; that is more than a content package may hold (or a zip bomb).`,
        entry,
      );
    }
  };

  async function u32(): Promise<number | null> {
    if (!(await q.fill(4))) return null;
    return q.take(4).readUInt32LE(0);
  }

  async function need(n: number, what: string): Promise<Buffer> {
    if (!(await q.fill(n)))
      throw invalidContent(`The zip is cut short (in ${what}); upload the whole file again.`);
    return q.take(n);
  }

  /** Inflates one entry's deflate stream: exactly `csize` bytes if known, else up to where the stream ends. */
  async function inflate(
    entry: string,
    csize: number | null,
  ): Promise<{ crc: number; usize: number; csize: number }> {
    const inf = zlib.createInflateRaw();
    inflater = inf;
    let crc = 0,
      usize = 0,
      consumed = 0;
    let failure: unknown = null;
    const failed = new Promise<never>((_, reject) => {
      inf.on('error', (e) => {
        failure ??= e;
        reject(e);
      });
    });
    failed.catch(() => undefined);
    inf.on('data', (d: Buffer) => {
      try {
        usize += d.length;
        crc = crc32(d, crc);
        countOut(d.length, entry);
      } catch (e) {
        failure = e;
        inf.destroy(e as Error);
      }
    });
    try {
      for (;;) {
        if (csize !== null && consumed === csize) break;
        if (!(await q.fill(1)))
          throw invalidContent(
            `The zip is cut short (inside ${quote(entry)}); upload the whole file again.`,
            entry,
          );
        const piece = q.some(csize === null ? 1024 * 1024 : Math.min(csize - consumed, 1024 * 1024));
        const before = inf.bytesWritten;
        await Promise.race([new Promise<void>((resolve) => inf.write(piece, () => resolve())), failed]);
        if (failure) throw failure;
        const used = inf.bytesWritten - before;
        q.skip(used);
        consumed += used;
        if (used < piece.length) {
          if (csize !== null)
            throw invalidContent(
              `Entry ${quote(entry)} is damaged: its data ends before its stated size.`,
              entry,
            );
          break;
        }
      }
      inf.end();
      // `finished` also settles for a stream that already ended while the last piece was written.
      await Promise.race([finished(inf), failed]);
      if (failure) throw failure;
      return { crc: crc >>> 0, usize, csize: consumed };
    } catch (err) {
      inf.destroy();
      if (err instanceof AppError) throw err;
      throw invalidContent(
        `Entry ${quote(entry)} is damaged (${(err as Error).message}); the zip is corrupted.`,
        entry,
      );
    } finally {
      inflater = null;
    }
  }

  /** Stored data of unknown length: up to the data descriptor whose CRC and sizes match the bytes before it. */
  async function scanStored(entry: string, zip64: boolean): Promise<{ crc: number; size: number }> {
    const descLen = zip64 ? 24 : 16;
    let crc = 0,
      size = 0;
    const consume = (n: number) => {
      if (n === 0) return;
      const b = q.peek(n);
      crc = crc32(b, crc);
      size += n;
      countOut(n, entry);
      q.skip(n);
    };
    for (;;) {
      if (!(await q.fill(descLen)))
        throw invalidContent(
          `The zip is cut short (inside ${quote(entry)}); upload the whole file again.`,
          entry,
        );
      const window = q.peek(Math.min(q.available, 1024 * 1024));
      const at = window.indexOf(DESCRIPTOR_SIG);
      if (at === -1) {
        consume(window.length - 3);
        continue;
      }
      consume(at);
      if (!(await q.fill(descLen)))
        throw invalidContent(
          `The zip is cut short (inside ${quote(entry)}); upload the whole file again.`,
          entry,
        );
      const d = q.peek(descLen);
      const dcrc = d.readUInt32LE(4);
      const dc = zip64 ? Number(d.readBigUInt64LE(8)) : d.readUInt32LE(8);
      const du = zip64 ? Number(d.readBigUInt64LE(16)) : d.readUInt32LE(12);
      if (dcrc === crc >>> 0 && dc === size && du === size) {
        q.skip(descLen);
        return { crc: crc >>> 0, size };
      }
      consume(1);
    }
  }

  async function parse(): Promise<ZipSummary> {
    const seen: SeenEntry[] = [];
    const names = new Set<string>();
    let files = 0;
    let nameBytes = 0;

    let offset = q.position;
    let sig = await u32();
    if (sig === null) throw invalidContent('The file is empty; upload a zip file.');
    if (sig === SIG.eocd)
      throw invalidContent('The zip is empty; a content package must contain at least one file.');
    if (sig !== SIG.local) throw invalidContent('This is not a zip file (a content package is a .zip).');

    while (sig === SIG.local) {
      if (seen.length >= limits.maxEntries)
        throw invalidContent(`The zip has more than ${limits.maxEntries} entries.`);
      const h = await need(26, 'an entry header');
      const flags = h.readUInt16LE(2),
        method = h.readUInt16LE(4);
      let crc = h.readUInt32LE(10),
        csize = h.readUInt32LE(14),
        usize = h.readUInt32LE(18);
      const nameLen = h.readUInt16LE(22),
        extraLen = h.readUInt16LE(24);
      // Names are kept (duplicates, the table of contents check): bounded so that memory is.
      nameBytes += nameLen;
      if (nameLen > MAX_NAME_BYTES || nameBytes > MAX_NAMES_BYTES)
        throw invalidContent(
          `The zip's entry names are too long (at most ${MAX_NAME_BYTES} bytes each, ${MAX_NAMES_BYTES} in all).`,
        );
      const rawName = await need(nameLen, 'an entry name');
      const extra = await need(extraLen, 'an entry header');
      const name = decodeName(rawName, (flags & 0x0800) !== 0);

      if (flags & 0x0001 || flags & 0x0040 || method === 99)
        throw invalidContent(
          `Entry ${quote(name)} is encrypted; upload the package without a password.`,
          name,
        );
      const x = parseExtra(
        extra,
        { usize: usize === U32_MAX, csize: csize === U32_MAX, offset: false },
        name,
      );
      if (x.usize !== undefined) usize = x.usize;
      if (x.csize !== undefined) csize = x.csize;
      for (const n of [name, x.unicodePath]) {
        const problem = n === undefined ? null : pathProblem(n);
        if (problem)
          throw invalidContent(
            `Entry ${quote(n!)} ${problem}; the package must only hold relative paths inside it.`,
            n,
          );
      }
      if (names.has(name)) throw invalidContent(`The zip holds ${quote(name)} twice.`, name);
      names.add(name);
      if (method !== 0 && method !== 8)
        throw invalidContent(
          `Entry ${quote(name)} uses compression method ${method}; only stored and deflate are supported (any common zip tool's default).`,
          name,
        );

      const hasDescriptor = (flags & 0x0008) !== 0;
      // With a data descriptor the header's sizes may be zero; the real ones follow the data.
      if (!hasDescriptor && usize > limits.maxUncompressedBytes) countOut(usize, name);
      let actual: { crc: number; csize: number; usize: number };
      if (method === 8) {
        actual = await inflate(name, hasDescriptor ? null : csize);
      } else if (!hasDescriptor) {
        if (csize !== usize)
          throw invalidContent(`Entry ${quote(name)} is damaged: stored, yet its sizes differ.`, name);
        let c = 0;
        for (let left = csize; left > 0;) {
          if (!(await q.fill(1)))
            throw invalidContent(
              `The zip is cut short (inside ${quote(name)}); upload the whole file again.`,
              name,
            );
          const piece = q.some(Math.min(left, 1024 * 1024));
          c = crc32(piece, c);
          countOut(piece.length, name);
          q.skip(piece.length);
          left -= piece.length;
        }
        actual = { crc: c >>> 0, csize, usize };
      } else {
        const s = await scanStored(name, x.zip64);
        actual = { crc: s.crc, csize: s.size, usize: s.size };
        crc = s.crc;
        csize = s.size;
        usize = s.size;
      }
      if (hasDescriptor && method === 8) {
        if (!(await q.fill(4)))
          throw invalidContent(
            `The zip is cut short (after ${quote(name)}); upload the whole file again.`,
            name,
          );
        if (q.peek(4).readUInt32LE(0) === SIG.descriptor) q.skip(4);
        const d = await need(x.zip64 ? 20 : 12, 'a data descriptor');
        crc = d.readUInt32LE(0);
        csize = x.zip64 ? Number(d.readBigUInt64LE(4)) : d.readUInt32LE(4);
        usize = x.zip64 ? Number(d.readBigUInt64LE(12)) : d.readUInt32LE(8);
      }
      if (actual.crc !== crc >>> 0)
        throw invalidContent(`Entry ${quote(name)} is damaged (CRC mismatch); the zip is corrupted.`, name);
      if (actual.csize !== csize || actual.usize !== usize)
        throw invalidContent(
          `Entry ${quote(name)} is damaged (its sizes do not match its data); the zip is corrupted.`,
          name,
        );
      seen.push({ offset, name, crc: crc >>> 0, csize, usize, method });
      if (!name.endsWith('/') && !name.endsWith('\\')) files++;

      offset = q.position;
      sig = await u32();
      if (sig === null)
        throw invalidContent(
          'The zip is cut short (its table of contents is missing); upload the whole file again.',
        );
    }

    if (sig === SIG.archiveExtra)
      throw invalidContent(
        'The zip uses central-directory encryption; upload the package without a password.',
      );
    if (sig !== SIG.central)
      throw invalidContent('The zip is corrupted: unexpected data after the last entry.');

    const cdStart = offset;
    let cdCount = 0;
    while (sig === SIG.central) {
      const h = await need(42, 'the table of contents');
      const flags = h.readUInt16LE(4),
        method = h.readUInt16LE(6);
      const crc = h.readUInt32LE(12);
      let csize = h.readUInt32LE(16),
        usize = h.readUInt32LE(20);
      const nameLen = h.readUInt16LE(24),
        extraLen = h.readUInt16LE(26),
        commentLen = h.readUInt16LE(28);
      const disk = h.readUInt16LE(30),
        extAttr = h.readUInt32LE(34);
      let localOffset = h.readUInt32LE(38);
      const name = decodeName(await need(nameLen, 'the table of contents'), (flags & 0x0800) !== 0);
      const x = parseExtra(
        await need(extraLen, 'the table of contents'),
        { usize: usize === U32_MAX, csize: csize === U32_MAX, offset: localOffset === U32_MAX },
        name,
      );
      await need(commentLen, 'the table of contents');
      if (x.usize !== undefined) usize = x.usize;
      if (x.csize !== undefined) csize = x.csize;
      if (x.offset !== undefined) localOffset = x.offset;
      if (x.unicodePath !== undefined && pathProblem(x.unicodePath)) {
        throw invalidContent(
          `Entry ${quote(x.unicodePath)} ${pathProblem(x.unicodePath)}; the package must only hold relative paths inside it.`,
          x.unicodePath,
        );
      }
      if (flags & 0x0001)
        throw invalidContent(
          `Entry ${quote(name)} is encrypted; upload the package without a password.`,
          name,
        );
      if (disk !== 0 && disk !== 0xffff)
        throw invalidContent('This is a split (multi-part) zip; upload it as one file.');
      // A symlink mode, whatever system the zip says made it (Unix 3, macOS 19, …): a link could point an extractor outside the package.
      if (((extAttr >>> 16) & 0o170000) === 0o120000)
        throw invalidContent(
          `Entry ${quote(name)} is a symbolic link; a content package holds plain files only.`,
          name,
        );
      const local = seen[cdCount];
      if (
        !local ||
        local.name !== name ||
        local.offset !== localOffset ||
        local.crc !== crc ||
        local.csize !== csize ||
        local.usize !== usize ||
        local.method !== method
      ) {
        throw invalidContent(
          `The zip is corrupted: its table of contents does not match its entries (at ${quote(name)}).`,
          name,
        );
      }
      cdCount++;
      sig = await u32();
      if (sig === null)
        throw invalidContent('The zip is cut short (in the table of contents); upload the whole file again.');
    }
    if (cdCount !== seen.length)
      throw invalidContent('The zip is corrupted: its table of contents lists fewer entries than it holds.');
    const cdSize = q.position - 4 - cdStart;

    if (sig === SIG.signature) {
      const len = (await need(2, 'the table of contents')).readUInt16LE(0);
      await need(len, 'the table of contents');
      sig = await u32();
    }
    let zip64: { count: number; cdSize: number; cdOffset: number } | null = null;
    if (sig === SIG.zip64Eocd) {
      const size = Number((await need(8, 'the end record')).readBigUInt64LE(0));
      if (size < 44 || size > 65_536) throw invalidContent('The zip is corrupted: bad ZIP64 end record.');
      const r = await need(size, 'the end record');
      if (r.readUInt32LE(4) !== 0 || r.readUInt32LE(8) !== 0)
        throw invalidContent('This is a split (multi-part) zip; upload it as one file.');
      zip64 = {
        count: Number(r.readBigUInt64LE(20)),
        cdSize: Number(r.readBigUInt64LE(28)),
        cdOffset: Number(r.readBigUInt64LE(36)),
      };
      sig = await u32();
      if (sig !== SIG.zip64Locator)
        throw invalidContent('The zip is corrupted: the ZIP64 end record has no locator.');
      await need(16, 'the end record');
      sig = await u32();
    }
    if (sig !== SIG.eocd)
      throw invalidContent('The zip is corrupted or cut short: its end record is missing.');
    const e = await need(18, 'the end record');
    const disk = e.readUInt16LE(0),
      count = e.readUInt16LE(6),
      size32 = e.readUInt32LE(8),
      offset32 = e.readUInt32LE(12);
    await need(e.readUInt16LE(16), 'the zip comment');
    if (disk !== 0 && disk !== 0xffff)
      throw invalidContent('This is a split (multi-part) zip; upload it as one file.');
    const total = count === 0xffff && zip64 ? zip64.count : count;
    const dirSize = size32 === U32_MAX && zip64 ? zip64.cdSize : size32;
    const dirOffset = offset32 === U32_MAX && zip64 ? zip64.cdOffset : offset32;
    if (total !== seen.length || dirSize !== cdSize || dirOffset !== cdStart) {
      throw invalidContent('The zip is corrupted: its end record does not match its table of contents.');
    }
    if (await q.fill(1)) throw invalidContent('The zip is corrupted: there is data after its end.');
    if (files === 0)
      throw invalidContent('The zip holds no files; a content package must contain at least one file.');
    return { entries: seen.length, files, uncompressedSize: seen.reduce((a, s) => a + s.usize, 0) };
  }

  return {
    push: (chunk) => q.push(chunk),
    end: () => {
      q.end();
      return done;
    },
    abort: () => {
      q.fail(new Error('aborted'));
      inflater?.destroy();
    },
  };
}
