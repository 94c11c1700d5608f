import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CliError, errorCode, isNetworkError } from './errors.ts';

export interface DownloadOptions {
  url: string;
  /** Where the finished file goes; bytes are written to `<file>.part` until they are all there. */
  file: string;
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** When known: the download must come to exactly this many bytes. */
  size?: number;
  /** When known (lowercase hex): the finished file must hash to it, or it is thrown away. */
  sha256?: string;
  /** Called with the number of new bytes as they arrive. */
  onBytes?: (bytes: number) => void;
  /** Tries after a broken connection, each resuming where the last stopped. Default 3. */
  retries?: number;
  /** Turns a non-2xx answer (other than 416) into the error to throw. */
  failure?: (res: Response) => Promise<Error>;
}

export interface DownloadResult {
  size: number;
  /** Bytes fetched by this call (the rest was already in the partial file). */
  downloaded: number;
  /** Bytes of a partial file that were kept. */
  resumedFrom: number;
  sha256: string;
}

/**
 * Downloads `url` to `file` so that a broken download carries on: bytes go to `<file>.part`, a
 * second run asks for `Range: bytes=<what we have>-` with `If-Range: <the ETag it was started
 * with>` (kept in `<file>.part.etag`), so if the file changed on the server it starts again
 * (200) instead of gluing two versions together. The finished file is checked (size, sha256 when
 * given) before it is renamed into place.
 */
export async function downloadResumable(options: DownloadOptions): Promise<DownloadResult> {
  const retries = options.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return await attemptDownload(options);
    } catch (error) {
      if (
        attempt >= retries ||
        !(
          isNetworkError(error) ||
          errorCode(error) === 'ERR_STREAM_PREMATURE_CLOSE' ||
          (error as Error).name === 'AbortError' ||
          (error as { retriable?: boolean }).retriable
        )
      )
        throw error;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }
}

async function attemptDownload(options: DownloadOptions): Promise<DownloadResult> {
  const part = `${options.file}.part`;
  const etagFile = `${part}.etag`;
  const doFetch = options.fetch ?? ((url, init) => fetch(url, init));
  let have = await fileSize(part);
  const etag = have > 0 ? await fs.readFile(etagFile, 'utf8').catch(() => null) : null;
  if (options.size !== undefined && have > options.size) {
    await fs.rm(part, { force: true });
    have = 0;
  }

  const headers = new Headers();
  if (have > 0) {
    headers.set('range', `bytes=${have}-`);
    if (etag) headers.set('if-range', etag);
  }
  const res = await doFetch(options.url, { headers });
  let total: number | undefined = options.size;
  let resumedFrom = 0;
  if (res.status === 416) {
    await res.body?.cancel();
    const whole = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
    if (have > 0 && (have === whole || have === options.size))
      return finish(options, part, etagFile, have, 0, have);
    await fs.rm(part, { force: true });
    throw Object.assign(
      new Error('the partial download did not fit the file on the server; starting again'),
      { retriable: true },
    );
  }
  if (!res.ok)
    throw options.failure
      ? await options.failure(res)
      : new CliError(`The download of ${options.file} failed: ${res.status} ${res.statusText}`);
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== have) {
      await res.body?.cancel();
      await fs.rm(part, { force: true });
      throw Object.assign(new Error('the server resumed from the wrong byte; starting again'), {
        retriable: true,
      });
    }
    if (m[3] !== '*') total = Number(m[3]);
    resumedFrom = have;
  } else {
    const length = res.headers.get('content-length');
    if (length !== null && total === undefined) total = Number(length);
  }
  const newEtag = res.headers.get('etag');
  if (newEtag && !newEtag.startsWith('W/')) await fs.writeFile(etagFile, newEtag);
  else await fs.rm(etagFile, { force: true });

  // The checksum covers the whole file: the kept part is read once more when a checksum is wanted.
  const hash = createHash('sha256');
  if (resumedFrom > 0) await hashFile(part, hash);
  let downloaded = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e, callback) {
      hash.update(chunk);
      downloaded += chunk.length;
      options.onBytes?.(chunk.length);
      callback(null, chunk);
    },
  });
  if (!res.body) throw new CliError(`The server sent no body for ${options.file}`);
  await writeTo(part, pipelineFrom(res.body, counter), resumedFrom > 0 ? 'a' : 'w');
  const size = resumedFrom + downloaded;
  if (total !== undefined && size < total) {
    throw Object.assign(new Error(`the download stopped after ${size} of ${total} bytes`), {
      retriable: true,
    });
  }
  return finish(options, part, etagFile, size, downloaded, resumedFrom, hash.digest('hex'));
}

async function finish(
  options: DownloadOptions,
  part: string,
  etagFile: string,
  size: number,
  downloaded: number,
  resumedFrom: number,
  sha256?: string,
): Promise<DownloadResult> {
  if (options.size !== undefined && size !== options.size) {
    await fs.rm(part, { force: true });
    throw new CliError(
      `${options.file} came to ${size} bytes, not the ${options.size} expected; the partial file was removed, run again to start over.`,
    );
  }
  const digest = sha256 ?? (await hashFile(part));
  if (options.sha256 && digest !== options.sha256) {
    await fs.rm(part, { force: true });
    throw new CliError(
      `${options.file} does not have the checksum it should (sha256 ${digest}, expected ${options.sha256}); it was removed, run again to download it again.`,
    );
  }
  await fs.rename(part, options.file);
  await fs.rm(etagFile, { force: true });
  return { size, downloaded, resumedFrom, sha256: digest };
}

function pipelineFrom(body: ReadableStream<Uint8Array>, through: Transform): Readable {
  const source = Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>);
  source.on('error', (e) => through.destroy(e));
  return source.pipe(through);
}

/** Writes a stream to a file; a full disk is reported with the file's name. */
export async function writeTo(file: string, source: Readable, flags: 'w' | 'a' = 'w'): Promise<void> {
  try {
    await pipeline(source, createWriteStream(file, { flags }));
  } catch (error) {
    if (errorCode(error) === 'ENOSPC' && !(error as { path?: string }).path)
      Object.assign(error as object, { path: file });
    throw error;
  }
}

/** sha256 (hex) of a file, read as a stream; `into` receives the bytes when given (and is not finalised). */
export async function hashFile(file: string, into?: Hash, onBytes?: (n: number) => void): Promise<string> {
  const hash = into ?? createHash('sha256');
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).length);
  }
  return into ? '' : hash.digest('hex');
}

export async function fileSize(file: string): Promise<number> {
  try {
    const s = await fs.stat(file);
    return s.isFile() ? s.size : 0;
  } catch {
    return 0;
  }
}
