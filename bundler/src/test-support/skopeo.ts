import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const run = promisify(execFile);

export interface RegistryLogin {
  username: string;
  password: string;
}

export interface PushOptions {
  /** Manifest format written to the registry: as built (`oci`, the default) or Docker v2 schema 2. */
  format?: 'oci' | 'v2s2';
  /** Copy every image of an index; default: when the layout tag names an index. */
  all?: boolean;
}

/**
 * Pushes an OCI layout's tag to a registry with skopeo (TLS verification off, as the test
 * registries speak plain HTTP) and returns the digest of the manifest as pushed.
 *
 * @example
 * const digest = await pushImage(image.dir, image.tag, `${registry.host}/demo/app:1.0`);
 */
export async function pushImage(
  layoutDir: string,
  tag: string,
  target: string,
  creds?: RegistryLogin,
  options: PushOptions = {},
): Promise<string> {
  const all = options.all ?? (await layoutTagIsIndex(layoutDir, tag));
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'outpost-push-'));
  const digestFile = path.join(tmp, 'digest');
  try {
    await skopeo([
      'copy',
      '--insecure-policy',
      '--quiet',
      '--dest-tls-verify=false',
      ...(all ? ['--all'] : []),
      ...(options.format ? ['--format', options.format] : []),
      ...(creds ? ['--dest-creds', `${creds.username}:${creds.password}`] : []),
      '--digestfile',
      digestFile,
      `oci:${layoutDir}:${tag}`,
      `docker://${target}`,
    ]);
    return (await fs.readFile(digestFile, 'utf8')).trim();
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/**
 * `skopeo inspect` of an image in a registry: the parsed summary (`Digest`, `Layers`, …), or with
 * `raw` the manifest exactly as stored.
 */
export async function skopeoInspect(
  target: string,
  options: { raw?: boolean; creds?: RegistryLogin } = {},
  // skopeo's own JSON, whose shape each test asserts for itself.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<any> {
  const stdout = await skopeo([
    'inspect',
    '--tls-verify=false',
    ...(options.raw ? ['--raw'] : []),
    ...(options.creds ? ['--creds', `${options.creds.username}:${options.creds.password}`] : []),
    `docker://${target}`,
  ]);
  return JSON.parse(stdout);
}

async function skopeo(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('skopeo', args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string; code?: unknown };
    if (e.code === 'ENOENT')
      throw new Error('skopeo is missing: apt-get install -y skopeo', { cause: error });
    throw new Error(`skopeo ${args[0]} failed: ${(e.stderr || e.message).trim()}`, { cause: error });
  }
}

async function layoutTagIsIndex(layoutDir: string, tag: string): Promise<boolean> {
  const index = JSON.parse(await fs.readFile(path.join(layoutDir, 'index.json'), 'utf8')) as {
    manifests: { mediaType?: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  return entry?.mediaType === 'application/vnd.oci.image.index.v1+json';
}
