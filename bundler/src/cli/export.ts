import { createHash } from 'node:crypto';
import { oneLine } from '../site/plain-text.ts';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { verifyManifest } from '../signing/signing.ts';
import {
  findRelease,
  listReleaseBundles,
  requestBundles,
  type BundleLinks,
  type BundleStatus,
  type BundleView,
  type OutpostApi,
} from './api.ts';
import { downloadResumable, fileSize, hashFile } from './download.ts';
import { CliError, describeError, formatBytes, formatDuration } from './errors.ts';
import { progressBar } from './progress.ts';

export interface ExportOptions {
  api: OutpostApi;
  version: string;
  to: string;
  selection: { siteCodes?: string[]; filter?: { region?: string; district?: string; tag?: string } };
  mode?: 'auto' | 'full' | 'delta';
  /** Days until new bundles expire (the server's default when not given). */
  expiresInDays?: number;
  pollMs?: number;
  /** Give up waiting for bundles after this long. Default 2 h. */
  timeoutMs?: number;
  log: (line: string) => void;
}

export interface ExportSummary {
  sites: number;
  exported: string[];
  failed: { site: string; reason: string }[];
  bytesWritten: number;
  bytesSkipped: number;
  sharedObjects: number;
  ms: number;
}

const SHARED_DIR = path.join('shared', 'sha256');
const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Exports a release's bundles for a selection of sites to a folder for USB delivery: each shared
 * object (images archive, content package) once under `shared/sha256/<hex>`, and per site
 * `<site-code>/outpost-<code>-<version>/` with the extracted site part. Safe to run again: what is
 * there and checks out is skipped, partial downloads resume.
 */
export async function exportBundles(options: ExportOptions): Promise<ExportSummary> {
  const started = Date.now();
  const { api, log } = options;
  const to = path.resolve(options.to);
  const release = await findRelease(api, options.version);
  const asked = await requestBundles(api, {
    releaseId: release.id,
    mode: options.mode ?? 'auto',
    ...(options.expiresInDays ? { expiresInDays: options.expiresInDays } : {}),
    ...(options.selection.siteCodes ? { siteCodes: options.selection.siteCodes } : {}),
    ...(options.selection.filter ? { filter: options.selection.filter } : {}),
  });
  const total = asked.bundles.length;
  log(
    `Release ${release.version}: ${total} site${total === 1 ? '' : 's'} (${asked.created} bundle${asked.created === 1 ? '' : 's'} to build, ${asked.kept} already asked for).`,
  );

  const { ready, failed } = await waitForBundles(
    api,
    release.id,
    asked.bundles.map((b) => b.id),
    options,
  );
  const summary: ExportSummary = {
    sites: total,
    exported: [],
    failed,
    bytesWritten: 0,
    bytesSkipped: 0,
    sharedObjects: 0,
    ms: 0,
  };

  await fs.mkdir(path.join(to, SHARED_DIR), { recursive: true });
  // One links request per bundle, a few at a time (each has the server check the parts in storage).
  const linked: ({ bundle: BundleView; links: BundleLinks } | null)[] = new Array(ready.length).fill(null);
  const queue = ready.map((bundle, index) => ({ bundle, index }));
  await Promise.all(
    Array.from({ length: Math.min(8, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        try {
          linked[next.index] = {
            bundle: next.bundle,
            links: await api.json<BundleLinks>(`/bundles/${next.bundle.id}/links`),
          };
        } catch (error) {
          summary.failed.push({ site: next.bundle.site.code, reason: describeError(error) });
        }
      }
    }),
  );
  const links = linked.filter((l): l is { bundle: BundleView; links: BundleLinks } => l !== null);

  // Shared objects: each once, however many sites use it.
  const shared = new Map<string, { size: number; url: string; name: string }>();
  for (const { links: l } of links) {
    for (const f of l.files)
      if (!f.extract && SHA256_HEX.test(f.sha256) && !shared.has(f.sha256))
        shared.set(f.sha256, { size: f.size, url: f.url, name: f.path.split('/').pop()! });
  }
  summary.sharedObjects = shared.size;
  const toFetch: [string, { size: number; url: string; name: string }][] = [];
  for (const [sha256, object] of shared) {
    const file = path.join(to, SHARED_DIR, sha256);
    if ((await fileSize(file)) === object.size) {
      log(`Checking ${object.name} (${formatBytes(object.size)}) already in shared/`);
      if ((await hashFile(file)) === sha256) {
        summary.bytesSkipped += object.size;
        continue;
      }
      log(`  it does not match its checksum: downloading it again`);
      await fs.rm(file, { force: true });
    }
    toFetch.push([sha256, object]);
  }
  const badShared = new Set<string>();
  if (toFetch.length > 0) {
    const need = toFetch.reduce((n, [, o]) => n + o.size, 0);
    log(
      `Downloading ${toFetch.length} shared object${toFetch.length === 1 ? '' : 's'} (${formatBytes(need)})`,
    );
    const bar = progressBar('bytes', 'shared ', need);
    // Lines wait until the bar is gone: printing under a live bar garbles both.
    const lines: string[] = [];
    let done = 0;
    for (const [sha256, object] of toFetch) {
      const file = path.join(to, SHARED_DIR, sha256);
      try {
        const r = await downloadResumable({
          url: object.url,
          file,
          size: object.size,
          sha256,
          onBytes: (n) => {
            done += n;
            bar.update(done);
          },
          failure: async (res) =>
            new CliError(
              `Downloading ${object.name} failed (${res.status} from the object store)${res.status === 403 ? '; the link may have expired: run the export again' : ''}.`,
            ),
        });
        done += r.resumedFrom;
        bar.update(done);
        summary.bytesWritten += r.downloaded;
        summary.bytesSkipped += r.resumedFrom;
        lines.push(
          `  ${object.name} ${sha256.slice(0, 12)}: ${formatBytes(r.downloaded)} downloaded${r.resumedFrom ? `, ${formatBytes(r.resumedFrom)} kept from before` : ''}`,
        );
      } catch (error) {
        if ((error as { code?: string }).code === 'ENOSPC') {
          bar.stop();
          throw error;
        }
        badShared.add(sha256);
        lines.push(`  ${object.name}: ${describeError(error)}`);
      }
    }
    bar.stop();
    for (const line of lines) log(line);
  }

  // Site folders: the extracted site part, unless the folder already holds exactly this bundle.
  for (const { bundle, links: l } of links) {
    const missing = l.files.filter((f) => !f.extract && badShared.has(f.sha256));
    if (missing.length > 0) {
      summary.failed.push({
        site: bundle.site.code,
        reason: `${missing.map((f) => f.path.split('/').pop()).join(', ')} could not be downloaded`,
      });
      continue;
    }
    // Names from the server become paths on the drive: only plain names (a bundle cannot be built for others anyway).
    if (
      !PLAIN_NAME.test(bundle.site.code) ||
      !PLAIN_NAME.test(l.root) ||
      l.files.some((f) => !f.extract && !SHA256_HEX.test(f.sha256))
    ) {
      summary.failed.push({
        site: bundle.site.code,
        reason: 'the server named a folder or file that is not a plain name; nothing was written',
      });
      continue;
    }
    const siteDir = path.join(to, bundle.site.code);
    const folder = path.join(siteDir, l.root);
    try {
      const kept = await folderHolds(folder, l.manifest as Manifest);
      if (kept !== null) {
        summary.bytesSkipped += kept;
      } else {
        const sitePart = l.files.find((f) => f.extract)!;
        summary.bytesWritten += await writeSitePart(sitePart, folder, l.root);
        log(`  ${bundle.site.code}: ${l.root}/ written`);
      }
      summary.exported.push(bundle.site.code);
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOSPC') throw error;
      summary.failed.push({ site: bundle.site.code, reason: describeError(error) });
    }
  }

  const readme = exportReadme();
  const readmeFile = path.join(to, 'README.txt');
  if ((await fs.readFile(readmeFile, 'utf8').catch(() => null)) !== readme)
    await fs.writeFile(readmeFile, readme);
  summary.ms = Date.now() - started;
  return summary;
}

async function waitForBundles(
  api: OutpostApi,
  releaseId: string,
  ids: string[],
  options: ExportOptions,
): Promise<{ ready: BundleView[]; failed: { site: string; reason: string }[] }> {
  const wanted = new Set(ids);
  const deadline = Date.now() + (options.timeoutMs ?? 2 * 3600_000);
  const bar = progressBar('count', 'ready  ', ids.length);
  const reported = new Set<string>();
  let lastLine = '';
  // Listing a release's bundles takes a page per 500; the counts by state take one request. The list
  // is read again only when the counts moved (or every 30 s), so a long wait — an images archive
  // being built for ten thousand sites — costs one small request a poll.
  let mine: BundleView[] = [];
  let listedCounts = '';
  let listedAt = 0;
  try {
    for (;;) {
      const { counts } = await api.json<BundleStatus>(`/releases/${releaseId}/bundle-status`);
      const seen = JSON.stringify(counts);
      if (seen !== listedCounts || Date.now() - listedAt > 30_000) {
        listedCounts = seen;
        listedAt = Date.now();
        mine = (await listReleaseBundles(api, releaseId)).filter((b) => wanted.has(b.id));
      }
      const ready = mine.filter((b) => b.state === 'ready');
      const failed = mine.filter((b) => b.state === 'failed');
      for (const b of failed) {
        if (!reported.has(b.id)) {
          reported.add(b.id);
          options.log(`  ${b.site.code}: failed — ${b.error?.message ?? 'unknown error'}`);
        }
      }
      bar.update(ready.length);
      const line = `${ready.length}/${ids.length} ready${failed.length ? `, ${failed.length} failed` : ''}`;
      if (line !== lastLine && !bar.active) options.log(line);
      lastLine = line;
      if (ready.length + failed.length >= ids.length) {
        return {
          ready: ready.sort((a, b) => (a.site.code < b.site.code ? -1 : 1)),
          failed: failed.map((b) => ({ site: b.site.code, reason: b.error?.message ?? 'failed to build' })),
        };
      }
      if (Date.now() > deadline) {
        throw new CliError(
          `Gave up waiting: ${ids.length - ready.length - failed.length} bundle${ids.length - ready.length - failed.length === 1 ? ' is' : 's are'} still being built. Run the same command later; it carries on.`,
        );
      }
      await new Promise((r) => setTimeout(r, options.pollMs ?? 2000));
    }
  } finally {
    bar.stop();
  }
}

interface Manifest {
  files: { path: string; size: number; sha256: string }[];
}

/**
 * Bytes already in place when `folder` holds this very bundle (same manifest, signed by its bundled
 * key, each own file the right size and checksum; shared files are checked in shared/); else null.
 */
async function folderHolds(folder: string, manifest: Manifest): Promise<number | null> {
  const read = (p: string) => fs.readFile(path.join(folder, p)).catch(() => null);
  const bytes = await read('manifest.json');
  const sig = await read('manifest.sig');
  const key = await read('keys/signing-key.pem');
  if (!bytes || !sig) return null;
  try {
    if (canonical(JSON.parse(bytes.toString('utf8'))) !== canonical(manifest)) return null;
  } catch {
    return null;
  }
  if (key && !verifyManifest(bytes, sig, key.toString('utf8'))) return null;
  let total = bytes.length + sig.length;
  for (const f of manifest.files) {
    const file = path.join(folder, f.path);
    const size = await fileSize(file);
    if (size === 0 && f.size > 0) {
      const shared = manifest as { images?: { path: string }; content?: { path: string } | null };
      if (f.path === shared.images?.path || f.path === shared.content?.path) continue;
      return null;
    }
    if (size !== f.size || (await hashFile(file)) !== f.sha256) return null;
    total += size;
  }
  return total;
}

/** JSON with keys sorted: the API keeps the manifest in a jsonb column, which reorders keys. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Downloads the site part (kilobytes), checks it, and extracts it into a fresh folder that replaces `folder`. */
async function writeSitePart(
  sitePart: BundleLinks['files'][number],
  folder: string,
  root: string,
): Promise<number> {
  const res = await fetch(sitePart.url);
  if (!res.ok)
    throw new CliError(
      `Downloading the site part failed (${res.status} from the object store)${res.status === 403 ? '; the link may have expired: run the export again' : ''}.`,
    );
  const tarBytes = Buffer.from(await res.arrayBuffer());
  const sha256 = createHash('sha256').update(tarBytes).digest('hex');
  if (tarBytes.length !== sitePart.size || sha256 !== sitePart.sha256)
    throw new CliError(
      `The site part came back damaged (${tarBytes.length} bytes, sha256 ${sha256.slice(0, 12)}…); run the export again.`,
    );

  const tmp = `${folder}.partial`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  let written = 0;
  // The site part has no tar trailer (the shared objects follow it in the one-file download), so the
  // extractor can finish while the last file is still being written: every write is awaited below.
  const writes: Promise<void>[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const name = header.name;
    const rel = name.startsWith(`${root}/`) ? name.slice(root.length + 1).replace(/\/$/, '') : null;
    if (
      rel === null ||
      rel.split('/').some((p) => p === '..' || p === '.') ||
      (header.type !== 'file' && header.type !== 'directory')
    ) {
      stream.resume();
      extract.destroy(
        new CliError(`The site part holds an unexpected entry ${JSON.stringify(name)}; nothing was written.`),
      );
      return;
    }
    const target = path.join(tmp, rel);
    if (header.type === 'directory') {
      stream.resume();
      fs.mkdir(target, { recursive: true }).then(() => next(), next);
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c) => chunks.push(c as Buffer));
    stream.on('end', () => {
      const data = Buffer.concat(chunks);
      written += data.length;
      const write = fs
        .mkdir(path.dirname(target), { recursive: true })
        .then(() => fs.writeFile(target, data, { mode: (header.mode ?? 0o644) & 0o777 }))
        .then(() => fs.chmod(target, (header.mode ?? 0o644) & 0o777));
      writes.push(write);
      write.then(() => next(), next);
    });
  });
  try {
    await pipeline(Readable.from([tarBytes]), extract);
    await Promise.all(writes);
    await fs.rm(folder, { recursive: true, force: true });
    await fs.rename(tmp, folder);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return written;
}

export function formatSummary(s: ExportSummary): string[] {
  return [
    `Sites: ${s.exported.length} of ${s.sites} exported${s.failed.length ? `, ${s.failed.length} failed` : ''}`,
    `Written: ${formatBytes(s.bytesWritten)}; already there (skipped): ${formatBytes(s.bytesSkipped)}`,
    `Shared objects: ${s.sharedObjects} (each stored once under shared/sha256/)`,
    `Time: ${formatDuration(s.ms)}`,
    ...s.failed.map((f) => oneLine(`FAILED ${f.site}: ${f.reason}`)),
  ];
}

/** README.txt at the top of an export: what the folders are, in plain words. */
export function exportReadme(): string {
  return [
    'Outpost updates for several sites',
    '',
    'WHAT IS IN THIS FOLDER',
    '- One folder per site, named by its site code. Inside it is the update folder',
    '  for that site, called outpost-<site code>-<version>.',
    '- A folder called "shared". It holds the large files (the programs and the',
    '  content) that every site needs. They are stored only once to save space.',
    '',
    'HOW TO COPY IT',
    'Each site\'s update needs the "shared" folder next to it. When you copy updates',
    'onto a USB drive, copy the "shared" folder too, and keep it at the top of the',
    'drive, beside the site folders, exactly as it is here:',
    '',
    '    shared/',
    '    KE-001/outpost-KE-001-2.4.0/',
    '    KE-002/outpost-KE-002-2.4.0/',
    '',
    'Do not rename, change or delete anything inside these folders.',
    '',
    'AT THE SITE',
    "Plug in the drive, open the site's update folder and follow README.txt in it",
    '(sudo sh scripts/install). The installer finds the large files in "shared" by itself.',
    '',
  ].join('\n');
}
