import { createHash } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { artifacts, bundleChecksums, bundles, memberships } from '../../db/schema/index.ts';
import { AppError } from '../../lib/errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import { get, type BlobStore } from '../../lib/blob-store.ts';
import { readWhole, type ByteSource } from '../../lib/byte-source.ts';
import type { ServiceCtx } from '../context.ts';
import { bundleBytes, downloadBundle } from './deliver.ts';
import { bundleFileName, loadBundle } from './list.ts';

const notReady = () => new AppError('conflict', 'BUNDLE_NOT_READY', 'This bundle is not ready yet.');

async function readyBundle(ctx: ServiceCtx, id: string) {
  const row = await loadBundle(ctx, id);
  if (row.bundle.state !== 'ready' || row.bundle.size === null || !row.bundle.etag) throw notReady();
  if (row.bundle.expiresAt && row.bundle.expiresAt.getTime() <= Date.now()) {
    throw new AppError(
      'conflict',
      'BUNDLE_EXPIRED',
      'This bundle has expired (sites refuse expired bundles); ask for a new one.',
    );
  }
  return row;
}

const linkMessage = (bundleId: string, orgId: string, userId: string, expires: number) =>
  `bundle-link\n${bundleId}\n${orgId}\n${userId}\n${expires}`;

/**
 * A short-lived link to a bundle's one-file download that needs no session, so the site's server
 * can fetch it with `curl -C - -o FILE 'LINK'` (resumable: ranges work as on the signed-in download).
 * The link carries who made it, so its downloads count under that person. Making one writes nothing.
 */
export async function bundleSiteLink({
  ctx,
  box,
  baseUrl,
  input,
}: {
  ctx: ServiceCtx;
  box: SecretBox;
  baseUrl: string;
  input: { id: string; expiresInSeconds?: number };
}) {
  const row = await readyBundle(ctx, input.id);
  if (!ctx.actor.userId)
    throw new AppError('forbidden', 'FORBIDDEN', 'Only a signed-in person can make a download link.');
  const expires = Math.floor(Date.now() / 1000) + (input.expiresInSeconds ?? 6 * 3600);
  const signature = await box.mac(linkMessage(row.bundle.id, ctx.orgId, ctx.actor.userId, expires));
  const fileName = bundleFileName(row.siteCode, row.version);
  const url =
    `${baseUrl.replace(/\/+$/, '')}/api/v1/bundle-links/${row.bundle.id}/${encodeURIComponent(fileName)}` +
    `?user=${ctx.actor.userId}&expires=${expires}&signature=${signature}`;
  return { url, fileName, size: row.bundle.size!, expiresAt: new Date(expires * 1000).toISOString() };
}

/** The download behind a link from `bundleSiteLink`: the signature and expiry are the authorisation. */
export async function downloadBundleLink({
  db,
  store,
  box,
  input,
}: {
  db: ServiceCtx['db'];
  store: BlobStore;
  box: SecretBox;
  input: {
    id: string;
    user: string | undefined;
    expires: string | undefined;
    signature: string | undefined;
  };
}): Promise<ByteSource> {
  const expires = Number(input.expires);
  const refused = new AppError(
    'forbidden',
    'LINK_INVALID',
    'This download link is not valid or has expired; ask for a new one.',
  );
  const uuid = /^[0-9a-f-]{36}$/;
  if (
    !uuid.test(input.id) ||
    !input.user ||
    !uuid.test(input.user) ||
    !Number.isSafeInteger(expires) ||
    !input.signature
  )
    throw refused;
  const [b] = await db
    .select({ orgId: bundles.orgId })
    .from(bundles)
    .where(eq(bundles.id, input.id))
    .limit(1);
  if (!b || !(await box.verifyMac(linkMessage(input.id, b.orgId, input.user, expires), input.signature)))
    throw refused;
  if (expires * 1000 <= Date.now())
    throw new AppError('forbidden', 'LINK_EXPIRED', 'This download link has expired; ask for a new one.');
  // The person who made the link may have lost the site since: the link dies with their access.
  const [m] = await db
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.orgId, b.orgId), eq(memberships.userId, input.user)))
    .limit(1);
  if (!m) throw refused;
  const ctx: ServiceCtx = { db, orgId: b.orgId, actor: { userId: input.user, tokenId: null, role: m.role } };
  await readyBundle(ctx, input.id).catch(() => {
    throw refused;
  });
  return downloadBundle({ ctx, store, input: { id: input.id } });
}

/**
 * The sha256 of the one-file download, to compare with the downloaded file (`sha256sum FILE`).
 * Worked out on first request by reading the stitched file through the hash (streamed), then kept.
 */
export async function bundleChecksum({
  ctx,
  store,
  input,
}: {
  ctx: ServiceCtx;
  store: BlobStore;
  input: { id: string };
}) {
  const row = await readyBundle(ctx, input.id);
  const [kept] = await ctx.db
    .select()
    .from(bundleChecksums)
    .where(eq(bundleChecksums.bundleId, row.bundle.id))
    .limit(1);
  if (kept && kept.etag === row.bundle.etag) return { sha256: kept.sha256, size: kept.size };
  // Reading the bytes for Outpost itself is not a download: nothing is recorded.
  const { source } = await bundleBytes(ctx, store, row.bundle.id);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of await source.open(0, source.size)) {
    hash.update(chunk);
    size += chunk.length;
  }
  const sha256 = hash.digest('hex');
  await ctx.db
    .insert(bundleChecksums)
    .values({ bundleId: row.bundle.id, orgId: ctx.orgId, etag: row.bundle.etag!, sha256, size })
    .onConflictDoUpdate({
      target: bundleChecksums.bundleId,
      set: { etag: row.bundle.etag!, sha256, size, computedAt: new Date() },
    });
  return { sha256, size };
}

/**
 * The bundle's README.txt, read out of its stored per-site part (a plain tar): exactly the text the
 * site gets, whatever language or wording the bundler wrote it in.
 */
export async function bundleReadme({
  ctx,
  store,
  input,
}: {
  ctx: ServiceCtx;
  store: BlobStore;
  input: { id: string };
}) {
  const row = await readyBundle(ctx, input.id);
  if (!row.bundle.sitePartSha256) throw notReady();
  const [artifact] = await ctx.db
    .select({ key: artifacts.key })
    .from(artifacts)
    .where(eq(artifacts.sha256, row.bundle.sitePartSha256))
    .limit(1);
  const read = await get(store, row.bundle.sitePartSha256, undefined, artifact?.key);
  const tar = await readWhole(read.body);
  const text = readmeFromTar(tar);
  if (text === null) throw new AppError('conflict', 'BUNDLE_NOT_READY', 'This bundle has no README.txt.');
  return { text };
}

/** README.txt at the top of the bundle's folder, from a ustar archive (512-byte headers, octal sizes). */
export function readmeFromTar(tar: Uint8Array): string | null {
  const dec = new TextDecoder();
  const field = (b: Uint8Array) => dec.decode(b.subarray(0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)));
  for (let at = 0; at + 512 <= tar.length;) {
    const h = tar.subarray(at, at + 512);
    if (h.every((x) => x === 0)) break;
    const name = field(h.subarray(0, 100));
    const prefix = field(h.subarray(345, 500));
    const size = parseInt(field(h.subarray(124, 136)).trim() || '0', 8);
    const path = prefix ? `${prefix}/${name}` : name;
    if (/^[^/]+\/README\.txt$/.test(path)) return dec.decode(tar.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return null;
}
