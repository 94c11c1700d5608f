import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { crc32, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  STORED_BLOCK,
  storedGzip,
  storedGzipPieces,
  storedGzipSize,
  storedGzipTrailer,
} from './stored-gzip.ts';

async function gzipOf(data: Buffer, chunk = 7_001): Promise<{ bytes: Buffer; crc: number }> {
  const gzip = storedGzip(data.length);
  const chunks = (function* () {
    for (let at = 0; at < data.length; at += chunk) yield data.subarray(at, at + chunk);
  })();
  const bytes = await buffer(Readable.from(chunks).pipe(gzip));
  return { bytes, crc: gzip.crc32() };
}

/** The bytes the pieces describe, with the data pieces taken from `data`. */
function assemble(data: Buffer, start: number, end: number, trailer: Buffer): Buffer {
  return Buffer.concat(
    storedGzipPieces(data.length, start, end, trailer).map((p) =>
      p.kind === 'bytes' ? p.bytes : data.subarray(p.start, p.end),
    ),
  );
}

describe('stored gzip', () => {
  const sizes = [0, 1, STORED_BLOCK - 1, STORED_BLOCK, STORED_BLOCK + 1, 3 * STORED_BLOCK, 300_017];

  it.each(sizes)(
    "%i bytes: zlib and gzip(1) read back the data, the size is predicted and the CRC is zlib's",
    async (size) => {
      const data = randomBytes(size);
      const { bytes, crc } = await gzipOf(data);
      expect(bytes.length).toBe(storedGzipSize(size));
      expect(gunzipSync(bytes).equals(data)).toBe(true);
      expect(execFileSync('gzip', ['-dc'], { input: bytes, maxBuffer: 1 << 24 }).equals(data)).toBe(true);
      expect(crc).toBe(crc32(data) >>> 0);
    },
  );

  it.each(sizes)(
    '%i bytes: every range described by the pieces equals those bytes of the whole stream',
    async (size) => {
      const data = randomBytes(size);
      const { bytes, crc } = await gzipOf(data, 65_536);
      const trailer = storedGzipTrailer(crc, size);
      expect(assemble(data, 0, bytes.length, trailer).equals(bytes)).toBe(true);
      const edges = [
        0,
        1,
        9,
        10,
        11,
        14,
        15,
        16,
        STORED_BLOCK + 15,
        STORED_BLOCK + 20,
        bytes.length - 9,
        bytes.length - 8,
        bytes.length - 1,
        bytes.length,
      ];
      const points = [
        ...edges.filter((p) => p >= 0 && p <= bytes.length),
        ...Array.from({ length: 40 }, () => Math.floor(Math.random() * (bytes.length + 1))),
      ];
      for (const a of points) {
        for (const b of points) {
          if (a > b) continue;
          expect(
            assemble(data, a, b, trailer).equals(bytes.subarray(a, b)),
            `bytes ${a}-${b} of ${bytes.length}`,
          ).toBe(true);
        }
      }
    },
  );

  it('data pieces of one range follow each other in the data', () => {
    const size = 5 * STORED_BLOCK + 123;
    const pieces = storedGzipPieces(size, 100, storedGzipSize(size) - 3, storedGzipTrailer(0, size)).filter(
      (p) => p.kind === 'data',
    );
    for (let i = 1; i < pieces.length; i++) expect(pieces[i]!.start).toBe(pieces[i - 1]!.end);
    expect(pieces.length).toBe(6);
  });

  it('refuses a stream longer or shorter than announced, and a range outside the stream', async () => {
    await expect(buffer(Readable.from([Buffer.alloc(10)]).pipe(storedGzip(5)))).rejects.toThrow(
      /more than the 5 bytes/,
    );
    await expect(buffer(Readable.from([Buffer.alloc(3)]).pipe(storedGzip(5)))).rejects.toThrow(
      /3 bytes came, 5 were announced/,
    );
    expect(() => storedGzipPieces(10, 0, storedGzipSize(10) + 1, storedGzipTrailer(0, 10))).toThrow(
      RangeError,
    );
    expect(() => storedGzipPieces(10, 5, 4, storedGzipTrailer(0, 10))).toThrow(RangeError);
  });
});
