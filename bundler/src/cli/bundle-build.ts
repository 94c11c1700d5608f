import fs from 'node:fs/promises';
import path from 'node:path';
import { findRelease, requestBundles, type BundleView, type OutpostApi } from './api.ts';
import { downloadResumable } from './download.ts';
import { CliError, formatBytes } from './errors.ts';
import { progressBar } from './progress.ts';
import { verifyBundle, type VerifyResult } from './verify.ts';

export interface RemoteBuildOptions {
  api: OutpostApi;
  site: string;
  version: string;
  mode: 'auto' | 'full' | 'delta';
  /** Days until a new bundle expires (the server's default when not given). */
  expiresInDays?: number;
  wait: boolean;
  out?: string;
  pollMs?: number;
  timeoutMs?: number;
  log: (line: string) => void;
}

export interface RemoteBuildResult {
  bundle: BundleView;
  file?: string;
  downloaded?: number;
  verification?: VerifyResult;
}

/** Asks the server for one site's bundle, waits for it when told to, and downloads it (resumably) with --out. */
export async function buildRemote(options: RemoteBuildOptions): Promise<RemoteBuildResult> {
  const { api, log } = options;
  const release = await findRelease(api, options.version);
  const asked = await requestBundles(api, {
    releaseId: release.id,
    siteCodes: [options.site],
    mode: options.mode,
    ...(options.expiresInDays ? { expiresInDays: options.expiresInDays } : {}),
  });
  const id = asked.bundles[0]!.id;
  log(
    `Bundle ${id} for ${options.site}, release ${release.version}${asked.created ? '' : ' (asked for before; kept)'}${asked.bundles[0]!.delta ? ', delta' : ''}`,
  );
  let bundle = await api.json<BundleView>(`/bundles/${id}`);
  if (!options.wait && !options.out) {
    log(`State: ${bundle.state}`);
    return { bundle };
  }

  const deadline = Date.now() + (options.timeoutMs ?? 2 * 3600_000);
  let last = '';
  for (;;) {
    if (bundle.state !== last) {
      log(`State: ${bundle.state}`);
      last = bundle.state;
    }
    if (bundle.state === 'ready') break;
    if (bundle.state === 'failed')
      throw new CliError(
        `The bundle failed to build: ${bundle.error?.message ?? 'unknown error'} (${bundle.error?.code ?? 'BUILD_FAILED'}).`,
      );
    if (Date.now() > deadline)
      throw new CliError(`The bundle is still ${bundle.state}; run the same command later to carry on.`);
    await new Promise((r) => setTimeout(r, options.pollMs ?? 2000));
    bundle = await api.json<BundleView>(`/bundles/${id}`);
  }
  log(`Ready: ${formatBytes(bundle.size ?? 0)}, signed with ${bundle.keyFingerprint}`);
  if (!options.out) return { bundle };

  let file = path.resolve(options.out);
  if ((await fs.stat(file).catch(() => null))?.isDirectory()) file = path.join(file, bundle.fileName);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const bar = progressBar('bytes', 'download', bundle.size ?? 0);
  let seen = 0;
  const result = await downloadResumable({
    url: `${api.base}/api/v1/bundles/${id}/download`,
    file,
    ...(bundle.size !== null ? { size: bundle.size } : {}),
    fetch: (url, init) => api.request(url, init),
    failure: (res) => api.failure(res),
    onBytes: (n) => {
      seen += n;
      bar.update(seen);
    },
  }).finally(() => bar.stop());
  log(
    `Saved ${file}: ${formatBytes(result.downloaded)} downloaded${result.resumedFrom ? `, ${formatBytes(result.resumedFrom)} kept from an earlier try` : ''}`,
  );

  // The organisation's key as the server names it: a tampered or swapped download fails here, not at the site.
  const verification = await verifyBundle(
    file,
    bundle.keyFingerprint ? { fingerprint: bundle.keyFingerprint } : {},
  );
  return { bundle, file, downloaded: result.downloaded, verification };
}
