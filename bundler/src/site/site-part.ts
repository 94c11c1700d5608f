import { createHash } from 'node:crypto';
import { BLOCK, tarEntryLength, tarHeader, tarPadding } from '../archive/tar.ts';
import { signManifest } from '../signing/signing.ts';
import { renderEnvFile } from './env-file.ts';
import type { SharedObject } from './stitch.ts';

export const BUNDLE_FORMAT = 'outpost-bundle/1';
export const IMAGES_PATH = 'images/images.tgz';

export interface SitePartScript {
  /** Path under `scripts/`, e.g. `install` or `lib/receipt-code.sh`. */
  path: string;
  content: Uint8Array | string;
  /** Default 0755: every file from edge-scripts/ is run or sourced by sh. */
  mode?: number;
}

export interface BuildSitePartOptions {
  site: { id: string; code: string; name: string };
  release: { id: string; version: string };
  fromRelease?: { id: string; version: string } | null;
  createdAt: Date;
  expiresAt: Date;
  /** `docker-compose.yml`, already rendered with images pinned by digest. */
  compose: string;
  /** Written as `compose/.env`; see `renderEnvFile` for what a value may hold. */
  env: Record<string, string>;
  /** The release's content package: listed in the manifest, its bytes are appended from shared storage. */
  contentPackage?: { fileName: string; sha256: string; size: number } | null;
  /** The shared images archive (full or delta): listed in the manifest, appended from shared storage. */
  imagesArchive: { sha256: string; size: number; delta: boolean };
  scripts: SitePartScript[];
  readme: string;
  signingKeyPem: string;
  keyFingerprint: string;
  /**
   * Files of this site only, written under `site/` (the receipt key, the one-time enrolment token):
   * mode 0600 unless given, as they are secrets of the site.
   */
  siteFiles?: { path: string; content: Uint8Array | string; mode?: number }[];
  /** Extra files under `keys/` beside `signing-key.pem`: the retired keys' rotation statements (`endorsed-by-<hex>.sig`). */
  keyFiles?: { path: string; content: Uint8Array }[];
  /** Extra files under `compose/` beside the compose file and `.env` (e.g. `outpost.conf`, mode 0644). */
  composeFiles?: { path: string; content: string }[];
  /**
   * The organisation's public key, written as `keys/signing-key.pem` so a first install can verify
   * the bundle (the installer then pins it; later bundles must match it or a key it was told about).
   */
  publicKeyPem?: string;
}

export interface BundleFile {
  /** Path inside the bundle folder, e.g. `compose/.env`. */
  path: string;
  size: number;
  /** Lowercase hex. */
  sha256: string;
  mode: number;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  site: { id: string; code: string; name: string };
  release: { id: string; version: string };
  fromRelease: { id: string; version: string } | null;
  created: string;
  expires: string;
  keyFingerprint: string;
  images: { path: string; delta: boolean };
  content: { path: string } | null;
  files: { path: string; size: number; sha256: string }[];
}

export interface SitePart {
  /** The bundle folder, `outpost-<site-code>-<version>`. */
  root: string;
  /** Every file of the bundle (paths relative to `root`), the shared ones and `manifest.json`/`manifest.sig` included. */
  files: BundleFile[];
  manifest: BundleManifest;
  manifestBytes: Uint8Array;
  /** DER ECDSA signature of `manifestBytes`, written as `manifest.sig`. */
  signature: Uint8Array;
  /** The per-site tar, without the trailer: the shared objects and the trailer follow it (`stitchPlan`). */
  tar: Uint8Array;
  tarSize: number;
  /** The objects to append after `tar`, in order, with their paths inside the tar; pass to `stitchPlan`. */
  shared: (SharedObject & { sha256: string; mtime: number })[];
}

export class SitePartError extends Error {
  override name = 'SitePartError';
}

const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const SCRIPT_PATH = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/**
 * The per-site part of a bundle: a few kilobytes of tar holding the signed manifest, compose files,
 * settings, scripts and README under `outpost-<site-code>-<version>/`. The manifest already lists the
 * shared images archive and content package with their sizes and checksums; their bytes are appended
 * when the download is stitched (`stitchPlan`). Same inputs give the same bytes, signature aside
 * (ECDSA signatures are randomised).
 *
 * @example
 * const part = buildSitePart({ site, release, createdAt, expiresAt, compose, env, imagesArchive, scripts, readme, signingKeyPem, keyFingerprint });
 * const plan = stitchPlan({ sitePartSize: part.tarSize, shared: part.shared });
 */
export function buildSitePart(options: BuildSitePartOptions): SitePart {
  const { site, release, createdAt, expiresAt } = options;
  if (!NAME_PART.test(site.code))
    throw new SitePartError(`site code "${site.code}" cannot be used in a folder name`);
  if (!NAME_PART.test(release.version))
    throw new SitePartError(`release version "${release.version}" cannot be used in a folder name`);
  if (!(expiresAt.getTime() > createdAt.getTime()))
    throw new SitePartError('a bundle must expire after it is created');
  const root = `outpost-${site.code}-${release.version}`;
  const mtime = Math.floor(createdAt.getTime() / 1000);

  const own: { path: string; bytes: Uint8Array; mode: number }[] = [
    { path: 'README.txt', bytes: utf8(options.readme), mode: 0o644 },
    { path: 'compose/docker-compose.yml', bytes: utf8(options.compose), mode: 0o644 },
    { path: 'compose/.env', bytes: utf8(renderEnvFile(options.env)), mode: 0o600 },
  ];
  for (const file of options.composeFiles ?? []) {
    if (
      !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file.path) ||
      file.path === 'docker-compose.yml' ||
      file.path === '.env'
    )
      throw new SitePartError(`compose file "${file.path}" must be a plain file name`);
    own.push({ path: `compose/${file.path}`, bytes: utf8(file.content), mode: 0o644 });
  }
  for (const file of options.siteFiles ?? []) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file.path))
      throw new SitePartError(`site file "${file.path}" must be a plain file name`);
    own.push({
      path: `site/${file.path}`,
      bytes: typeof file.content === 'string' ? utf8(file.content) : file.content,
      mode: file.mode ?? 0o600,
    });
  }
  for (const file of options.keyFiles ?? []) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file.path) || file.path === 'signing-key.pem')
      throw new SitePartError(`key file "${file.path}" must be a plain file name`);
    own.push({ path: `keys/${file.path}`, bytes: file.content, mode: 0o644 });
  }
  if (options.publicKeyPem)
    own.push({ path: 'keys/signing-key.pem', bytes: utf8(options.publicKeyPem), mode: 0o644 });
  const seen = new Set<string>();
  for (const script of [...options.scripts].sort((a, b) => compare(a.path, b.path))) {
    if (
      !SCRIPT_PATH.test(script.path) ||
      script.path.split('/').some((part) => part === '.' || part === '..')
    ) {
      throw new SitePartError(`script path "${script.path}" must be a plain relative path`);
    }
    if (seen.has(script.path)) throw new SitePartError(`script "${script.path}" is given twice`);
    seen.add(script.path);
    own.push({
      path: `scripts/${script.path}`,
      bytes: typeof script.content === 'string' ? utf8(script.content) : script.content,
      mode: script.mode ?? 0o755,
    });
  }

  const shared: { path: string; size: number; sha256: string }[] = [];
  if (options.contentPackage) {
    const { fileName, size, sha256 } = options.contentPackage;
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(fileName))
      throw new SitePartError(`content package file name "${fileName}" is not a plain file name`);
    shared.push({ path: `content/${fileName}`, size, sha256: checkedSha256(sha256, fileName) });
  }
  shared.push({
    path: IMAGES_PATH,
    size: options.imagesArchive.size,
    sha256: checkedSha256(options.imagesArchive.sha256, IMAGES_PATH),
  });
  for (const object of shared) {
    if (!Number.isSafeInteger(object.size) || object.size < 0)
      throw new SitePartError(`${object.path} has an invalid size ${object.size}`);
  }

  const ownFiles: BundleFile[] = own.map((file) => ({
    path: file.path,
    size: file.bytes.length,
    sha256: sha256Hex(file.bytes),
    mode: file.mode,
  }));
  const listed = [...ownFiles, ...shared.map((object) => ({ ...object, mode: 0o644 }))];
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    site: { id: site.id, code: site.code, name: site.name },
    release: { id: release.id, version: release.version },
    fromRelease: options.fromRelease
      ? { id: options.fromRelease.id, version: options.fromRelease.version }
      : null,
    created: createdAt.toISOString(),
    expires: expiresAt.toISOString(),
    keyFingerprint: options.keyFingerprint,
    images: { path: IMAGES_PATH, delta: options.imagesArchive.delta },
    content: options.contentPackage ? { path: `content/${options.contentPackage.fileName}` } : null,
    files: listed.map(({ path, size, sha256 }) => ({ path, size, sha256 })),
  };
  const manifestBytes = utf8(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = signManifest(manifestBytes, options.signingKeyPem);

  const entries = [
    { path: 'manifest.json', bytes: manifestBytes, mode: 0o644 },
    { path: 'manifest.sig', bytes: signature, mode: 0o644 },
    ...own,
  ];
  const directories = new Set<string>(['', ...shared.map((object) => dirname(object.path))]);
  for (const entry of entries) {
    for (let dir = dirname(entry.path); dir !== ''; dir = dirname(dir)) directories.add(dir);
  }
  const sortedDirectories = [...directories].sort(compare);

  const tarSize =
    sortedDirectories.length * BLOCK +
    entries.reduce((sum, entry) => sum + tarEntryLength(entry.bytes.length), 0);
  const tar = new Uint8Array(tarSize);
  let offset = 0;
  const write = (bytes: Uint8Array) => {
    tar.set(bytes, offset);
    offset += bytes.length;
  };
  for (const dir of sortedDirectories) {
    write(tarHeader({ name: tarPath(root, dir), size: 0, type: 'directory', mode: 0o755, mtime }));
  }
  for (const entry of entries) {
    write(tarHeader({ name: tarPath(root, entry.path), size: entry.bytes.length, mode: entry.mode, mtime }));
    write(entry.bytes);
    write(tarPadding(entry.bytes.length));
  }
  if (offset !== tarSize) throw new Error(`site part came to ${offset} bytes, expected ${tarSize}`);

  const files: BundleFile[] = [
    { path: 'manifest.json', size: manifestBytes.length, sha256: sha256Hex(manifestBytes), mode: 0o644 },
    { path: 'manifest.sig', size: signature.length, sha256: sha256Hex(signature), mode: 0o644 },
    ...listed,
  ];
  return {
    root,
    files,
    manifest,
    manifestBytes,
    signature,
    tar,
    tarSize,
    shared: shared.map((object) => ({
      path: tarPath(root, object.path),
      size: object.size,
      sha256: object.sha256,
      mtime,
    })),
  };
}

function tarPath(root: string, path: string): string {
  const name = path === '' ? `${root}/` : `${root}/${path}`;
  if (Buffer.byteLength(name) > 100)
    throw new SitePartError(`"${name}" is longer than the 100 bytes a tar name can hold`);
  return name;
}

function dirname(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

function checkedSha256(sha256: string, path: string): string {
  const hex = sha256.replace(/^sha256:/, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new SitePartError(`${path} needs a sha256 of 64 hex digits, got "${sha256}"`);
  return hex;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
