import { PassThrough, Readable } from 'node:stream';
import { ZipArchive } from 'archiver';

export interface ZipOptions {
  /** Deflate level (default 1: quick; 6 is what most tools write). */
  level?: number;
  /** Entries written from streams, so with data descriptors after their data. */
  streamed?: boolean;
  /** Entries stored, not deflated. */
  store?: boolean;
  zip64?: boolean;
  /** Folder entries (`forms/`) written first. */
  folders?: string[];
}

/** A real zip made by archiver (the stack's writer), e.g. a content package, in memory. */
export async function zipOf(files: Record<string, string | Buffer>, opts: ZipOptions = {}): Promise<Buffer> {
  const zip = new ZipArchive({ zlib: { level: opts.level ?? 1 }, forceZip64: opts.zip64 });
  const out = new PassThrough();
  zip.pipe(out);
  const parts: Buffer[] = [];
  out.on('data', (d: Buffer) => parts.push(d));
  const ended = new Promise((r) => out.on('end', r));
  for (const name of opts.folders ?? [])
    zip.append(null as unknown as string, { name, type: 'directory' } as never);
  for (const [name, data] of Object.entries(files)) {
    const buf = Buffer.from(data);
    zip.append(opts.streamed ? Readable.from([buf]) : buf, { name, store: opts.store });
  }
  await zip.finalize();
  await ended;
  return Buffer.concat(parts);
}
