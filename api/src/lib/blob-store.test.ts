import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { artifacts } from '../db/schema/index.ts';
import type { DbHandle } from '../db/types.ts';
import { createTestDb, TEST_DRIVERS } from '../test/db.ts';
import { scratchStore, storedKeys } from '../test/store.ts';
import { byteStream } from '../test/byte-stream.ts';
import { AppError } from './errors.ts';
import type { ObjectStore } from './object-store.ts';
import { blobKey } from '@outpost/bundler';
import { get, has, putStream, recordArtifact } from './blob-store.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const keys = storedKeys;

async function readAll(s: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of s as unknown as AsyncIterable<Uint8Array>) parts.push(p);
  return Buffer.concat(parts);
}

describe('blob store', () => {
  let store: ObjectStore;
  beforeAll(async () => {
    store = await scratchStore('blobs');
  });

  it('should store a stream at its sha256 address and say it is new', async () => {
    const data = randomBytes(300_000);
    const r = await putStream(store, byteStream(data).stream, {
      mediaType: 'application/octet-stream',
      maxBytes: 1e6,
    });
    expect(r).toEqual({
      sha256: sha(data),
      size: data.length,
      key: `blobs/sha256/${sha(data)}`,
      existed: false,
    });
    expect(await has(store, r.sha256)).toBe(true);
    const back = await get(store, r.sha256);
    expect(back.contentLength).toBe(data.length);
    expect(sha(await readAll(back.body))).toBe(r.sha256);
    expect(await keys(store, 'uploads/')).toEqual([]);
  });

  it('should store the same bytes once and say they existed', async () => {
    const data = randomBytes(50_000);
    const first = await putStream(store, Readable.from([data.subarray(0, 1000), data.subarray(1000)]), {
      mediaType: 'application/octet-stream',
      maxBytes: 1e6,
    });
    const again = await putStream(store, byteStream(data, 777).stream, {
      mediaType: 'application/octet-stream',
      maxBytes: 1e6,
    });
    expect(first.existed).toBe(false);
    expect(again).toEqual({ ...first, existed: true });
    expect(await keys(store, first.key)).toEqual([first.key]);
    expect(await keys(store, 'uploads/')).toEqual([]);
  });

  it('should store a multipart upload (several parts) byte for byte', async () => {
    const data = randomBytes(12 * 1024 * 1024 + 123);
    const r = await putStream(store, byteStream(data).stream, {
      mediaType: 'application/octet-stream',
      maxBytes: 20e6,
      partSize: 5 * 1024 * 1024,
    });
    expect(r.size).toBe(data.length);
    expect(sha(await readAll((await get(store, r.sha256)).body))).toBe(sha(data));
  });

  it('should refuse a stream over the limit with 413, stop reading it and keep nothing', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const { stream, state } = byteStream(data);
    const err = await putStream(store, stream, {
      mediaType: 'application/octet-stream',
      maxBytes: 1024 * 1024,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ kind: 'too-large', code: 'BODY_TOO_LARGE' });
    expect(state.cancelled).toBe(true);
    expect(state.pulled).toBeLessThan(data.length);
    expect(await has(store, sha(data))).toBe(false);
    expect(await keys(store, 'uploads/')).toEqual([]);
  });

  it('should keep nothing when the limit is passed after parts were already uploaded', async () => {
    const data = randomBytes(16 * 1024 * 1024);
    const err = await putStream(store, byteStream(data).stream, {
      mediaType: 'application/octet-stream',
      maxBytes: 12 * 1024 * 1024,
      partSize: 5 * 1024 * 1024,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'too-large' });
    expect(await keys(store, 'uploads/')).toEqual([]);
    expect(await keys(store, 'blobs/')).not.toContain(blobKey(`sha256:${sha(data)}`));
  });

  it('should keep nothing when inspect or verify refuses the bytes', async () => {
    const data = randomBytes(100_000);
    const refused = new Error('not what we want');
    const e1 = await putStream(store, byteStream(data).stream, {
      mediaType: 'x/y',
      maxBytes: 1e6,
      inspect: () => {
        throw refused;
      },
    }).catch((e: unknown) => e);
    expect(e1).toBe(refused);
    const e2 = await putStream(store, byteStream(data).stream, {
      mediaType: 'x/y',
      maxBytes: 1e6,
      verify: async () => {
        throw refused;
      },
    }).catch((e: unknown) => e);
    expect(e2).toBe(refused);
    expect(await has(store, sha(data))).toBe(false);
    expect(await keys(store, 'uploads/')).toEqual([]);
  });

  it('should hand verify the digest and size before the blob gets its address', async () => {
    const data = randomBytes(1000);
    let seen: unknown;
    const r = await putStream(store, byteStream(data).stream, {
      mediaType: 'x/y',
      maxBytes: 1e6,
      verify: async (b) => {
        seen = b;
        expect(await has(store, b.sha256)).toBe(false);
      },
    });
    expect(seen).toEqual({ sha256: r.sha256, size: 1000 });
  });

  it('should move a blob larger than one CopyObject by streaming when the server has no UploadPartCopy (s3rver)', async () => {
    const data = randomBytes(6 * 1024 * 1024);
    const r = await putStream(store, byteStream(data).stream, {
      mediaType: 'x/y',
      maxBytes: 1e7,
      partSize: 5 * 1024 * 1024,
      copyObjectMax: 1024,
    });
    expect(r.existed).toBe(false);
    const back = await get(store, r.sha256);
    expect(back.contentLength).toBe(data.length);
    expect(sha(await readAll(back.body))).toBe(sha(data));
    expect(await keys(store, 'uploads/')).toEqual([]);
  });

  it('should read a range, and answer 404 for an absent blob and 416 for a range past the end', async () => {
    const data = Buffer.from('0123456789abcdef');
    const r = await putStream(store, Readable.from([data]), { mediaType: 'text/plain', maxBytes: 100 });
    const part = await get(store, r.sha256, { start: 4, end: 9 });
    expect(part).toMatchObject({ contentLength: 6, totalSize: 16, range: { start: 4, end: 9 } });
    expect((await readAll(part.body)).toString()).toBe('456789');
    const tail = await get(store, r.sha256, { start: 10 });
    expect((await readAll(tail.body)).toString()).toBe('abcdef');
    await expect(get(store, 'f'.repeat(64))).rejects.toMatchObject({ kind: 'not-found' });
    await expect(get(store, r.sha256, { start: 16 })).rejects.toMatchObject({
      kind: 'range-not-satisfiable',
      code: 'RANGE_NOT_SATISFIABLE',
    });
    expect(await has(store, 'e'.repeat(64))).toBe(false);
    expect(() => blobKey('../etc/passwd')).toThrow();
  });
});

describe.each(TEST_DRIVERS)('artifact rows on %s', (driver) => {
  let h: DbHandle;
  beforeAll(async () => {
    h = await createTestDb(driver);
  });
  afterAll(async () => {
    await h.close();
  });

  it('should record an artifact once, the first row standing', async () => {
    const hex = sha(randomBytes(10));
    await recordArtifact(h.db, {
      sha256: hex,
      size: 10,
      mediaType: 'application/zip',
      key: blobKey(`sha256:${hex}`),
    });
    await recordArtifact(h.db, {
      sha256: hex,
      size: 10,
      mediaType: 'application/other',
      key: blobKey(`sha256:${hex}`),
    });
    const rows = await h.db.select().from(artifacts).where(eq(artifacts.sha256, hex));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ size: 10, mediaType: 'application/zip', key: `blobs/sha256/${hex}` });
  });
});
