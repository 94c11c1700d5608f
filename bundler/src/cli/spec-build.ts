import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { isScalar } from 'yaml';
import {
  archiveImageFromRegistry,
  buildImagesArchive,
  type ArchiveImage,
} from '../archive/images-archive.ts';
import {
  RegistryClient,
  blobToNodeStream,
  type Descriptor,
  type Platform,
  type RegistryCredentials,
} from '../registry/client.ts';
import { parseImageReference } from '../registry/reference.ts';
import { fingerprintOf, generateSigningKey } from '../signing/signing.ts';
import { buildSitePart, type SitePartScript } from '../site/site-part.ts';
import { defaultReadme } from '../site/readme.ts';
import { EDGE_SCRIPTS_DIR, loadEdgeScripts } from '../site/edge-scripts.ts';
import { stitchPlan } from '../site/stitch.ts';
import {
  fillTemplate,
  pinnedReference,
  SITE_FIELDS,
  type ComposeImage,
  type ComposeSite,
} from '../compose/placeholders.ts';
import { CliError } from './errors.ts';
import { hashFile, writeTo } from './download.ts';

/** A bundle spec file (docs/cli.md): everything a bundle needs, without an Outpost server. */
export interface BundleSpec {
  site: { id?: string; code: string; name: string };
  release: { id?: string; version: string };
  /** Tagged references, pulled from their registries; `name` is what `{{ image.<name> }}` in the compose file refers to. */
  images: { name?: string; reference: string; platform?: string }[];
  /** Credentials per registry host, read from environment variables named here (never from the file). */
  registries?: Record<string, { usernameEnv?: string; passwordEnv?: string; tokenEnv?: string }>;
  /** Path of docker-compose.yml: pinned already, or with `{{ image.<name> }}`, `{{ site.<field> }}`, `{{ release.version }}` placeholders. */
  compose: string;
  env?: Record<string, string>;
  contentPackage?: string;
  /** Path of the PKCS#8 PEM private key (ECDSA P-256); `--generate-key DIR` makes one instead. */
  signingKey?: string;
  /** ISO date, or `expiresInDays` (default 90). */
  expires?: string;
  expiresInDays?: number;
  /** Default platform for multi-platform images; default linux/amd64. */
  platform?: string;
}

export interface BuildFromSpecOptions {
  specFile: string;
  out: string;
  /** Write a new key pair here (signing-key.pem, public.pem) and sign with it. */
  generateKeyDir?: string;
  scriptsDir?: string;
  /** Where the registry credentials named in the spec are read from (the CLI passes its environment). */
  env?: NodeJS.ProcessEnv;
  now?: Date;
  /** Registry client tuning (tests shorten retries). */
  /** Registry client tuning and destination policy (the CLI passes OUTPOST_REGISTRY_ALLOW_INSECURE and the guarded fetch). */
  registry?: {
    retries?: number;
    backoffMs?: number;
    timeoutMs?: number;
    allowInsecure?: Iterable<string>;
    fetch?: typeof globalThis.fetch;
  };
  log?: (line: string) => void;
  /** Bytes of image blobs as they are read from the registries, against `total`. */
  onProgress?: (done: number, total: number) => void;
}

export interface BuildFromSpecResult {
  file: string;
  size: number;
  root: string;
  keyFingerprint: string;
  imagesArchive: { sha256: string; size: number };
  warnings: string[];
  publicKeyFile?: string;
}

/**
 * Builds a one-file bundle from a spec, without an Outpost server: images pulled straight from
 * their registries into `images/images.tgz`, the compose file (rendered if it has placeholders),
 * the edge scripts, README and a signed manifest; the file is the same tar the API's download
 * stitches. Written to `<out>.part` and renamed when whole.
 */
export async function buildFromSpec(options: BuildFromSpecOptions): Promise<BuildFromSpecResult> {
  const log = options.log ?? (() => {});
  const env = options.env ?? {};
  const specDir = path.dirname(path.resolve(options.specFile));
  const spec = parseSpec(await readText(options.specFile, 'the spec file'), options.specFile);
  const at = (p: string) => path.resolve(specDir, p);
  const warnings: string[] = [];

  // The key first: a missing key should not cost an image pull.
  let privateKeyPem: string;
  let publicKeyFile: string | undefined;
  let generated:
    { privateFile: string; publicFile: string; publicKeyPem: string; fingerprint: string } | undefined;
  if (options.generateKeyDir) {
    // Made now, written only once the bundle is: a failed build leaves no stray key behind.
    const key = generateSigningKey();
    const privateFile = path.join(options.generateKeyDir, 'signing-key.pem');
    publicKeyFile = path.join(options.generateKeyDir, 'public.pem');
    for (const f of [privateFile, publicKeyFile])
      if (await fs.stat(f).catch(() => null))
        throw new CliError(`${f} exists already; --generate-key does not overwrite a key.`);
    privateKeyPem = key.privateKeyPem;
    generated = {
      privateFile,
      publicFile: publicKeyFile,
      publicKeyPem: key.publicKeyPem,
      fingerprint: key.fingerprint,
    };
  } else if (spec.signingKey) {
    privateKeyPem = await readText(at(spec.signingKey), 'the signing key');
  } else {
    throw new CliError('The spec names no signingKey; give one, or --generate-key DIR to make a new key.', 2);
  }
  let publicKeyPem: string;
  let fingerprint: string;
  try {
    const { createPrivateKey, createPublicKey } = await import('node:crypto');
    const key = createPrivateKey(privateKeyPem);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new Error('not P-256');
    publicKeyPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
    fingerprint = fingerprintOf(publicKeyPem);
  } catch {
    throw new CliError('The signing key is not an ECDSA P-256 private key in PEM form.');
  }

  const createdAt = options.now ?? new Date();
  const expiresAt = spec.expires
    ? new Date(spec.expires)
    : new Date(createdAt.getTime() + (spec.expiresInDays ?? 90) * 86_400_000);
  if (!(expiresAt.getTime() > createdAt.getTime()))
    throw new CliError(`The spec's expiry ${expiresAt.toISOString()} is not in the future.`);

  const composeTemplate = await readText(at(spec.compose), 'the compose file');
  let scripts: SitePartScript[];
  const scriptsDir = options.scriptsDir ?? EDGE_SCRIPTS_DIR;
  try {
    scripts = loadEdgeScripts(scriptsDir);
  } catch (error) {
    throw new CliError(`Cannot read the scripts folder ${scriptsDir}: ${(error as Error).message}`);
  }

  // Images: manifests by digest from each registry; blobs are read when the archive is written.
  const clients = new Map<string, RegistryClient>();
  const source = new Map<string, { client: RegistryClient; repository: string }>();
  const images: (ArchiveImage & { name: string })[] = [];
  const composeImages: ComposeImage[] = [];
  for (const image of spec.images) {
    let parsed;
    try {
      parsed = parseImageReference(image.reference);
    } catch (e) {
      throw new CliError(`Image "${image.reference}": ${(e as Error).message}`);
    }
    let client = clients.get(parsed.registry);
    if (!client) {
      const credentials = credentialsFor(spec, parsed.registry, env);
      client = new RegistryClient({
        registry: parsed.registry,
        ...(credentials ? { credentials } : {}),
        ...options.registry,
      });
      clients.set(parsed.registry, client);
    }
    log(`Looking up ${image.reference}`);
    const fetched = await archiveImageFromRegistry(
      client,
      image.reference,
      parsePlatform(image.platform ?? spec.platform),
    ).catch((e: Error) => {
      throw new CliError(`${image.reference}: ${e.message}`);
    });
    for (const blob of [fetched.config, ...fetched.layers])
      source.set(blob.digest, { client, repository: fetched.repository });
    const name = image.name ?? fetched.repository.split('/').pop()!;
    composeImages.push({
      name,
      registry: parsed.registry,
      repository: fetched.repository,
      digest: fetched.manifest.digest,
    });
    images.push({ ...fetched, name });
  }

  const compose = renderCompose(composeTemplate, {
    images: composeImages,
    site: Object.fromEntries(
      SITE_FIELDS.map((f) => [f, (spec.site as Record<string, unknown>)[f]])
        .filter(([, v]) => v !== undefined && v !== null)
        .map(([f, v]) => [f, String(v)]),
    ) as ComposeSite,
    version: spec.release.version,
    warnings,
  });

  let content: { fileName: string; sha256: string; size: number; file: string } | null = null;
  if (spec.contentPackage) {
    const file = at(spec.contentPackage);
    const stat = await fs.stat(file).catch(() => null);
    if (!stat?.isFile()) throw new CliError(`The content package ${file} does not exist.`);
    content = { fileName: path.basename(file), sha256: await hashFile(file), size: stat.size, file };
  }

  // The images archive goes to a file beside the output first: the manifest needs its checksum.
  const out = path.resolve(options.out);
  await fs.mkdir(path.dirname(out), { recursive: true });
  const archiveFile = `${out}.images.tmp`;
  const blobTotal = [
    ...new Map(images.flatMap((i) => [i.config, ...i.layers]).map((d) => [d.digest, d.size])).values(),
  ].reduce((a, b) => a + b, 0);
  let blobDone = 0;
  const archive = buildImagesArchive({
    images,
    readBlob: async (d: Descriptor) => {
      const from = source.get(d.digest)!;
      const counted = new Transform({
        transform(chunk: Buffer, _e, cb) {
          blobDone += chunk.length;
          options.onProgress?.(blobDone, blobTotal);
          cb(null, chunk);
        },
      });
      return blobToNodeStream(await from.client.blob(from.repository, d.digest, { size: d.size })).pipe(
        counted,
      );
    },
  });
  log(`Writing the images archive (${images.length} image${images.length === 1 ? '' : 's'})`);
  try {
    await writeTo(archiveFile, archive.stream);
    const archived = await archive.done;

    const part = buildSitePart({
      site: { id: spec.site.id ?? randomUUID(), code: spec.site.code, name: spec.site.name },
      release: { id: spec.release.id ?? randomUUID(), version: spec.release.version },
      createdAt,
      expiresAt,
      compose,
      env: {
        COMPOSE_PROJECT_NAME: 'outpost',
        OUTPOST_SITE_CODE: spec.site.code,
        OUTPOST_RELEASE: spec.release.version,
        ...(spec.site.id ? { OUTPOST_SITE_ID: spec.site.id } : {}),
        ...(spec.release.id ? { OUTPOST_RELEASE_ID: spec.release.id } : {}),
        ...spec.env,
      },
      contentPackage: content
        ? { fileName: content.fileName, sha256: content.sha256, size: content.size }
        : null,
      imagesArchive: { sha256: archived.sha256, size: archived.size, delta: false },
      scripts,
      readme: defaultReadme({
        siteName: spec.site.name,
        version: spec.release.version,
        sizeBytes: archived.size + (content?.size ?? 0),
        estimatedMinutes: 10 + (archived.size + (content?.size ?? 0)) / 50e6 / 60,
      }),
      signingKeyPem: privateKeyPem,
      keyFingerprint: fingerprint,
      publicKeyPem,
    });

    // The same bytes the API's stitched download sends: site part, each shared object as a tar entry, trailer.
    const files = [...(content ? [content.file] : []), archiveFile];
    const plan = stitchPlan({ sitePartSize: part.tarSize, shared: part.shared });
    const partial = `${out}.part`;
    const segments = async function* () {
      for (const segment of plan.segments) {
        if (segment.kind === 'site') yield Buffer.from(part.tar);
        else if (segment.kind === 'object') yield* createReadStream(files[segment.index]!);
        else yield Buffer.from(segment.bytes);
      }
    };
    await writeTo(partial, Readable.from(segments()));
    const written = (await fs.stat(partial)).size;
    if (written !== plan.totalSize)
      throw new CliError(
        `The bundle came to ${written} bytes instead of ${plan.totalSize}; a file changed while it was written.`,
      );
    if (generated) {
      await fs.mkdir(options.generateKeyDir!, { recursive: true });
      await fs.writeFile(generated.privateFile, privateKeyPem, { mode: 0o600, flag: 'wx' });
      await fs.writeFile(generated.publicFile, generated.publicKeyPem, { mode: 0o644, flag: 'wx' });
      log(
        `New signing key written to ${generated.privateFile} (keep it secret) and ${generated.publicFile}; fingerprint ${generated.fingerprint}.`,
      );
    }
    await fs.rename(partial, out);
    return {
      file: out,
      size: written,
      root: part.root,
      keyFingerprint: fingerprint,
      imagesArchive: archived,
      warnings,
      ...(publicKeyFile ? { publicKeyFile } : {}),
    };
  } finally {
    await fs.rm(archiveFile, { force: true });
    await fs.rm(`${out}.part`, { force: true });
  }
}

function parseSpec(text: string, file: string): BundleSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CliError(`${file} is not valid JSON: ${(e as Error).message}`, 2);
  }
  const problems: string[] = [];
  const s = raw as Partial<BundleSpec>;
  const str = (v: unknown) => typeof v === 'string' && v.trim() !== '';
  if (!s || typeof s !== 'object') throw new CliError(`${file} must hold a JSON object.`, 2);
  if (!str(s.site?.code) || !str(s.site?.name)) problems.push('site needs a code and a name');
  if (!str(s.release?.version)) problems.push('release needs a version');
  if (!Array.isArray(s.images) || s.images.length === 0 || !s.images.every((i) => str(i?.reference)))
    problems.push('images must list at least one { "reference": "registry/repository:tag" }');
  if (!str(s.compose)) problems.push('compose must name the docker-compose.yml file');
  if (
    s.env !== undefined &&
    (typeof s.env !== 'object' || Object.values(s.env ?? {}).some((v) => typeof v !== 'string'))
  )
    problems.push('env must map names to strings');
  if (s.expires !== undefined && !Number.isFinite(Date.parse(String(s.expires))))
    problems.push('expires must be a date (2026-12-31T00:00:00Z)');
  if (s.expiresInDays !== undefined && !(Number.isInteger(s.expiresInDays) && s.expiresInDays > 0))
    problems.push('expiresInDays must be a whole number of days');
  if (problems.length) throw new CliError(`${file}: ${problems.join('; ')}.`, 2);
  return s as BundleSpec;
}

function credentialsFor(
  spec: BundleSpec,
  registry: string,
  env: NodeJS.ProcessEnv,
): RegistryCredentials | null {
  const entry = spec.registries?.[registry];
  if (!entry) return null;
  const read = (name: string | undefined) => {
    if (!name) return undefined;
    const value = env[name];
    if (value === undefined || value === '')
      throw new CliError(`The spec reads the ${registry} credentials from $${name}, which is not set.`, 2);
    return value;
  };
  const token = read(entry.tokenEnv);
  if (token) return { token };
  const username = read(entry.usernameEnv);
  const password = read(entry.passwordEnv);
  return username !== undefined && password !== undefined ? { username, password } : null;
}

function parsePlatform(text: string | undefined): Platform | undefined {
  if (!text) return undefined;
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture) throw new CliError(`"${text}" is not a platform; write it like linux/amd64.`, 2);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/**
 * Fills the compose file's placeholders (the language the API's templates use: bundler/src/compose)
 * for the spec's site, release and images. A file without placeholders is kept byte for byte. Images
 * not pinned by digest, or not among the bundle's, are warned about.
 */
function renderCompose(
  template: string,
  input: { images: ComposeImage[]; site: ComposeSite; version: string; warnings: string[] },
): string {
  const filled = fillTemplate(template, input);
  const [first, ...more] = filled.errors;
  if (first || !filled.doc)
    throw new CliError(
      `The compose file, line ${first?.line ?? 1}: ${first?.message ?? 'it does not parse'}${more.length ? ` (and ${more.length} more problem${more.length === 1 ? '' : 's'})` : ''}`,
      2,
    );
  const rendered = filled.placeholders.length > 0 ? filled.render() : template;
  const services = filled.doc.get('services');
  const known = new Set(input.images.map(pinnedReference));
  if (services && typeof services === 'object' && 'items' in services) {
    for (const pair of (services as { items: { key: unknown; value: unknown }[] }).items) {
      const svc = pair.value as { get?: (k: string, keepScalar?: boolean) => unknown } | null;
      const image = svc?.get?.('image', true);
      const ref = isScalar(image) ? String(image.value) : undefined;
      const name = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (ref === undefined) continue;
      if (!ref.includes('@sha256:'))
        input.warnings.push(
          `Service ${name} uses ${ref}, which is not pinned by digest: the site may run something else than was bundled.`,
        );
      else if (!known.has(ref))
        input.warnings.push(
          `Service ${name} uses ${ref}, which is not one of the bundle's images: the site would have to pull it.`,
        );
    }
  }
  return rendered;
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    throw new CliError(`Cannot read ${what} ${file}.`, 2);
  }
}
