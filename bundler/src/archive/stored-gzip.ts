import { Transform } from 'node:stream';
import zlib from 'node:zlib';

/**
 * A gzip stream of "stored" deflate blocks (no compression), laid out so that its bytes are a
 * function of the data alone: a fixed 10-byte header, the data cut into blocks of exactly
 * `STORED_BLOCK` bytes (the last one shorter), each behind a 5-byte block header, and the 8-byte
 * trailer (CRC-32 and length of the data). Any byte range of it can therefore be produced from the
 * matching range of the data without compressing anything — which is how an images archive is
 * served from the blobs it holds instead of being stored a second time (docs/bundles.md).
 *
 * gzip (RFC 1952) around deflate (RFC 1951 §3.2.4): a stored block is BFINAL + BTYPE=00 in the
 * first bits, padded to the byte (one byte, 0x01 for the last block, 0x00 before), then LEN and
 * its ones' complement NLEN, little-endian, then LEN bytes of data.
 */
export const STORED_BLOCK = 65_535;
const BLOCK_HEADER = 5;
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]); // no name, no mtime, OS unknown
const TRAILER = 8;

const blockCount = (dataSize: number) => Math.max(1, Math.ceil(dataSize / STORED_BLOCK));

/** Bytes of the gzip stream that holds `dataSize` bytes. */
export function storedGzipSize(dataSize: number): number {
  return HEADER.length + BLOCK_HEADER * blockCount(dataSize) + dataSize + TRAILER;
}

function blockHeader(index: number, dataSize: number): Buffer {
  const count = blockCount(dataSize);
  const len = index === count - 1 ? dataSize - index * STORED_BLOCK : STORED_BLOCK;
  const header = Buffer.alloc(BLOCK_HEADER);
  header[0] = index === count - 1 ? 1 : 0;
  header.writeUInt16LE(len, 1);
  header.writeUInt16LE(~len & 0xffff, 3);
  return header;
}

/** The last 8 bytes: CRC-32 of the data and its length modulo 2^32. */
export function storedGzipTrailer(dataCrc32: number, dataSize: number): Buffer {
  const trailer = Buffer.alloc(TRAILER);
  trailer.writeUInt32LE(dataCrc32 >>> 0, 0);
  trailer.writeUInt32LE(dataSize % 2 ** 32, 4);
  return trailer;
}

/** Framing bytes, or the data bytes `start` to `end` (exclusive) that go at this place. */
export type StoredGzipPiece = { kind: 'bytes'; bytes: Buffer } | { kind: 'data'; start: number; end: number };

/**
 * What bytes `start` to `end` (exclusive) of the gzip stream are made of, in order. Consecutive
 * `data` pieces are consecutive in the data, so a reader opens the data once at the first piece's
 * start and takes each piece's length from it.
 *
 * @example
 * for (const piece of storedGzipPieces(tarSize, 0, storedGzipSize(tarSize), storedGzipTrailer(crc, tarSize))) …
 */
export function storedGzipPieces(
  dataSize: number,
  start: number,
  end: number,
  trailer: Buffer,
): StoredGzipPiece[] {
  const total = storedGzipSize(dataSize);
  if (!(
    Number.isSafeInteger(start) &&
    Number.isSafeInteger(end) &&
    start >= 0 &&
    start <= end &&
    end <= total
  )) {
    throw new RangeError(`bytes ${start}-${end} are not within the ${total} bytes of the gzip stream`);
  }
  const pieces: StoredGzipPiece[] = [];
  const bytes = (buffer: Buffer, at: number) => {
    const from = Math.max(start, at) - at;
    const to = Math.min(end, at + buffer.length) - at;
    if (from < to) pieces.push({ kind: 'bytes', bytes: buffer.subarray(from, to) });
  };
  bytes(HEADER, 0);
  const stride = STORED_BLOCK + BLOCK_HEADER;
  const bodyEnd = total - TRAILER;
  if (start < bodyEnd && end > HEADER.length) {
    const first = Math.floor((Math.max(start, HEADER.length) - HEADER.length) / stride);
    const last = Math.min(
      blockCount(dataSize) - 1,
      Math.floor((Math.min(end, bodyEnd) - 1 - HEADER.length) / stride),
    );
    for (let index = first; index <= last; index++) {
      const at = HEADER.length + index * stride;
      bytes(blockHeader(index, dataSize), at);
      const dataAt = at + BLOCK_HEADER;
      const len = Math.min(STORED_BLOCK, dataSize - index * STORED_BLOCK);
      const from = Math.max(start, dataAt) - dataAt;
      const to = Math.min(end, dataAt + len) - dataAt;
      if (from < to)
        pieces.push({ kind: 'data', start: index * STORED_BLOCK + from, end: index * STORED_BLOCK + to });
    }
  }
  bytes(trailer, bodyEnd);
  return pieces;
}

/**
 * Gzips a stream of exactly `dataSize` bytes in the layout above, as it flows; `crc32()` is the
 * data's CRC-32 once the stream has ended. Costs a CRC and a copy-free split per block.
 *
 * @example
 * const gzip = storedGzip(tar.size);
 * await pipeline(tarStream, gzip, createWriteStream('images.tgz'));
 */
export function storedGzip(dataSize: number): Transform & { crc32: () => number } {
  let crc = 0;
  let seen = 0;
  let blockLeft = 0;
  let index = 0;
  let started = false;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (seen + chunk.length > dataSize)
        return callback(new Error(`stored gzip: more than the ${dataSize} bytes announced`));
      if (!started) {
        started = true;
        this.push(HEADER);
      }
      crc = zlib.crc32(chunk, crc);
      seen += chunk.length;
      let at = 0;
      while (at < chunk.length) {
        if (blockLeft === 0) {
          this.push(blockHeader(index, dataSize));
          blockLeft = Math.min(STORED_BLOCK, dataSize - index * STORED_BLOCK);
          index++;
        }
        const take = Math.min(blockLeft, chunk.length - at);
        this.push(at === 0 && take === chunk.length ? chunk : chunk.subarray(at, at + take));
        at += take;
        blockLeft -= take;
      }
      callback();
    },
    flush(callback) {
      if (seen !== dataSize)
        return callback(new Error(`stored gzip: ${seen} bytes came, ${dataSize} were announced`));
      if (!started) this.push(HEADER);
      if (dataSize === 0) this.push(blockHeader(0, 0));
      this.push(storedGzipTrailer(crc, dataSize));
      callback();
    },
  });
  return Object.assign(stream, { crc32: () => crc >>> 0 });
}
