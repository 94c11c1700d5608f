import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { and, asc, eq, inArray, ne, sql } from 'drizzle-orm';
import {
  ArchiveError,
  RegistryClient,
  RegistryError,
  SitePartError,
  archiveImageFromRegistry,
  buildSitePart,
  defaultReadme,
  parseImageReference,
  recordImagesArchive,
  renderReleaseConf,
  stitchPlan,
  teeingBlobReader,
  blobKey,
  headSize,
  storeFailure,
  type ArchiveImage,
  type BlobSource,
  type SitePartScript,
} from '@outpost/bundler';
import {
  artifacts,
  bundles,
  contentPackages,
  imageArchives,
  releaseImages,
  releases,
  siteEnrolments,
  sites,
} from '../../db/schema/index.ts';
import type { Db } from '../../db/types.ts';
import { AppError } from '../../lib/errors.ts';
import type { BlobStore } from '../../lib/blob-store.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { credentialFor } from '../registries/credentials.ts';
import { composeImagesOf, composeSiteOf, outpostSection, renderCompose } from '../releases/compose.ts';
import type { RegistryClientSettings } from '../releases/registry-resolver.ts';
import { ENROLMENT_TOKEN_PREFIX } from '../sites/enrol.ts';
import { randomToken, sha256Hex } from '../../lib/crypto.ts';
import { activeSigningKey, keyEndorsements, type OpenSigningKey } from './signing-keys.ts';
import { missingBlobs } from './download.ts';
import { heldBlobs, recordHolders } from '../blobs/holders.ts';

export interface BuildDeps {
  db: Db;
  store: BlobStore;
  secretBox: SecretBox;
  /** The scripts every bundle carries (edge-scripts/), read once. */
  scripts: SitePartScript[];
  /** Registry client tuning (tests shorten retries and timeouts) and destination policy (allow-list, guarded fetch). */
  registry?: RegistryClientSettings;
  /** The API's public URL, written into the site's `.env` so the installer can report back. */
  publicUrl?: string;
}

/** Why a build failed, in words for the person who asked for it; `retriable` when trying again later can help. */
export class BuildFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retriable: boolean,
  ) {
    super(message);
  }
}

/** Turns what a build threw into a plain failure: registries and stores that are down are worth retrying, bad content is not. */
export function classifyFailure(error: unknown): BuildFailure {
  if (error instanceof BuildFailure) return error;
  if (error instanceof RegistryError) {
    const retriable =
      error.kind === 'unreachable' || (error.kind === 'protocol' && (error.status ?? 500) >= 500);
    const code =
      {
        'forbidden-address': 'REGISTRY_NOT_ALLOWED',
        unreachable: 'REGISTRY_UNREACHABLE',
        'digest-mismatch': 'DIGEST_MISMATCH',
        unauthorized: 'REGISTRY_AUTH_FAILED',
        denied: 'REGISTRY_AUTH_FAILED',
      }[error.kind as string] ?? 'REGISTRY_ERROR';
    return new BuildFailure(code, error.message, retriable);
  }
  if (error instanceof ArchiveError)
    return new BuildFailure(
      error.kind === 'digest-mismatch' ? 'DIGEST_MISMATCH' : 'INVALID_IMAGE',
      error.message,
      false,
    );
  if (error instanceof SitePartError) return new BuildFailure('INVALID_BUNDLE', error.message, false);
  if (error instanceof AppError) return new BuildFailure(error.code, error.message, false);
  const e = error as { name?: string; message?: string } | null;
  const store = storeFailure(error);
  if (store === 'timeout') {
    return new BuildFailure(
      'STORAGE_FAILED',
      'The object store stopped answering: the connection timed out.',
      true,
    );
  }
  if (store) {
    return new BuildFailure(
      'STORAGE_FAILED',
      `The object store refused or failed a write: ${e?.name ?? 'error'}${e?.message ? `: ${e.message}` : ''}`,
      true,
    );
  }
  return new BuildFailure('BUILD_FAILED', e?.message ?? String(error), true);
}

/** `registry/repository:tag@digest`: the tag the site will know the image by, the digest that pins the bytes. */
function archiveReference(image: typeof releaseImages.$inferSelect, version: string): string {
  let tag: string | undefined;
  try {
    tag = parseImageReference(image.reference).tag;
  } catch {
    tag = undefined;
  }
  return `${image.registry}/${image.repository}:${tag ?? `outpost-${version}`}@${image.digest}`;
}

// ------------------------------------------------------------------------------------------------

/**
 * Builds one images archive: every blob of the release's images copied from its registry into the
 * object store (verified, each stored once for all releases), while `images.tgz` is run through once
 * for its sha256 and layout. The archive is served from the blobs (`readImagesArchive`), never stored
 * itself; it is marked ready only after every blob's size was read back from the store (by the tee).
 */
export async function buildImageArchive(deps: BuildDeps, archiveId: string): Promise<void> {
  const { db, store } = deps;
  const [archive] = await db.select().from(imageArchives).where(eq(imageArchives.id, archiveId)).limit(1);
  if (!archive || archive.state === 'ready') return;
  const [release] = await db.select().from(releases).where(eq(releases.id, archive.releaseId)).limit(1);
  if (!release) throw new BuildFailure('RELEASE_GONE', 'The release was deleted.', false);
  if (release.state === 'revoked')
    throw new BuildFailure(
      'RELEASE_REVOKED',
      `Release ${release.version} was revoked; its images are not bundled.`,
      false,
    );
  await db
    .update(imageArchives)
    .set({ state: 'building', updatedAt: sql`now()` })
    .where(and(eq(imageArchives.id, archiveId), ne(imageArchives.state, 'ready')));

  const images = await db
    .select()
    .from(releaseImages)
    .where(eq(releaseImages.releaseId, release.id))
    .orderBy(asc(releaseImages.position), asc(releaseImages.name));
  if (images.length === 0)
    throw new BuildFailure('NO_IMAGES', `Release ${release.version} has no images.`, false);
  let omitLayers: string[] = [];
  let fromVersion: string | undefined;
  if (archive.fromReleaseId) {
    const [from] = await db
      .select({ version: releases.version })
      .from(releases)
      .where(eq(releases.id, archive.fromReleaseId))
      .limit(1);
    fromVersion = from?.version;
    const fromImages = await db
      .select({ layers: releaseImages.layers })
      .from(releaseImages)
      .where(eq(releaseImages.releaseId, archive.fromReleaseId));
    omitLayers = [...new Set(fromImages.flatMap((i) => i.layers.map((l) => l.digest)))];
  }

  const ctx = { db, orgId: archive.orgId, actor: { userId: null, tokenId: null, role: 'owner' as const } };
  const archiveImages: ArchiveImage[] = [];
  const sources = new Map<string, BlobSource>();
  for (const image of images) {
    const credentials = await credentialFor(ctx, deps.secretBox, image.registry);
    const client = new RegistryClient({
      registry: image.registry,
      ...(credentials ? { credentials } : {}),
      ...deps.registry,
    });
    const fetched = await archiveImageFromRegistry(client, archiveReference(image, release.version));
    if (fetched.manifest.digest !== image.digest) {
      throw new BuildFailure(
        'DIGEST_MISMATCH',
        `The registry served ${fetched.manifest.digest} for ${image.reference}, pinned at ${image.digest}.`,
        false,
      );
    }
    for (const blob of [fetched.config, ...fetched.layers])
      if (!sources.has(blob.digest)) sources.set(blob.digest, { client, repository: fetched.repository });
    archiveImages.push(fetched);
  }
  // Each blob comes from its registry once and is stored content-addressed while the archive's bytes
  // are run through once for their sha256 (a delta's left-out layers are not fetched at all). The
  // archive itself is not stored: downloads produce it from the blobs with its layout.
  // The store is shared by every organisation: a blob this organisation never fetched from its own
  // registry (or that another one stored) is fetched and verified before it enters the archive.
  const held = await heldBlobs(db, archive.orgId, [...sources.keys()]);
  const tee = teeingBlobReader({ s3: store, sources, trusted: (digest) => held.has(digest) });
  const read = new Set<string>();
  const recorded = await recordImagesArchive({
    images: archiveImages,
    readBlob: (descriptor) => {
      read.add(descriptor.digest);
      return tee.readBlob(descriptor);
    },
    ...(archive.fromReleaseId ? { omitLayers, ...(fromVersion ? { fromRelease: fromVersion } : {}) } : {}),
  });
  // Every blob of the layout went through the tee: found in the store with its size, or uploaded and
  // its size read back. settled() rejects if any upload did not end that way.
  await tee.settled();
  await recordHolders(
    db,
    [...read].filter((d) => !held.has(d)).map((digest) => ({ orgId: archive.orgId, digest })),
  );
  await db
    .update(imageArchives)
    .set({
      state: 'ready',
      sha256: recorded.sha256,
      size: recorded.size,
      tarSize: recorded.tarSize,
      omittedLayers: recorded.omitted,
      layout: recorded.layout,
      error: null,
      errorCode: null,
      readyAt: sql`now()`,
      updatedAt: sql`now()`,
    })
    .where(eq(imageArchives.id, archiveId));
}

/** An archive build gave up: the archive and every bundle waiting on it say why. */
export async function failImageArchive(db: Db, archiveId: string, failure: BuildFailure): Promise<void> {
  await db
    .update(imageArchives)
    .set({ state: 'failed', errorCode: failure.code, error: failure.message, updatedAt: sql`now()` })
    .where(and(eq(imageArchives.id, archiveId), ne(imageArchives.state, 'ready')));
  await db
    .update(bundles)
    .set({
      state: 'failed',
      errorCode: failure.code,
      error: `The images archive could not be built: ${failure.message}`,
      updatedAt: sql`now()`,
    })
    .where(and(eq(bundles.imageArchiveId, archiveId), sql`${bundles.state} in ('queued', 'building')`));
}

// ------------------------------------------------------------------------------------------------

export type SiteBundleOutcome =
  { state: 'ready' | 'waiting' | 'skipped' } | { state: 'error'; error: unknown };

/** What a batch of site bundles shares: each organisation's opened key, shared objects already checked. */
export interface BatchCache {
  keys: Map<string, OpenSigningKey>;
  stored: Set<string>;
}
export const newBatchCache = (): BatchCache => ({ keys: new Map(), stored: new Set() });

const plainFileName = (s: string) => s.replace(/[^A-Za-z0-9._+-]+/g, '-').replace(/^[-.]+/, '') || 'content';

/** What every bundle of one release needs, loaded once per batch. */
async function loadReleaseParts(db: Db, releaseId: string) {
  const archives = await db.select().from(imageArchives).where(eq(imageArchives.releaseId, releaseId));
  const images = await db
    .select()
    .from(releaseImages)
    .where(eq(releaseImages.releaseId, releaseId))
    .orderBy(asc(releaseImages.position));
  const [release] = await db.select().from(releases).where(eq(releases.id, releaseId)).limit(1);
  const [content] = release?.contentPackageId
    ? await db.select().from(contentPackages).where(eq(contentPackages.id, release.contentPackageId)).limit(1)
    : [];
  // Where each shared object is stored (an images archive is written once, to its own key).
  const shas = [...archives.map((a) => a.sha256), content?.sha256].filter((x): x is string => !!x);
  const keys = new Map(
    shas.length === 0
      ? []
      : (
          await db
            .select({ sha256: artifacts.sha256, key: artifacts.key })
            .from(artifacts)
            .where(inArray(artifacts.sha256, shas))
        ).map((a) => [a.sha256, a.key]),
  );
  return { archives, images, content, keys };
}

interface BuiltPart {
  id: string;
  /** The one-time enrolment token's row, written with the batch (only its hash is kept). */
  enrolment: typeof siteEnrolments.$inferInsert;
  orgId: string;
  sha256: string;
  partSize: number;
  size: number;
  fullSize: number;
  manifest: unknown;
  fingerprint: string;
  etag: string;
}

/**
 * Builds the site parts of a batch of bundles: compose rendered for each site, `.env`, scripts,
 * README, the signed manifest listing the shared archives; each part stored content-addressed and
 * read back (size, MD5 ETag) before its bundle is marked ready. The database is asked once per
 * batch, not per bundle: a 5,000-site wave is a few hundred statements.
 * A bundle whose images archive is not built yet comes back 'waiting'.
 */
export async function buildSiteBundles(
  deps: BuildDeps,
  bundleIds: string[],
  cache: BatchCache = newBatchCache(),
  concurrency = 8,
): Promise<Map<string, SiteBundleOutcome>> {
  const { db } = deps;
  const outcomes = new Map<string, SiteBundleOutcome>();
  if (bundleIds.length === 0) return outcomes;
  const rows = await db
    .select({ bundle: bundles, site: sites, release: releases })
    .from(bundles)
    .innerJoin(sites, eq(sites.id, bundles.siteId))
    .innerJoin(releases, eq(releases.id, bundles.releaseId))
    .where(inArray(bundles.id, bundleIds));
  const byId = new Map(rows.map((r) => [r.bundle.id, r]));
  const perRelease = new Map<string, Awaited<ReturnType<typeof loadReleaseParts>>>();
  for (const releaseId of new Set(rows.map((r) => r.release.id)))
    perRelease.set(releaseId, await loadReleaseParts(db, releaseId));
  const fromIds = [
    ...new Set(rows.map((r) => r.bundle.fromReleaseId).filter((id): id is string => id !== null)),
  ];
  const fromVersions = new Map(
    fromIds.length === 0
      ? []
      : (
          await db
            .select({ id: releases.id, version: releases.version })
            .from(releases)
            .where(inArray(releases.id, fromIds))
        ).map((r) => [r.id, r]),
  );

  const toBuild: string[] = [];
  for (const id of bundleIds) {
    const row = byId.get(id);
    if (!row || row.bundle.state === 'ready' || row.bundle.state === 'failed') {
      outcomes.set(id, { state: 'skipped' });
      continue;
    }
    const { bundle, release } = row;
    const parts = perRelease.get(release.id)!;
    const archive = parts.archives.find((a) => a.id === bundle.imageArchiveId);
    const full = parts.archives.find((a) => a.fromReleaseId === null);
    const fail = (error: unknown) => outcomes.set(id, { state: 'error', error });
    if (release.state === 'revoked')
      fail(
        new BuildFailure(
          'RELEASE_REVOKED',
          `Release ${release.version} was revoked before this bundle was built.`,
          false,
        ),
      );
    else if (!archive)
      fail(
        new BuildFailure(
          'ARCHIVE_GONE',
          'The images archive of this bundle was removed; ask for the bundle again.',
          false,
        ),
      );
    else if (archive.state === 'failed')
      fail(
        new BuildFailure(
          archive.errorCode ?? 'ARCHIVE_FAILED',
          `The images archive could not be built: ${archive.error ?? 'unknown error'}`,
          false,
        ),
      );
    else if (archive.state !== 'ready' || (full && full.state !== 'ready' && full.state !== 'failed'))
      outcomes.set(id, { state: 'waiting' });
    else toBuild.push(id);
  }
  if (toBuild.length === 0) return outcomes;
  await db
    .update(bundles)
    .set({ state: 'building', updatedAt: sql`now()` })
    .where(and(inArray(bundles.id, toBuild), eq(bundles.state, 'queued')));
  await ensureReceiptKeys(
    deps,
    toBuild.map((id) => byId.get(id)!.site),
  );

  const built: BuiltPart[] = [];
  const queue = [...toBuild];
  const one = async () => {
    for (let id = queue.shift(); id; id = queue.shift()) {
      try {
        const row = byId.get(id)!;
        built.push(
          await buildOnePart(
            deps,
            cache,
            row,
            perRelease.get(row.release.id)!,
            row.bundle.fromReleaseId ? (fromVersions.get(row.bundle.fromReleaseId) ?? null) : null,
          ),
        );
      } catch (error) {
        outcomes.set(id, { state: 'error', error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, toBuild.length)) }, one));
  if (built.length === 0) return outcomes;

  await db
    .insert(artifacts)
    .values(
      built.map((b) => ({
        sha256: b.sha256,
        size: b.partSize,
        mediaType: 'application/x-tar',
        key: blobKey(`sha256:${b.sha256}`),
      })),
    )
    .onConflictDoNothing();
  // One statement for the batch's enrolment tokens, before any of its bundles can be downloaded.
  await db.insert(siteEnrolments).values(built.map((b) => b.enrolment));
  await recordHolders(
    db,
    built.map((b) => ({ orgId: b.orgId, digest: b.sha256 })),
  );
  // One statement marks the whole batch ready; a bundle failed meanwhile (e.g. its release revoked) stays failed.
  await db.execute(sql`
    update bundles b set state = 'ready', site_part_sha256 = v.sha256, site_part_size = v.part_size, size = v.size, full_size = v.full_size,
      manifest = v.manifest, key_fingerprint = v.fingerprint, etag = v.etag, error = null, error_code = null, ready_at = now(), updated_at = now()
    from jsonb_to_recordset(${JSON.stringify(
      built.map((b) => ({
        id: b.id,
        sha256: b.sha256,
        part_size: b.partSize,
        size: b.size,
        full_size: b.fullSize,
        manifest: b.manifest,
        fingerprint: b.fingerprint,
        etag: b.etag,
      })),
    )}::jsonb) as v(id uuid, sha256 text, part_size integer, size bigint, full_size bigint, manifest jsonb, fingerprint text, etag text)
    where b.id = v.id and b.state <> 'failed'`);
  for (const b of built) outcomes.set(b.id, { state: 'ready' });
  return outcomes;
}

async function buildOnePart(
  deps: BuildDeps,
  cache: BatchCache,
  row: {
    bundle: typeof bundles.$inferSelect;
    site: typeof sites.$inferSelect;
    release: typeof releases.$inferSelect;
  },
  parts: Awaited<ReturnType<typeof loadReleaseParts>>,
  fromRelease: { id: string; version: string } | null,
): Promise<BuiltPart> {
  const { db, store } = deps;
  const { bundle, site, release } = row;
  const archive = parts.archives.find((a) => a.id === bundle.imageArchiveId)!;
  const full = parts.archives.find((a) => a.fromReleaseId === null);
  const compose = renderCompose({
    template: release.composeTemplate ?? '',
    images: composeImagesOf(parts.images),
    site: composeSiteOf(site),
    version: release.version,
  });
  let key = cache.keys.get(bundle.orgId);
  if (!key) {
    key = await activeSigningKey(db, deps.secretBox, bundle.orgId);
    key = { ...key, endorsements: await keyEndorsements(db, deps.secretBox, bundle.orgId, key) };
    cache.keys.set(bundle.orgId, key);
  }
  const receiptKey = await siteReceiptKey(deps, site);
  const expiresAt = bundle.expiresAt ?? new Date(Date.now() + 90 * 86_400_000);
  // Single use, and it expires with the bundle: a leaked bundle cannot stand for the site for long (docs/decisions.md).
  const enrolmentToken = randomToken(ENROLMENT_TOKEN_PREFIX);
  const enrolment = {
    orgId: bundle.orgId,
    siteId: site.id,
    bundleId: bundle.id,
    tokenHash: await sha256Hex(enrolmentToken),
    expiresAt,
  };
  const section = outpostSection(compose);
  const content = parts.content;
  const sharedBytes = (content?.size ?? 0) + archive.size!;
  const createdAt = new Date();
  const part = buildSitePart({
    site: { id: site.id, code: site.code, name: site.name },
    release: { id: release.id, version: release.version },
    fromRelease,
    createdAt,
    expiresAt,
    compose,
    composeFiles: [
      {
        path: 'outpost.conf',
        content: renderReleaseConf({
          waitSeconds: section['wait-seconds'],
          healthUrls: section['health-urls'],
          services: Object.entries(section.services).map(([name, s]) => ({
            name,
            backup: s.backup,
            restore: s.restore,
          })),
        }),
      },
    ],
    siteFiles: [
      { path: 'receipt-key', content: `${Buffer.from(receiptKey).toString('hex')}\n` },
      { path: 'enrolment-token', content: `${enrolmentToken}\n` },
    ],
    env: {
      COMPOSE_PROJECT_NAME: 'outpost',
      OUTPOST_SITE_ID: site.id,
      OUTPOST_SITE_CODE: site.code,
      OUTPOST_RELEASE: release.version,
      OUTPOST_RELEASE_ID: release.id,
      OUTPOST_BUNDLE_ID: bundle.id,
      OUTPOST_LANGUAGE: site.language,
      ...(content ? { OUTPOST_CONTENT_VERSION: content.version } : {}),
      ...(deps.publicUrl ? { OUTPOST_API_URL: deps.publicUrl } : {}),
    },
    contentPackage: content
      ? {
          fileName: `${plainFileName(`${content.name}-${content.version}`)}.zip`,
          sha256: content.sha256,
          size: content.size,
        }
      : null,
    imagesArchive: { sha256: archive.sha256!, size: archive.size!, delta: archive.fromReleaseId !== null },
    scripts: deps.scripts,
    // Loading and starting take about as long as copying the images off the disk; ten minutes on top for backup and checks.
    readme: defaultReadme({
      siteName: site.name,
      version: release.version,
      sizeBytes: sharedBytes,
      estimatedMinutes: 10 + sharedBytes / 50e6 / 60,
      language: site.language,
    }),
    signingKeyPem: key.privateKeyPem,
    keyFingerprint: key.fingerprint,
    publicKeyPem: key.publicKeyPem,
    keyFiles: key.endorsements ?? [],
  });
  const plan = stitchPlan({ sitePartSize: part.tarSize, shared: part.shared });
  const sha256 = createHash('sha256').update(part.tar).digest('hex');
  const md5 = createHash('md5').update(part.tar);
  // Content-MD5 makes the store refuse bytes that arrive changed; the ETag it answers is the MD5 of
  // what it stored (a single PUT), checked against ours: the part is read back without a second request.
  const put = await store.client.send(
    new PutObjectCommand({
      Bucket: store.bucket,
      Key: blobKey(`sha256:${sha256}`),
      Body: part.tar,
      ContentLength: part.tarSize,
      ContentMD5: md5.copy().digest('base64'),
      ContentType: 'application/x-tar',
    }),
  );
  const storedEtag = put.ETag?.replaceAll('"', '') ?? null;
  if (storedEtag !== md5.digest('hex')) {
    // Stores whose ETag is not the MD5 (some encrypt at rest): read the object's size back instead.
    if ((await headSize(store, blobKey(`sha256:${sha256}`))) !== part.tarSize) {
      throw new BuildFailure(
        'STORAGE_FAILED',
        "The object store did not keep the bundle's site part intact (its size or checksum differ on reading back).",
        true,
      );
    }
  }
  // Every shared object the download will read must be there, whole (for the images archive: its blobs).
  if (archive.layout && (await missingBlobs(store, archive.layout, cache.stored)).length > 0) {
    throw new BuildFailure(
      'STORAGE_FAILED',
      "Some of the images archive's blobs are missing from the object store.",
      true,
    );
  }
  for (const object of part.shared) {
    if (archive.layout && object.sha256 === archive.sha256) continue;
    if (cache.stored.has(`${object.sha256}/${object.size}`)) continue;
    if (
      (await headSize(store, parts.keys.get(object.sha256) ?? blobKey(`sha256:${object.sha256}`))) !==
      object.size
    )
      throw new BuildFailure(
        'STORAGE_FAILED',
        `A shared part of the bundle (${object.path}) is missing from the object store.`,
        true,
      );
    cache.stored.add(`${object.sha256}/${object.size}`);
  }
  const fullSize =
    full?.state === 'ready' && full.size !== null
      ? plan.totalSize - archive.size! + full.size
      : plan.totalSize;
  const etag = createHash('sha256')
    .update([sha256, ...part.shared.map((o) => o.sha256)].join(':'))
    .digest('hex')
    .slice(0, 32);
  return {
    id: bundle.id,
    orgId: bundle.orgId,
    enrolment,
    sha256,
    partSize: part.tarSize,
    size: plan.totalSize,
    fullSize,
    manifest: part.manifest,
    fingerprint: key.fingerprint,
    etag,
  };
}

/**
 * Sites of a batch that have no receipt key yet (no device token was ever issued) get one, sealed:
 * the installer signs receipt codes with it. One statement for the batch; two batches at once agree
 * on one key per site (the first write wins, the other reads it back).
 */
async function ensureReceiptKeys(deps: BuildDeps, batch: (typeof sites.$inferSelect)[]): Promise<void> {
  const missing = [...new Map(batch.filter((s) => !s.receiptKeySealed).map((s) => [s.id, s])).values()];
  if (missing.length === 0) return;
  const sealed = await Promise.all(
    missing.map(async (s) => ({
      id: s.id,
      sealed: await deps.secretBox.seal(crypto.getRandomValues(new Uint8Array(32)), `receipt:${s.id}`),
    })),
  );
  await deps.db.execute(sql`
    update sites s set receipt_key_sealed = v.sealed
    from jsonb_to_recordset(${JSON.stringify(sealed)}::jsonb) as v(id uuid, sealed text)
    where s.id = v.id and s.receipt_key_sealed is null`);
  const rows = await deps.db
    .select({ id: sites.id, sealed: sites.receiptKeySealed })
    .from(sites)
    .where(
      inArray(
        sites.id,
        missing.map((s) => s.id),
      ),
    );
  const byId = new Map(rows.map((r) => [r.id, r.sealed]));
  for (const s of batch) if (!s.receiptKeySealed) s.receiptKeySealed = byId.get(s.id) ?? null;
}

function siteReceiptKey(deps: BuildDeps, site: typeof sites.$inferSelect): Promise<Uint8Array> {
  if (!site.receiptKeySealed) throw new BuildFailure('BUILD_FAILED', 'The site has no receipt key.', true);
  return deps.secretBox.open(site.receiptKeySealed, `receipt:${site.id}`);
}

/** A bundle build gave up for good. */
export async function failSiteBundle(db: Db, bundleId: string, failure: BuildFailure): Promise<void> {
  await db
    .update(bundles)
    .set({ state: 'failed', errorCode: failure.code, error: failure.message, updatedAt: sql`now()` })
    .where(and(eq(bundles.id, bundleId), ne(bundles.state, 'ready')));
}
