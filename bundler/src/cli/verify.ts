import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import tar from 'tar-stream';
import { fingerprintOf, verifyManifest } from '../signing/signing.ts';
import { BUNDLE_FORMAT, type BundleManifest } from '../site/site-part.ts';

export interface VerifyOptions {
  /** PEM of the public key to trust. Without it, the bundle's own `keys/signing-key.pem` is used. */
  publicKeyPem?: string;
  /** With the bundled key: the fingerprint it must have (`SHA256:…`, as Outpost → Settings shows it). */
  fingerprint?: string;
  /**
   * Accept the bundle's own key without a fingerprint to compare. Anyone who edits a bundle can
   * re-sign it with a key of their own and ship that key, so this proves only that the bundle is
   * whole, not who made it; without `publicKeyPem`, `fingerprint` or this, verification fails.
   */
  trustBundleKey?: boolean;
  /** For the expiry check; default now. */
  now?: Date;
  /** Called with the number of bytes read, for a progress bar. */
  onBytes?: (bytes: number) => void;
}

export interface VerifyResult {
  /** True only when there is no problem (a note is not a problem). */
  ok: boolean;
  /** Each thing that is wrong, in plain words. */
  problems: string[];
  /** Things to know that are not wrong, e.g. that a bundled key's fingerprint must be compared by eye. */
  notes: string[];
  /** The bundle folder's name, `outpost-<site-code>-<version>`. */
  root: string | null;
  manifest: BundleManifest | null;
  /** Fingerprint of the key the signature was checked with. */
  keyFingerprint: string | null;
  /** Where that key came from. */
  keySource: 'given' | 'bundled' | null;
  /** Bytes of files read and checked. */
  bytesChecked: number;
}

interface Found {
  kind: 'file' | 'other';
  size: number;
  sha256?: string;
  /** Where a file listed in the manifest was found outside the folder (the USB `shared/` folder). */
  at?: string;
}

const MANIFEST = 'manifest.json';
const SIGNATURE = 'manifest.sig';
const BUNDLED_KEY = 'keys/signing-key.pem';
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
const MAX_KEY_BYTES = 64 * 1024;

/**
 * Checks a bundle the way the site's installer does (docs/cli.md, "Verification rules"): the
 * one-file tar, or a folder (extracted, or exported for USB with the shared objects in
 * `../shared/sha256/`). Every file is read as a stream; nothing large is held in memory.
 *
 * @example
 * const result = await verifyBundle('outpost-KE-001-2.4.0.tar', { fingerprint: 'SHA256:q3Jd…' });
 * if (!result.ok) for (const p of result.problems) console.log(p);
 */
export async function verifyBundle(target: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const stat = await fs.stat(target).catch(() => null);
  if (!stat) return failed(`${target} does not exist.`);
  if (stat.isDirectory()) {
    const root = await bundleFolder(target);
    if (typeof root !== 'string') return failed(root.problem);
    return check(await readFolder(root, options), options);
  }
  return check(await readTar(target, options), options);
}

function failed(problem: string): VerifyResult {
  return {
    ok: false,
    problems: [problem],
    notes: [],
    root: null,
    manifest: null,
    keyFingerprint: null,
    keySource: null,
    bytesChecked: 0,
  };
}

interface Listing {
  root: string | null;
  files: Map<string, Found>;
  /** Small files kept whole: the manifest, its signature, the bundled key. */
  kept: Map<string, Buffer>;
  problems: string[];
  bytes: number;
  /** For a folder: finds a listed file the folder lacks in the USB `shared/` folder. */
  lookupShared?: (sha256: string, size: number) => Promise<Found | null>;
}

async function check(listing: Listing, options: VerifyOptions): Promise<VerifyResult> {
  const problems = [...listing.problems];
  const notes: string[] = [];
  const result = (
    manifest: BundleManifest | null,
    keyFingerprint: string | null,
    keySource: VerifyResult['keySource'],
  ): VerifyResult => ({
    ok: problems.length === 0,
    problems,
    notes,
    root: listing.root,
    manifest,
    keyFingerprint,
    keySource,
    bytesChecked: listing.bytes,
  });

  const manifestBytes = listing.kept.get(MANIFEST);
  const signature = listing.kept.get(SIGNATURE);
  if (!manifestBytes)
    problems.push(
      `There is no ${MANIFEST} in the bundle folder: this is not an Outpost bundle, or it is incomplete.`,
    );
  if (!signature)
    problems.push(
      `There is no ${SIGNATURE} in the bundle folder: the bundle is not signed, or it is incomplete.`,
    );
  if (!manifestBytes) return result(null, null, null);

  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8')) as BundleManifest;
    if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest))
      throw new Error('not an object');
  } catch {
    problems.push(`${MANIFEST} is not valid JSON.`);
    return result(null, null, null);
  }
  if (manifest.format !== BUNDLE_FORMAT) {
    problems.push(
      `${MANIFEST} says format "${String(manifest.format)}"; this tool knows "${BUNDLE_FORMAT}".`,
    );
    return result(manifest, null, null);
  }

  // The signature first: nothing else in the manifest means anything until it is known to be ours.
  let keyPem = options.publicKeyPem;
  let keySource: VerifyResult['keySource'] = keyPem ? 'given' : null;
  if (!keyPem) {
    const bundled = listing.kept.get(BUNDLED_KEY);
    if (bundled) {
      keyPem = bundled.toString('utf8');
      keySource = 'bundled';
    } else {
      problems.push(`The bundle carries no ${BUNDLED_KEY}; give the organisation's public key with --key.`);
    }
  }
  let keyFingerprint: string | null = null;
  if (keyPem) {
    try {
      keyFingerprint = fingerprintOf(keyPem);
    } catch {
      problems.push(
        keySource === 'given'
          ? 'The key given with --key is not a public key in PEM form.'
          : `${BUNDLED_KEY} is not a public key in PEM form.`,
      );
      keyPem = undefined;
    }
  }
  if (keySource === 'bundled' && !options.fingerprint && !options.trustBundleKey) {
    problems.push(
      "No key to check the signature against: give the organisation's public key with --key, or its fingerprint with --fingerprint " +
        "(Outpost → Settings → Signing key). The bundle's own key proves nothing about who made it; --trust-bundle-key accepts it anyway.",
    );
  }
  if (keyPem && keyFingerprint) {
    if (keySource === 'bundled') {
      if (options.fingerprint) {
        if (normaliseFingerprint(options.fingerprint) !== keyFingerprint) {
          problems.push(
            `The bundle's key has fingerprint ${keyFingerprint}, not ${options.fingerprint}: it was not signed by the key you expect.`,
          );
        }
      } else {
        notes.push(
          `Signed with the bundle's own key, fingerprint ${keyFingerprint}. Compare it with the fingerprint shown in Outpost → Settings → Signing key: only if they are the same is the bundle really from your organisation.`,
        );
      }
    } else if (options.fingerprint && normaliseFingerprint(options.fingerprint) !== keyFingerprint) {
      problems.push(
        `The key given with --key has fingerprint ${keyFingerprint}, not ${options.fingerprint}.`,
      );
    }
    if (signature && !verifyManifest(manifestBytes, signature, keyPem)) {
      problems.push(
        `The signature (${SIGNATURE}) does not match ${MANIFEST} with the key ${keyFingerprint}: the manifest was changed, or it was signed with another key.`,
      );
    }
    if (manifest.keyFingerprint !== keyFingerprint) {
      problems.push(
        `${MANIFEST} names the signing key ${String(manifest.keyFingerprint)}, but it was checked with ${keyFingerprint}.`,
      );
    }
  }

  const expected = `outpost-${manifest.site?.code}-${manifest.release?.version}`;
  if (listing.root !== null && listing.root !== expected)
    problems.push(
      `The bundle folder is called "${listing.root}"; for this manifest it must be "${expected}".`,
    );
  const expires = Date.parse(String(manifest.expires));
  const now = options.now ?? new Date();
  if (!Number.isFinite(expires)) problems.push(`${MANIFEST} has no valid expiry date.`);
  else if (expires <= now.getTime())
    problems.push(`The bundle expired on ${new Date(expires).toISOString()}; ask for a new one.`);

  const files = Array.isArray(manifest.files) ? manifest.files : [];
  if (!Array.isArray(manifest.files)) problems.push(`${MANIFEST} lists no files.`);
  const listed = new Set<string>();
  for (const file of files) {
    if (
      typeof file?.path !== 'string' ||
      !isPlainPath(file.path) ||
      file.path === MANIFEST ||
      file.path === SIGNATURE
    ) {
      problems.push(
        `${MANIFEST} lists a file with a path that is not allowed: ${JSON.stringify(file?.path)}.`,
      );
      continue;
    }
    if (listed.has(file.path)) {
      problems.push(`${MANIFEST} lists ${file.path} twice.`);
      continue;
    }
    listed.add(file.path);
    let found = listing.files.get(file.path);
    if (
      !found &&
      listing.lookupShared &&
      isSharedPath(manifest, file.path) &&
      typeof file.sha256 === 'string'
    ) {
      found = (await listing.lookupShared(file.sha256, file.size)) ?? undefined;
    }
    const where = found?.at ? `${file.path} (found at ${found.at})` : file.path;
    if (!found) problems.push(`${file.path} is missing.`);
    else if (found.kind !== 'file') problems.push(`${file.path} is not a plain file.`);
    else if (found.size !== file.size)
      problems.push(
        `${where} has ${found.size} bytes; the manifest says ${file.size}${found.size < file.size ? ' (an incomplete copy?)' : ''}.`,
      );
    else if (found.sha256 !== file.sha256)
      problems.push(`${where} does not match its checksum: it was changed or damaged.`);
  }
  for (const p of [manifest.images?.path, manifest.content?.path]) {
    if (typeof p === 'string' && !listed.has(p))
      problems.push(`${MANIFEST} names ${p} but does not list it with a checksum.`);
  }
  if (!manifest.images?.path) problems.push(`${MANIFEST} names no images archive.`);
  for (const [p, found] of listing.files) {
    if (!listed.has(p) && p !== MANIFEST && p !== SIGNATURE)
      problems.push(
        `${p} is in the bundle but not in the manifest${found.kind === 'file' ? '' : ' (and is not a plain file)'}.`,
      );
  }
  return result(manifest, keyFingerprint, keySource);
}

/** The paths the installer may find outside the folder, in the USB `shared/` folder. */
function isSharedPath(manifest: BundleManifest, p: string): boolean {
  return p === manifest.images?.path || p === manifest.content?.path;
}

function isPlainPath(p: string): boolean {
  return (
    p.length > 0 &&
    !p.startsWith('/') &&
    !p.includes('\\') &&
    !p.includes('\0') &&
    p.split('/').every((part) => part !== '' && part !== '.' && part !== '..')
  );
}

function normaliseFingerprint(f: string): string {
  const t = f.trim();
  return /^sha256:/i.test(t) ? `SHA256:${t.slice(7)}` : `SHA256:${t}`;
}

function keepWhole(p: string): number | null {
  if (p === MANIFEST) return MAX_MANIFEST_BYTES;
  if (p === SIGNATURE || p === BUNDLED_KEY) return MAX_KEY_BYTES;
  return null;
}

// ---- the one-file tar ----

async function readTar(file: string, options: VerifyOptions): Promise<Listing> {
  const listing: Listing = { root: null, files: new Map(), kept: new Map(), problems: [], bytes: 0 };
  const roots = new Set<string>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const name = header.name.replace(/^\.\//, '');
    const slash = name.indexOf('/');
    const top = slash < 0 ? name : name.slice(0, slash);
    const rest = slash < 0 ? '' : name.slice(slash + 1).replace(/\/$/, '');
    if (name.startsWith('/') || !isPlainPath(name.replace(/\/$/, ''))) {
      listing.problems.push(
        `The tar holds an entry with a path that is not allowed: ${JSON.stringify(header.name)}.`,
      );
    } else {
      roots.add(top);
    }
    const type = header.type;
    if (type === 'directory') {
      stream.resume();
      stream.on('end', next);
      return;
    }
    const hash = createHash('sha256');
    const keepLimit = keepWhole(rest);
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (data) => {
      const chunk = data as Buffer;
      size += chunk.length;
      listing.bytes += chunk.length;
      hash.update(chunk);
      if (keepLimit !== null && size <= keepLimit) chunks.push(chunk);
    });
    stream.on('end', () => {
      if (rest === '') {
        listing.problems.push(`${name} is outside the bundle folder.`);
      } else if (listing.files.has(rest)) {
        listing.problems.push(`${rest} is in the tar twice.`);
      } else {
        listing.files.set(rest, {
          kind: type === 'file' || type === 'contiguous-file' ? 'file' : 'other',
          size,
          sha256: hash.digest('hex'),
        });
        if (keepLimit !== null && size <= keepLimit && (type === 'file' || type === 'contiguous-file'))
          listing.kept.set(rest, Buffer.concat(chunks));
      }
      next();
    });
    stream.on('error', next);
  });
  try {
    // Progress counts the file's bytes as read (tar headers and padding included), so the bar ends at 100%.
    const source = createReadStream(file);
    source.on('data', (chunk) => options.onBytes?.(chunk.length));
    await pipeline(source, extract);
  } catch (error) {
    const message = (error as Error).message;
    listing.problems.push(
      /unexpected end|premature|truncated/i.test(message)
        ? `${path.basename(file)} ends too early: the download or copy is incomplete.`
        : `${path.basename(file)} is not a readable tar file (${message}).`,
    );
  }
  if (roots.size > 1)
    listing.problems.push(
      `The tar holds more than one top folder (${[...roots].slice(0, 5).join(', ')}); a bundle has one.`,
    );
  listing.root = [...roots][0] ?? null;
  if (listing.root === null && listing.problems.length === 0)
    listing.problems.push(`${path.basename(file)} is empty.`);
  return listing;
}

// ---- a folder ----

/** The bundle folder: the one given, or the one `outpost-*` folder inside it (an export's site folder). */
async function bundleFolder(dir: string): Promise<string | { problem: string }> {
  if (await exists(path.join(dir, MANIFEST))) return path.resolve(dir);
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const candidates = [];
  for (const e of entries)
    if (e.isDirectory() && e.name.startsWith('outpost-') && (await exists(path.join(dir, e.name, MANIFEST))))
      candidates.push(e.name);
  if (candidates.length === 1) return path.resolve(dir, candidates[0]!);
  if (candidates.length > 1)
    return { problem: `${dir} holds several bundles (${candidates.join(', ')}); name one of them.` };
  return {
    problem: `${dir} holds no ${MANIFEST}: give the bundle folder (outpost-<site>-<version>) or the bundle tar.`,
  };
}

async function readFolder(root: string, options: VerifyOptions): Promise<Listing> {
  const listing: Listing = {
    root: path.basename(root),
    files: new Map(),
    kept: new Map(),
    problems: [],
    bytes: 0,
  };
  const walk = async (rel: string) => {
    for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p);
      else if (e.isFile())
        listing.files.set(p, { kind: 'file', size: (await fs.stat(path.join(root, p))).size });
      else listing.files.set(p, { kind: 'other', size: 0 }); // a symlink is not followed: it could point anywhere
    }
  };
  await walk('');
  const manifestFile = listing.files.get(MANIFEST);
  let listed = new Map<string, { size: number }>();
  if (manifestFile?.kind === 'file' && manifestFile.size <= MAX_MANIFEST_BYTES) {
    try {
      const m = JSON.parse(await fs.readFile(path.join(root, MANIFEST), 'utf8')) as BundleManifest;
      listed = new Map(
        (Array.isArray(m.files) ? m.files : [])
          .filter((f) => typeof f?.path === 'string')
          .map((f) => [f.path, f]),
      );
    } catch {
      /* reported by check() */
    }
  }
  // Hash only what the manifest lists (with the right size): an extra or wrong-size file is a problem already.
  for (const [p, found] of listing.files) {
    if (found.kind !== 'file') continue;
    const limit = keepWhole(p);
    if (limit !== null && found.size <= limit) {
      const bytes = await fs.readFile(path.join(root, p));
      listing.kept.set(p, bytes);
      found.sha256 = createHash('sha256').update(bytes).digest('hex');
      listing.bytes += bytes.length;
    } else if (listed.get(p)?.size === found.size) {
      found.sha256 = await hashStream(path.join(root, p), (n) => {
        listing.bytes += n;
        options.onBytes?.(n);
      });
    }
  }
  listing.lookupShared = async (sha256, size) => {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return null;
    for (const up of ['..', path.join('..', '..')]) {
      const candidate = path.join(root, up, 'shared', 'sha256', sha256);
      const s = await fs.lstat(candidate).catch(() => null);
      if (!s) continue;
      if (!s.isFile()) return { kind: 'other', size: 0, at: candidate };
      if (s.size !== size) return { kind: 'file', size: s.size, at: candidate };
      return {
        kind: 'file',
        size: s.size,
        sha256: await hashStream(candidate, (n) => {
          listing.bytes += n;
          options.onBytes?.(n);
        }),
        at: candidate,
      };
    }
    return null;
  };
  return listing;
}

async function hashStream(file: string, onBytes: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(
    createReadStream(file),
    new Writable({
      write(chunk: Buffer, _e, callback) {
        hash.update(chunk);
        onBytes(chunk.length);
        callback();
      },
    }),
  );
  return hash.digest('hex');
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}
