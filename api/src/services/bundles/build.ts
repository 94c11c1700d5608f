import { createHash } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { and, asc, eq, ne, sql } from 'drizzle-orm';
import {
  ArchiveError, RegistryClient, RegistryError, SitePartError, archiveImageFromRegistry, buildSitePart, copyBlobsToStore,
  defaultReadme, parseImageReference, stitchPlan, storeImagesArchive, type ArchiveImage, type SitePartScript,
} from '@outpost/bundler';
import { bundles, contentPackages, imageArchives, releaseImages, releases, sites } from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import { AppError } from '../../lib/errors.ts';
import { blobKey, recordArtifact, type BlobStore } from '../../lib/blob-store.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { credentialFor } from '../registries/credentials.ts';
import { renderCompose } from '../releases/compose.ts';
import { activeSigningKey, type OpenSigningKey } from './signing-keys.ts';

export interface BuildDeps {
  db: Db;
  store: BlobStore;
  secretBox: SecretBox;
  /** The scripts every bundle carries (edge-scripts/), read once. */
  scripts: SitePartScript[];
  /** Registry client tuning (tests shorten retries and timeouts). */
  registry?: { retries?: number; backoffMs?: number; timeoutMs?: number };
  /** The API's public URL, written into the site's `.env` so the installer can report back. */
  publicUrl?: string;
}

/** Why a build failed, in words for the person who asked for it; `retriable` when trying again later can help. */
export class BuildFailure extends Error {
  constructor(readonly code: string, message: string, readonly retriable: boolean) {
    super(message);
  }
}

/** Turns what a build threw into a plain failure: registries and stores that are down are worth retrying, bad content is not. */
export function classifyFailure(error: unknown): BuildFailure {
  if (error instanceof BuildFailure) return error;
  if (error instanceof RegistryError) {
    const retriable = error.kind === 'unreachable' || (error.kind === 'protocol' && (error.status ?? 500) >= 500);
    const code = { unreachable: 'REGISTRY_UNREACHABLE', 'digest-mismatch': 'DIGEST_MISMATCH', unauthorized: 'REGISTRY_AUTH_FAILED', denied: 'REGISTRY_AUTH_FAILED' }[error.kind as string] ?? 'REGISTRY_ERROR';
    return new BuildFailure(code, error.message, retriable);
  }
  if (error instanceof ArchiveError) return new BuildFailure(error.kind === 'digest-mismatch' ? 'DIGEST_MISMATCH' : 'INVALID_IMAGE', error.message, false);
  if (error instanceof SitePartError) return new BuildFailure('INVALID_BUNDLE', error.message, false);
  if (error instanceof AppError) return new BuildFailure(error.code, error.message, false);
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.$metadata || /ECONNREFUSED|ECONNRESET|socket|timeout|NoSuchBucket/i.test(`${e?.name} ${e?.message}`)) {
    return new BuildFailure('STORAGE_FAILED', `The object store refused or failed a write: ${e?.name ?? 'error'}${e?.message ? `: ${e.message}` : ''}`, true);
  }
  return new BuildFailure('BUILD_FAILED', e?.message ?? String(error), true);
}

async function headObject(store: BlobStore, key: string) {
  try {
    const head = await store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
    return { size: head.ContentLength ?? -1, etag: head.ETag?.replaceAll('"', '') ?? null };
  } catch (e) {
    if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
    throw e;
  }
}

/** `registry/repository:tag@digest`: the tag the site will know the image by, the digest that pins the bytes. */
function archiveReference(image: typeof releaseImages.$inferSelect, version: string): string {
  let tag: string | undefined;
  try { tag = parseImageReference(image.reference).tag; } catch { tag = undefined; }
  return `${image.registry}/${image.repository}:${tag ?? `outpost-${version}`}@${image.digest}`;
}

// ------------------------------------------------------------------------------------------------

/**
 * Builds one images archive: every blob of the release's images copied from its registry into the
 * object store (verified, each stored once), then `images.tgz` assembled from them and stored by its
 * digest. The archive is marked ready only after the stored object's size was read back.
 */
export async function buildImageArchive(deps: BuildDeps, archiveId: string): Promise<void> {
  const { db, store } = deps;
  const [archive] = await db.select().from(imageArchives).where(eq(imageArchives.id, archiveId)).limit(1);
  if (!archive || archive.state === 'ready') return;
  const [release] = await db.select().from(releases).where(eq(releases.id, archive.releaseId)).limit(1);
  if (!release) throw new BuildFailure('RELEASE_GONE', 'The release was deleted.', false);
  if (release.state === 'revoked') throw new BuildFailure('RELEASE_REVOKED', `Release ${release.version} was revoked; its images are not bundled.`, false);
  await db.update(imageArchives).set({ state: 'building', updatedAt: sql`now()` }).where(and(eq(imageArchives.id, archiveId), ne(imageArchives.state, 'ready')));

  const images = await db.select().from(releaseImages).where(eq(releaseImages.releaseId, release.id)).orderBy(asc(releaseImages.position), asc(releaseImages.name));
  if (images.length === 0) throw new BuildFailure('NO_IMAGES', `Release ${release.version} has no images.`, false);
  let omitLayers: string[] = [];
  let fromVersion: string | undefined;
  if (archive.fromReleaseId) {
    const [from] = await db.select({ version: releases.version }).from(releases).where(eq(releases.id, archive.fromReleaseId)).limit(1);
    fromVersion = from?.version;
    const fromImages = await db.select({ layers: releaseImages.layers }).from(releaseImages).where(eq(releaseImages.releaseId, archive.fromReleaseId));
    omitLayers = [...new Set(fromImages.flatMap((i) => i.layers.map((l) => l.digest)))];
  }

  const ctx = { db, orgId: archive.orgId, actor: { userId: null, tokenId: null, role: 'owner' as const } };
  const archiveImages: ArchiveImage[] = [];
  const omit = new Set(omitLayers);
  for (const image of images) {
    const credentials = await credentialFor(ctx, deps.secretBox, image.registry);
    const client = new RegistryClient({ registry: image.registry, ...(credentials ? { credentials } : {}), ...deps.registry });
    const fetched = await archiveImageFromRegistry(client, archiveReference(image, release.version));
    if (fetched.manifest.digest !== image.digest) {
      throw new BuildFailure('DIGEST_MISMATCH', `The registry served ${fetched.manifest.digest} for ${image.reference}, pinned at ${image.digest}.`, false);
    }
    // Blobs a delta leaves out need not be copied: the full archive's build copies them.
    await copyBlobsToStore({ client, repository: fetched.repository, blobs: [fetched.config, ...fetched.layers.filter((l) => !omit.has(l.digest))], s3: store });
    archiveImages.push(fetched);
  }
  const stored = await storeImagesArchive({ images: archiveImages, s3: store, ...(archive.fromReleaseId ? { omitLayers, ...(fromVersion ? { fromRelease: fromVersion } : {}) } : {}) });
  const head = await headObject(store, stored.key);
  if (!head || head.size !== stored.size) {
    throw new BuildFailure('STORAGE_FAILED', `The object store holds ${head ? head.size : 'nothing'} bytes of the images archive; it should hold ${stored.size}.`, true);
  }
  await recordArtifact(db, { sha256: stored.sha256, size: stored.size, mediaType: 'application/gzip', key: stored.key });
  await db.update(imageArchives).set({
    state: 'ready', sha256: stored.sha256, size: stored.size, tarSize: stored.tarSize, omittedLayers: stored.omitted,
    error: null, errorCode: null, readyAt: sql`now()`, updatedAt: sql`now()`,
  }).where(eq(imageArchives.id, archiveId));
}

/** An archive build gave up: the archive and every bundle waiting on it say why. */
export async function failImageArchive(db: Db, archiveId: string, failure: BuildFailure): Promise<void> {
  await db.update(imageArchives).set({ state: 'failed', errorCode: failure.code, error: failure.message, updatedAt: sql`now()` })
    .where(and(eq(imageArchives.id, archiveId), ne(imageArchives.state, 'ready')));
  await db.update(bundles).set({ state: 'failed', errorCode: failure.code, error: `The images archive could not be built: ${failure.message}`, updatedAt: sql`now()` })
    .where(and(eq(bundles.imageArchiveId, archiveId), sql`${bundles.state} in ('queued', 'building')`));
}

// ------------------------------------------------------------------------------------------------

export type SiteBundleOutcome = 'ready' | 'waiting' | 'skipped';

const plainFileName = (s: string) => s.replace(/[^A-Za-z0-9._+-]+/g, '-').replace(/^[-.]+/, '') || 'content';

/**
 * Builds one site's part: compose rendered for the site, `.env`, scripts, README, the signed manifest
 * listing the shared archives, stored content-addressed and read back before the bundle is ready.
 * 'waiting' when the images archive is not built yet (the job is put back without using an attempt).
 */
export async function buildSiteBundle(deps: BuildDeps, bundleId: string, keys: Map<string, OpenSigningKey> = new Map()): Promise<SiteBundleOutcome> {
  const { db, store } = deps;
  const [row] = await db.select({ bundle: bundles, site: sites, release: releases }).from(bundles)
    .innerJoin(sites, eq(sites.id, bundles.siteId)).innerJoin(releases, eq(releases.id, bundles.releaseId))
    .where(eq(bundles.id, bundleId)).limit(1);
  if (!row || row.bundle.state === 'ready' || row.bundle.state === 'failed') return 'skipped';
  const { bundle, site, release } = row;
  if (release.state === 'revoked') throw new BuildFailure('RELEASE_REVOKED', `Release ${release.version} was revoked before this bundle was built.`, false);
  if (!bundle.imageArchiveId) throw new BuildFailure('ARCHIVE_GONE', 'The images archive of this bundle was removed; ask for the bundle again.', false);

  const archives = await db.select().from(imageArchives).where(eq(imageArchives.releaseId, release.id));
  const archive = archives.find((a) => a.id === bundle.imageArchiveId);
  const full = archives.find((a) => a.fromReleaseId === null);
  if (!archive) throw new BuildFailure('ARCHIVE_GONE', 'The images archive of this bundle was removed; ask for the bundle again.', false);
  if (archive.state === 'failed') throw new BuildFailure(archive.errorCode ?? 'ARCHIVE_FAILED', `The images archive could not be built: ${archive.error ?? 'unknown error'}`, false);
  if (archive.state !== 'ready' || (full && full.state !== 'ready' && full.state !== 'failed')) return 'waiting';
  if (bundle.state === 'queued') await db.update(bundles).set({ state: 'building', updatedAt: sql`now()` }).where(eq(bundles.id, bundleId));

  const images = await db.select().from(releaseImages).where(eq(releaseImages.releaseId, release.id)).orderBy(asc(releaseImages.position));
  const compose = renderCompose({
    template: release.composeTemplate ?? '',
    images: images.map((i) => ({ name: i.name, registry: i.registry, repository: i.repository, digest: i.digest })),
    site: { code: site.code, name: site.name, region: site.region ?? '', district: site.district ?? '', facilityType: site.facilityType ?? '', timezone: site.timezone },
    version: release.version,
  });
  const [content] = release.contentPackageId
    ? await db.select().from(contentPackages).where(eq(contentPackages.id, release.contentPackageId)).limit(1)
    : [];
  const [fromRelease] = bundle.fromReleaseId
    ? await db.select({ id: releases.id, version: releases.version }).from(releases).where(eq(releases.id, bundle.fromReleaseId)).limit(1)
    : [];

  let key = keys.get(bundle.orgId);
  if (!key) { key = await activeSigningKey(db, deps.secretBox, bundle.orgId); keys.set(bundle.orgId, key); }
  const sharedBytes = (content?.size ?? 0) + archive.size!;
  const createdAt = new Date();
  const part = buildSitePart({
    site: { id: site.id, code: site.code, name: site.name },
    release: { id: release.id, version: release.version },
    fromRelease: fromRelease ?? null,
    createdAt,
    expiresAt: bundle.expiresAt ?? new Date(createdAt.getTime() + 90 * 86_400_000),
    compose,
    env: {
      COMPOSE_PROJECT_NAME: 'outpost',
      OUTPOST_SITE_ID: site.id, OUTPOST_SITE_CODE: site.code,
      OUTPOST_RELEASE: release.version, OUTPOST_RELEASE_ID: release.id, OUTPOST_BUNDLE_ID: bundle.id,
      ...(deps.publicUrl ? { OUTPOST_API_URL: deps.publicUrl } : {}),
    },
    contentPackage: content ? { fileName: `${plainFileName(`${content.name}-${content.version}`)}.zip`, sha256: content.sha256, size: content.size } : null,
    imagesArchive: { sha256: archive.sha256!, size: archive.size!, delta: archive.fromReleaseId !== null },
    scripts: deps.scripts,
    // Loading and starting take about as long as copying the images off the disk; ten minutes on top for backup and checks.
    readme: defaultReadme({ siteName: site.name, version: release.version, sizeBytes: sharedBytes, estimatedMinutes: 10 + sharedBytes / 50e6 / 60 }),
    signingKeyPem: key.privateKeyPem,
    keyFingerprint: key.fingerprint,
    publicKeyPem: key.publicKeyPem,
  });
  const plan = stitchPlan({ sitePartSize: part.tarSize, shared: part.shared });
  const sha256 = createHash('sha256').update(part.tar).digest('hex');
  const md5 = createHash('md5').update(part.tar);
  await store.client.send(new PutObjectCommand({
    Bucket: store.bucket, Key: blobKey(sha256), Body: part.tar, ContentLength: part.tarSize,
    ContentMD5: md5.copy().digest('base64'), ContentType: 'application/x-tar',
  }));
  const head = await headObject(store, blobKey(sha256));
  if (!head || head.size !== part.tarSize || (head.etag !== null && head.etag !== md5.digest('hex'))) {
    throw new BuildFailure('STORAGE_FAILED', 'The object store did not keep the bundle\'s site part intact (size or checksum differ on reading back).', true);
  }
  // Every shared object the download will read must be there, whole.
  for (const object of part.shared) {
    const h = await headObject(store, blobKey(object.sha256));
    if (!h || h.size !== object.size) throw new BuildFailure('STORAGE_FAILED', `A shared part of the bundle (${object.path}) is missing from the object store.`, true);
  }
  await recordArtifact(db, { sha256, size: part.tarSize, mediaType: 'application/x-tar', key: blobKey(sha256) });
  const fullSize = full?.state === 'ready' && full.size !== null ? plan.totalSize - archive.size! + full.size : plan.totalSize;
  const etag = createHash('sha256').update([sha256, ...part.shared.map((s) => s.sha256)].join(':')).digest('hex').slice(0, 32);
  await db.update(bundles).set({
    state: 'ready', sitePartSha256: sha256, sitePartSize: part.tarSize, size: plan.totalSize, fullSize,
    manifest: part.manifest as unknown as Record<string, unknown>, keyFingerprint: key.fingerprint, etag,
    error: null, errorCode: null, readyAt: sql`now()`, updatedAt: sql`now()`,
  }).where(and(eq(bundles.id, bundleId), ne(bundles.state, 'failed')));
  return 'ready';
}

/** A bundle build gave up for good. */
export async function failSiteBundle(db: Db, bundleId: string, failure: BuildFailure): Promise<void> {
  await db.update(bundles).set({ state: 'failed', errorCode: failure.code, error: failure.message, updatedAt: sql`now()` })
    .where(and(eq(bundles.id, bundleId), ne(bundles.state, 'ready')));
}
