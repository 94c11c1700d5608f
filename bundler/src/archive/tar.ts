/**
 * Just enough of the tar format (POSIX ustar) to write an archive as a stream whose entries are
 * known in advance: a 512-byte header, the data, zero padding to a 512-byte boundary, and two zero
 * blocks at the end. Sizes too large for the octal field (8 GiB and more) use the base-256 form that
 * GNU tar, Go's archive/tar (docker, podman, skopeo) and busybox read.
 */

export const BLOCK = 512;
const OCTAL_SIZE_MAX = 8 ** 11 - 1;

export interface TarEntry {
  /** Path inside the archive, at most 100 bytes (no prefix field needed for our names). */
  name: string;
  size: number;
  type?: 'file' | 'directory';
  mode?: number;
  /** Seconds since the epoch; default 0 so the same content gives the same archive. */
  mtime?: number;
}

/** The header block of one entry. */
export function tarHeader(entry: TarEntry): Buffer {
  const type = entry.type ?? 'file';
  const name = type === 'directory' && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name;
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name "${name}" is longer than 100 bytes`);
  if (!Number.isSafeInteger(entry.size) || entry.size < 0)
    throw new Error(`tar entry "${name}" has an invalid size ${entry.size}`);
  const size = type === 'directory' ? 0 : entry.size;

  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, 'utf8');
  writeOctal(header, 100, 8, entry.mode ?? (type === 'directory' ? 0o755 : 0o644));
  writeOctal(header, 108, 8, 0); // uid
  writeOctal(header, 116, 8, 0); // gid
  if (size <= OCTAL_SIZE_MAX) writeOctal(header, 124, 12, size);
  else writeBase256(header, 124, 12, size);
  writeOctal(header, 136, 12, entry.mtime ?? 0);
  header.write(type === 'directory' ? '5' : '0', 156, 1, 'latin1');
  header.write('ustar\0', 257, 6, 'latin1');
  header.write('00', 263, 2, 'latin1');
  header.write('root', 265, 32, 'latin1');
  header.write('root', 297, 32, 'latin1');

  // The checksum is computed with its own field read as eight spaces.
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return header;
}

/** Zero bytes that follow `size` bytes of data to fill the last block. */
export function tarPadding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** The two zero blocks that end an archive. */
export function tarTrailer(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

/** Bytes one entry takes in the archive: header, data, padding. */
export function tarEntryLength(size: number): number {
  return BLOCK + Math.ceil(size / BLOCK) * BLOCK;
}

function writeOctal(buffer: Buffer, offset: number, length: number, value: number): void {
  buffer.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
}

function writeBase256(buffer: Buffer, offset: number, length: number, value: number): void {
  let rest = BigInt(value);
  for (let i = offset + length - 1; i > offset; i--) {
    buffer[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  buffer[offset] = 0x80;
}
