import { PassThrough } from 'node:stream';
import { ZipArchive } from 'archiver';

/** A real zip (archiver), e.g. a content package, in memory. */
export async function zipOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const zip = new ZipArchive({ zlib: { level: 1 } });
  const out = new PassThrough();
  zip.pipe(out);
  const parts: Buffer[] = [];
  out.on('data', (d: Buffer) => parts.push(d));
  const ended = new Promise((r) => out.on('end', r));
  for (const [name, data] of Object.entries(files)) zip.append(Buffer.from(data), { name });
  await zip.finalize();
  await ended;
  return Buffer.concat(parts);
}
